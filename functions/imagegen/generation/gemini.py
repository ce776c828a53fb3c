"""Image generation with Gemini through google-genai.

One call per image: image models reject ``candidate_count > 1``, so the
worker runs N calls in parallel. Transient failures (408, 429, 5xx) are
retried by the SDK itself (``HttpRetryOptions``: exponential backoff with
jitter); what is left after the retries becomes a ``GeminiError`` carrying
the French message the job reports. Safety blocks arrive as HTTP 200 with no
image part and are reported from ``prompt_feedback`` / ``finish_reason``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from imagegen.clients import shared
from imagegen.config import GeminiBackend, load_settings

logger = logging.getLogger(__name__)

NOT_CONFIGURED = "Clé API Google non configurée"
INVALID_KEY = "Clé API Google invalide ou expirée"
MODEL_UNAVAILABLE = "Modèle Gemini non disponible"

_RETRY_STATUS_CODES = [408, 429, 500, 502, 503, 504]
# Backoff between the SDK's attempts: initial delay doubling up to this, plus up to JITTER s.
RETRY_MAX_DELAY = 30.0
RETRY_JITTER = 1.0
_STYLE_HINTS = {
    "photorealistic": "Render it as a photorealistic photograph: natural lighting, real materials, fine detail.",
    "artistic": "Render it as an expressive artwork with visible brushwork and a bold, painterly palette.",
    "illustration": "Render it as a clean digital illustration with clear shapes and flat, harmonious colours.",
    "3d-render": "Render it as a high-quality 3D render: global illumination, soft shadows, physically based materials.",
}


class GeminiError(Exception):
    """A model call that failed for good; ``message`` is what the job reports.

    ``code`` is its ``ErrorCode`` value; ``safety`` what the safety filters said
    (``{block_reason, finish_reason, ratings}``) when they are the cause.
    """

    def __init__(self, message: str, code: str, safety: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.safety = safety


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    mime_type: str
    input_tokens: int
    output_tokens: int
    model: str
    """The exact model that made the image."""
    model_version: str
    thinking_tokens: int = 0
    output_image_tokens: int | None = None
    """The IMAGE share of ``output_tokens`` when Gemini reports it."""
    unavailable: tuple[str, ...] = ()
    """Models that answered "not found" or "shut down" before ``model`` ran."""


@dataclass(frozen=True)
class SourceImage:
    """A reference image, checked and normalised for the model (``imaging.prepare_input``)."""

    data: bytes
    mime_type: str
    uri: str | None = None
    """Its ``gs://`` object, which Vertex AI reads itself (``Part.from_uri``)."""
    uri_mime_type: str | None = None


def compose_prompt(prompt: str, style: str) -> str:
    """The user's prompt with the requested style folded in."""
    return f"{prompt}\n\n{_STYLE_HINTS[style]}"


@shared
def _client() -> Any:
    from google import genai
    from google.genai import types

    settings = load_settings()
    http_options = types.HttpOptions(
        timeout=settings.gemini_timeout_seconds * 1000,
        retry_options=types.HttpRetryOptions(
            attempts=settings.gemini_retry_attempts,
            initial_delay=settings.gemini_retry_initial_delay,
            max_delay=RETRY_MAX_DELAY,
            exp_base=2.0,
            jitter=RETRY_JITTER,
            http_status_codes=_RETRY_STATUS_CODES,
        ),
    )
    backend = settings.gemini_backend
    if backend is GeminiBackend.STANDIN:
        logger.warning(
            "Gemini backend: LOCAL STAND-IN at %s, not real Gemini (set GOOGLE_API_KEY for real images)",
            settings.gemini_standin_url,
        )
    else:
        logger.info("Gemini backend: %s, model %s", backend.value, settings.gemini_model)
    if backend is GeminiBackend.VERTEX:
        return genai.Client(
            vertexai=True,
            project=settings.project,
            location=settings.vertex_location,
            http_options=http_options,
        )
    if backend is GeminiBackend.API_KEY:
        return genai.Client(api_key=settings.gemini_api_key, http_options=http_options)
    if backend is GeminiBackend.STANDIN:
        http_options.base_url = settings.gemini_standin_url
        return genai.Client(api_key="local-stand-in", http_options=http_options)
    raise GeminiError(NOT_CONFIGURED, "api_key_missing")


