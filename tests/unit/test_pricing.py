"""The pinned price table: what one image costs per model and tier, from usage_metadata."""

from __future__ import annotations

import pytest

from imagegen.generation.pricing import CallUsage, image_cost, total, usage_record


@pytest.mark.parametrize(
    ("model", "size", "image_tokens", "expected"),
    [  # Google's published per-image prices (standard tier)
        ("gemini-3.1-flash-image", "512", 747, 0.04482),
        ("gemini-3.1-flash-image", "1K", 1120, 0.0672),
        ("gemini-3.1-flash-image", "2K", 1680, 0.1008),
        ("gemini-3.1-flash-image", "4K", 2520, 0.1512),
        ("gemini-3-pro-image", "2K", 1120, 0.1344),
        ("gemini-3-pro-image", "4K", 2000, 0.24),
        ("gemini-2.5-flash-image", "1K", 1290, 0.0387),
        ("gemini-3-pro-image-preview", "1K", 1120, 0.1344),  # a -preview shares its model's row
    ],
)
def test_an_image_costs_its_tier_tokens_at_the_image_rate(
    model: str, size: str, image_tokens: int, expected: float
) -> None:
    usage = CallUsage(input_tokens=0, output_tokens=image_tokens, thinking_tokens=0)
    assert image_cost(model, size, usage) == pytest.approx(expected)


def test_input_and_thinking_tokens_are_charged_at_their_rates() -> None:
    usage = CallUsage(input_tokens=1000, output_tokens=1120, thinking_tokens=200, output_image_tokens=1120)
    # 1000 × $0.50/M + 200 × $3/M + 1120 × $60/M
    assert image_cost("gemini-3.1-flash-image", "1K", usage) == pytest.approx(0.0005 + 0.0006 + 0.0672)


def test_text_beside_the_image_is_charged_at_the_text_rate() -> None:
    with_breakdown = CallUsage(0, 1130, 0, output_image_tokens=1120)
    without = CallUsage(0, 1130, 0)  # no candidates_tokens_details: the tier's count is the image
    for usage in (with_breakdown, without):
        assert image_cost("gemini-3.1-flash-image", "1K", usage) == pytest.approx(0.0672 + 10 * 3 / 1e6)


def test_an_image_without_reported_output_tokens_is_not_free() -> None:
    assert image_cost("gemini-3.1-flash-image", "2K", CallUsage(10, 0, 0)) == pytest.approx(0.1008 + 5e-6)


def test_an_unknown_model_is_charged_at_the_dearest_row() -> None:
    assert image_cost("gemini-9-image", "1K", CallUsage(0, 1120, 0)) == pytest.approx(0.1344)


def test_the_job_total_is_the_sum_of_its_images() -> None:
    records = [usage_record("gemini-3.1-flash-image", "1K", CallUsage(100, 1120, 7)) for _ in range(3)]
    assert total(records) == {
        "input_tokens": 300,
        "output_tokens": 3360,
        "thinking_tokens": 21,
        "images": 3,
        "cost_usd": pytest.approx(3 * records[0]["cost_usd"]),
    }
