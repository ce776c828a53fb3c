"""What a model call cost: a pinned price table per model and image size.

Gemini bills tokens: the prompt (text and input images) at the input rate,
thinking tokens and text output at the text-output rate, and output images
at the image-output rate, where one image is a fixed number of tokens per
``image_size`` tier. ``cost_usd`` is computed from the call's
``usage_metadata``; when a response reports no output tokens the tier's token
count stands in, so an image is never free.

Source: Gemini Developer API pricing, https://ai.google.dev/gemini-api/docs/pricing
(standard tier, not batch), figures as Google published them and checked on
2026-12-01; the per-tier image token counts are those of the Vertex AI model
pages (docs.cloud.google.com/vertex-ai/generative-ai/docs/models/gemini/...).
Vertex AI's list prices for these models are the same. A change of price is a
change of this table (pinned on purpose: a job's cost must not move after
the fact).
"""

from __future__ import annotations

from dataclasses import dataclass

from imagegen.generation.model_catalog import spec

_PER_MILLION = 1_000_000


@dataclass(frozen=True)
class Price:
    """USD per million tokens, and the output tokens of one image per tier."""

    input: float
    text_output: float
    """Thinking tokens and text parts."""
    image_output: float
    image_tokens: dict[str, int]


PRICES: dict[str, Price] = {
    # $0.045 / $0.067 / $0.101 / $0.151 per image at 512 / 1K / 2K / 4K.
    "gemini-3.1-flash-image": Price(0.50, 3.00, 60.0, {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520}),
    # $0.134 per image at 1K and 2K, $0.24 at 4K.
    "gemini-3-pro-image": Price(2.00, 12.00, 120.0, {"1K": 1120, "2K": 1120, "4K": 2000}),
    # $0.039 per image (1K only).
    "gemini-2.5-flash-image": Price(0.30, 2.50, 30.0, {"1K": 1290}),
}
# A configured model missing from the table is charged at the dearest row, so
# that a budget errs on the safe side.
_UNKNOWN = PRICES["gemini-3-pro-image"]


@dataclass(frozen=True)
class CallUsage:
    """Tokens one model call reported (``usage_metadata``)."""

    input_tokens: int
    output_tokens: int
    """``candidates_token_count``: the image, and any text part."""
    thinking_tokens: int
    output_image_tokens: int | None = None
    """The IMAGE entry of ``candidates_tokens_details``, when reported."""


def price(model: str) -> Price:
    return PRICES.get(spec(model).name, _UNKNOWN)


def image_cost(model: str, image_size: str, usage: CallUsage) -> float:
    """USD for one call that made one image at ``image_size``."""
    rates = price(model)
    tier_tokens = rates.image_tokens.get(image_size) or max(rates.image_tokens.values())
    if usage.output_tokens <= 0:
        image_tokens, text_tokens = tier_tokens, 0
    elif usage.output_image_tokens is not None:
        image_tokens = usage.output_image_tokens
        text_tokens = max(0, usage.output_tokens - image_tokens)
    else:  # no breakdown: the tier's count is the image, the rest text
        image_tokens = min(usage.output_tokens, tier_tokens)
        text_tokens = usage.output_tokens - image_tokens
    cost = (
        usage.input_tokens * rates.input
        + (usage.thinking_tokens + text_tokens) * rates.text_output
        + image_tokens * rates.image_output
    ) / _PER_MILLION
    return round(cost, 6)


def usage_record(model: str, image_size: str, usage: CallUsage) -> dict[str, float | int]:
    """``images[].usage``: one image's tokens and cost."""
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "thinking_tokens": usage.thinking_tokens,
        "images": 1,
        "cost_usd": image_cost(model, image_size, usage),
    }


USAGE_KEYS = ("input_tokens", "output_tokens", "thinking_tokens", "images", "cost_usd")


def total(records: list[dict[str, float | int]]) -> dict[str, float | int]:
    """``metadata.usage``: the sum of the images' usage."""
    summed: dict[str, float | int] = {key: sum(r.get(key, 0) for r in records) for key in USAGE_KEYS}
    summed["cost_usd"] = round(float(summed["cost_usd"]), 6)
    return summed