def generate_image(
    prompt: str,
    aspect_ratio: str,
    image_size: str,
    sources: Sequence[SourceImage] = (),
    *,
    model: str,
    fallbacks: tuple[str, ...] = (),
    seed: int | None = None,
    timeout_seconds: float | None = None,
) -> GeneratedImage:
    """One image from ``model`` (with ``seed``, reproducible), or ``GeminiError``.

    A model that answers "not found" or "shut down" is replaced by the next of
    ``fallbacks``; the image records which models were passed over.
    ``timeout_seconds`` (what is left of the job's deadline) bounds each HTTP
    attempt below ``GEMINI_TIMEOUT_SECONDS``.
    """
    gone: list[str] = []
    for candidate in (model, *fallbacks):
        try:
            image = _generate(prompt, aspect_ratio, image_size, sources, candidate, seed, timeout_seconds)
        except GeminiError as exc:
            if exc.code != "model_unavailable":
                raise
            logger.warning("model %s unavailable: %s", candidate, exc.__cause__)
            gone.append(candidate)
            continue
        return replace(image, unavailable=tuple(gone))
    logger.error("no model of the chain is available: %s", ", ".join(gone))
    raise GeminiError(MODEL_UNAVAILABLE, "model_unavailable")


def _generate(
    prompt: str,
    aspect_ratio: str,
    image_size: str,
    sources: Sequence[SourceImage],
    model: str,
    seed: int | None,
    timeout_seconds: float | None,
) -> GeneratedImage:
    import httpx2
    from google.genai import errors, types

    vertex = load_settings().gemini_backend is GeminiBackend.VERTEX
    contents: list[Any] = [_part(types, source, vertex) for source in sources] + [prompt]
    config = types.GenerateContentConfig(
        response_modalities=["IMAGE"],
        seed=seed,
        http_options=_bounded(types, timeout_seconds),
        image_config=types.ImageConfig(aspect_ratio=aspect_ratio, image_size=image_size),
    )
    try:
        response = _client().models.generate_content(model=model, contents=contents, config=config)
    except errors.APIError as exc:
        raise _api_error(exc) from exc
    except httpx2.TransportError as exc:  # after the SDK's retries
        raise GeminiError("Service Gemini injoignable, réessayez plus tard", "upstream_unavailable") from exc
    return _image_from(response, model)


def _bounded(types: Any, timeout_seconds: float | None) -> Any:
    """Per-call HTTP options when the job's deadline is nearer than the configured timeout:
    one attempt bounded by what is left (a retry would not fit in it)."""
    configured = load_settings().gemini_timeout_seconds
    if timeout_seconds is None or timeout_seconds >= configured:
        return None
    return types.HttpOptions(
        timeout=max(1, int(timeout_seconds * 1000)), retry_options=types.HttpRetryOptions(attempts=1)
    )


def _part(types: Any, source: SourceImage, vertex: bool) -> Any:
    """Each reference image is its own part: a file URI on Vertex for gs:// objects, else bytes."""
    if vertex and source.uri and source.uri_mime_type:
        return types.Part.from_uri(file_uri=source.uri, mime_type=source.uri_mime_type)
    return types.Part.from_bytes(data=source.data, mime_type=source.mime_type)


# How Google says a model is gone: 404 NOT_FOUND ("models/x is not found for API version
# v1beta", "This model models/x is no longer available", Vertex's "Requested entity was not
# found"), or a 400/410 FAILED_PRECONDITION saying it "has been shut down" / deprecated.
_MODEL_GONE = ("shut down", "shutdown", "no longer available", "deprecated", "discontinued")


