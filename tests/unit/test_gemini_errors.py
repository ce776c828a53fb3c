"""How Gemini's answers become typed failures (error_code), with the SDK's own error types."""

from __future__ import annotations

import pytest
from google.genai import errors, types

from imagegen.generation import gemini


def _error(code: int, status: str, message: str, details: list | None = None) -> errors.APIError:
    body = {"error": {"code": code, "status": status, "message": message} | ({"details": details} if details else {})}
    return (errors.ClientError if code < 500 else errors.ServerError)(code, body)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (_error(404, "NOT_FOUND", "models/gemini-2.0-flash-preview-image-generation is not found for API version v1beta"), "model_unavailable"),
        (_error(404, "NOT_FOUND", "This model models/gemini-2.5-flash-image is no longer available."), "model_unavailable"),
        (_error(404, "NOT_FOUND", "Requested entity was not found."), "model_unavailable"),  # Vertex
        (_error(400, "FAILED_PRECONDITION", "Imagen 4 on the Gemini API has been shut down."), "model_unavailable"),
        (_error(410, "FAILED_PRECONDITION", "The model is deprecated and no longer served."), "model_unavailable"),
        (_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."), "invalid_api_key"),
        (_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers"), "invalid_api_key"),
        (_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota"), "quota_exhausted"),
        (_error(503, "UNAVAILABLE", "The model is overloaded."), "upstream_unavailable"),
        (_error(400, "INVALID_ARGUMENT", "Unable to process input image. Please retry"), "input_image_invalid"),
        (_error(400, "INVALID_ARGUMENT", "Unsupported aspect ratio: 7:3."), "request_rejected"),
    ],
)
def test_api_errors_map_to_their_error_code(error: errors.APIError, code: str) -> None:
    assert gemini._api_error(error).code == code


def test_a_blocked_prompt_carries_what_the_filters_said() -> None:
    response = types.GenerateContentResponse(
        prompt_feedback=types.GenerateContentResponsePromptFeedback(
            block_reason=types.BlockedReason.PROHIBITED_CONTENT,
            safety_ratings=[
                types.SafetyRating(
                    category=types.HarmCategory.HARM_CATEGORY_HARASSMENT,
                    probability=types.HarmProbability.MEDIUM,
                    blocked=True,
                )
            ],
        )
    )
    with pytest.raises(gemini.GeminiError) as caught:
        gemini._image_from(response, "gemini-3-pro-image")
    assert caught.value.code == "content_blocked"
    assert caught.value.safety == {
        "block_reason": "PROHIBITED_CONTENT",
        "ratings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "MEDIUM", "blocked": True}],
    }