def _api_error(exc: Any) -> GeminiError:
    text = f"{exc.status} {exc.message} {exc.details}"
    if exc.code in (401, 403) or "API_KEY_INVALID" in text or "API key not valid" in text:
        return GeminiError(INVALID_KEY, "invalid_api_key")
    lowered = text.lower()
    if exc.code == 404 or (exc.code in (400, 410) and any(word in lowered for word in _MODEL_GONE)):
        return GeminiError(MODEL_UNAVAILABLE, "model_unavailable")
    if exc.code == 429:
        return GeminiError("Quota Gemini dépassé, réessayez plus tard", "quota_exhausted")
    if exc.code >= 500:
        return GeminiError("Service Gemini indisponible, réessayez plus tard", "upstream_unavailable")
    code = "input_image_invalid" if "input image" in lowered else "request_rejected"
    return GeminiError(f"Requête refusée par Gemini : {exc.message}", code)


_SAFETY_FINISH = frozenset(
    {"IMAGE_SAFETY", "SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST", "SPII"}
)


def _value(enum_or_text: Any) -> str | None:
    """An SDK enum's wire value (or a plain string), None when unset."""
    return getattr(enum_or_text, "value", enum_or_text) or None


def _safety(feedback: Any, candidate: Any) -> dict[str, Any]:
    """``{block_reason, finish_reason, ratings}`` as Gemini gave them (unset ones left out)."""
    ratings = (getattr(feedback, "safety_ratings", None) or []) + (
        getattr(candidate, "safety_ratings", None) or []
    )
    found = {
        "block_reason": _value(getattr(feedback, "block_reason", None)),
        "finish_reason": _value(getattr(candidate, "finish_reason", None)),
    }
    safety: dict[str, Any] = {key: value for key, value in found.items() if value}
    safety["ratings"] = [
        {
            key: value
            for key, value in (
                ("category", _value(r.category)),
                ("probability", _value(r.probability)),
                ("blocked", r.blocked),
            )
            if value is not None
        }
        for r in ratings
    ]
    return safety


def _image_from(response: Any, model: str) -> GeneratedImage:
    feedback = response.prompt_feedback
    candidate = response.candidates[0] if response.candidates else None
    if feedback is not None and feedback.block_reason:
        reason = _value(feedback.block_reason)
        raise GeminiError(
            f"Prompt bloqué par les filtres de sécurité de Gemini ({reason})",
            "content_blocked",
            _safety(feedback, candidate),
        )
    parts = candidate.content.parts if candidate and candidate.content and candidate.content.parts else []
    image = next((p.inline_data for p in parts if p.inline_data and p.inline_data.data), None)
    if image is None:
        reason = _value(getattr(candidate, "finish_reason", None)) or "NO_IMAGE"
        if reason in _SAFETY_FINISH:
            raise GeminiError(
                f"Image bloquée par les filtres de sécurité de Gemini ({reason})",
                "content_blocked",
                _safety(feedback, candidate),
            )
        raise GeminiError(f"Gemini n'a renvoyé aucune image ({reason})", "no_image")
    usage = response.usage_metadata
    return GeneratedImage(
        data=image.data,
        mime_type=image.mime_type or "image/png",
        input_tokens=(usage.prompt_token_count or 0) if usage else 0,
        output_tokens=(usage.candidates_token_count or 0) if usage else 0,
        model=model,
        model_version=response.model_version or model,
        thinking_tokens=(usage.thoughts_token_count or 0) if usage else 0,
        output_image_tokens=_image_tokens(usage),
    )


def _image_tokens(usage: Any) -> int | None:
    """The IMAGE entry of ``candidates_tokens_details``, if the response has one."""
    for detail in (getattr(usage, "candidates_tokens_details", None) or []) if usage else []:
        if getattr(detail.modality, "value", detail.modality) == "IMAGE":
            return detail.token_count or 0
    return None
