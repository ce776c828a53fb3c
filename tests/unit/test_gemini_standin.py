"""The Gemini image stand-in, driven by the real google-genai SDK over HTTP."""

from __future__ import annotations

import hashlib
import io
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from google import genai
from google.genai import errors, types
from PIL import Image

from emulator.gemini_standin import BASE_SIZES, StandinServer, output_size, render_png

MODEL = "gemini-3.1-flash-image"


@pytest.fixture(scope="module")
def server() -> Iterator[StandinServer]:
    with StandinServer() as running:
        yield running


@pytest.fixture(autouse=True)
def _reset(server: StandinServer) -> None:
    control(server, "POST", "/_standin/reset")


def make_client(server: StandinServer, api_version: str | None = None) -> genai.Client:
    """A real SDK client with retries off, so 429/503 surface on the first attempt."""
    options = types.HttpOptions(
        base_url=server.base_url,
        api_version=api_version,
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(api_key="stand-in", http_options=options)


@pytest.fixture(scope="module")
def client(server: StandinServer) -> genai.Client:
    return make_client(server)


def control(server: StandinServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Calls a stand-in endpoint; returns (status, JSON body) for errors too."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.base_url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def set_faults(server: StandinServer, *faults: dict[str, Any], latency_ms: int = 0) -> None:
    status, _ = control(
        server, "PUT", "/_standin/config", {"latency_ms": latency_ms, "faults": list(faults)}
    )
    assert status == 200


def generate(
    client: genai.Client,
    prompt: str,
    *,
    image: bytes | None = None,
    aspect_ratio: str = "1:1",
    image_size: str = "1K",
    modalities: tuple[str, ...] = ("IMAGE",),
    **config: Any,
) -> types.GenerateContentResponse:
    contents: list[Any] = [prompt]
    if image is not None:
        contents.insert(0, types.Part.from_bytes(data=image, mime_type="image/png"))
    return client.models.generate_content(
        model=MODEL,
        contents=contents,
        config=types.GenerateContentConfig(
            response_modalities=list(modalities),
            image_config=types.ImageConfig(aspect_ratio=aspect_ratio, image_size=image_size),
            **config,
        ),
    )


def image_bytes(response: types.GenerateContentResponse) -> bytes:
    images = [p.inline_data.data for p in response.parts or [] if p.inline_data]
    assert len(images) == 1
    assert images[0] is not None
    return images[0]


def test_health(server: StandinServer) -> None:
    assert control(server, "GET", "/_standin/health") == (200, {"status": "ok", "stand_in": True})


def test_2k_16_9_returns_png_of_the_gemini_size(client: genai.Client) -> None:
    response = generate(client, "a red fox in the snow", aspect_ratio="16:9", image_size="2K")

    with Image.open(io.BytesIO(image_bytes(response))) as img:
        assert (img.format, img.size) == ("PNG", (2752, 1536))
    candidate = response.candidates[0]
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.content.role == "model"
    assert response.model_version == f"{MODEL} (local stand-in)"
    assert response.response_id
    assert response.sdk_http_response.headers["server"] == "gemini-standin"


def test_size_table_follows_gemini_3() -> None:
    assert output_size("21:9", "1K") == (1584, 672)
    assert output_size("9:16", "4K") == (3072, 5504)
    for ratio, (width, height) in BASE_SIZES.items():
        assert output_size(ratio, "2K") == (2 * width, 2 * height)


def test_same_prompt_gives_same_bytes_and_other_prompts_differ(client: genai.Client) -> None:
    first = image_bytes(generate(client, "a lighthouse at dusk"))
    again = image_bytes(generate(client, "a lighthouse at dusk"))
    other = image_bytes(generate(client, "a lighthouse at dawn"))

    assert first == again
    assert first != other


def test_seed_gives_same_bytes_and_other_seeds_other_pictures(
    server: StandinServer, client: genai.Client
) -> None:
    first = image_bytes(generate(client, "a lighthouse at dusk", seed=7))
    again = image_bytes(generate(client, "a lighthouse at dusk", seed=7))
    other = image_bytes(generate(client, "a lighthouse at dusk", seed=8))
    assert first == again != other
    # Visibly different: the pictures' mean colours are far apart, not a few pixels.
    means = [Image.open(io.BytesIO(data)).convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
             for data in (first, other)]
    assert sum(abs(a - b) for a, b in zip(*means)) > 30
    _, calls = control(server, "GET", "/_standin/calls")
    assert [call["seed"] for call in calls["calls"]] == [7, 7, 8]


def test_input_image_changes_output_and_counts_image_tokens(
    server: StandinServer, client: genai.Client
) -> None:
    prompt = "make the sky purple"
    source = render_png("a beach photo", (320, 240))

    plain = generate(client, prompt)
    edited = generate(client, prompt, image=source)

    assert image_bytes(edited) != image_bytes(plain)
    assert image_bytes(edited) == image_bytes(generate(client, prompt, image=source))
    details = {d.modality: d.token_count for d in edited.usage_metadata.prompt_tokens_details}
    # Gemini 3.1 Flash Image: 1120 tokens per input image (Google's published figure).
    assert details == {types.MediaModality.TEXT: 5, types.MediaModality.IMAGE: 1120}
    calls = control(server, "GET", "/_standin/calls")[1]["calls"]
    assert [c["has_input_image"] for c in calls] == [False, True, True]
    assert [len(c["input_images"]) for c in calls] == [0, 1, 1]  # one entry per image part
    assert calls[1]["input_images"] == [{"bytes": len(source), "sha256": hashlib.sha256(source).hexdigest()}]


def test_usage_metadata(client: genai.Client) -> None:
    prompt = "x" * 41  # ceil(41 / 4) = 11 text tokens
    usage = generate(client, prompt, aspect_ratio="16:9", image_size="2K").usage_metadata

    assert usage.prompt_token_count == 11
    assert usage.candidates_token_count == 1680
    assert usage.total_token_count == 11 + 1680
    assert [(d.modality, d.token_count) for d in usage.candidates_tokens_details] == [
        (types.MediaModality.IMAGE, 1680)
    ]


def test_text_and_image_modalities_return_both_parts(client: genai.Client) -> None:
    response = generate(client, "a kite", modalities=("TEXT", "IMAGE"))

    assert response.text and "stand-in" in response.text
    assert image_bytes(response)


@pytest.mark.parametrize(
    ("kind", "error_type", "code", "status"),
    [
        ("429", errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
        ("invalid_key", errors.ClientError, 400, "INVALID_ARGUMENT"),
        ("not_found", errors.ClientError, 404, "NOT_FOUND"),
        ("500", errors.ServerError, 500, "INTERNAL"),
        ("503", errors.ServerError, 503, "UNAVAILABLE"),
    ],
)
def test_error_faults_surface_as_sdk_errors(
    server: StandinServer,
    client: genai.Client,
    kind: str,
    error_type: type[errors.APIError],
    code: int,
    status: str,
) -> None:
    set_faults(server, {"kind": kind, "match": None, "times": None})

    with pytest.raises(error_type) as caught:
        generate(client, "anything")

    assert (caught.value.code, caught.value.status) == (code, status)


def test_invalid_key_fault_looks_like_google(server: StandinServer, client: genai.Client) -> None:
    set_faults(server, {"kind": "invalid_key"})

    with pytest.raises(errors.ClientError) as caught:
        generate(client, "anything")

    assert caught.value.message == "API key not valid. Please pass a valid API key."
    info = caught.value.details["error"]["details"][0]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert (info["reason"], info["domain"]) == ("API_KEY_INVALID", "googleapis.com")


def test_safety_fault_blocks_the_prompt(server: StandinServer, client: genai.Client) -> None:
    set_faults(server, {"kind": "safety"})

    response = generate(client, "anything")

    assert response.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    assert not response.candidates


@pytest.mark.parametrize("kind", ["image_safety", "no_image"])
def test_candidate_faults_finish_without_an_image(
    server: StandinServer, client: genai.Client, kind: str
) -> None:
    set_faults(server, {"kind": kind})

    response = generate(client, "anything")

    assert response.candidates[0].finish_reason == types.FinishReason(kind.upper())
    assert not any(p.inline_data for p in response.parts or [])


def test_fault_times_are_used_up(server: StandinServer, client: genai.Client) -> None:
    set_faults(server, {"kind": "429", "times": 2})

    for _ in range(2):
        with pytest.raises(errors.ClientError):
            generate(client, "retry me")
    assert image_bytes(generate(client, "retry me"))
    assert control(server, "GET", "/_standin/config")[1]["faults"][0]["times"] == 0


def test_fault_match_filters_by_prompt_and_first_live_match_wins(
    server: StandinServer, client: genai.Client
) -> None:
    set_faults(
        server,
        {"kind": "503", "match": "overload", "times": 1},
        {"kind": "safety", "match": "overload", "times": None},
    )

    assert image_bytes(generate(client, "a calm lake"))
    with pytest.raises(errors.ServerError):
        generate(client, "please overload")
    assert (
        generate(client, "please overload").prompt_feedback.block_reason
        == types.BlockedReason.SAFETY
    )


def test_multiple_candidates_are_rejected(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        generate(client, "two foxes", candidate_count=2)

    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")


def test_unknown_aspect_ratio_is_rejected(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        generate(client, "a wide fox", aspect_ratio="7:3")

    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")


def test_non_image_model_is_not_found(server: StandinServer) -> None:
    v1beta = make_client(server, api_version="v1beta")

    with pytest.raises(errors.ClientError) as caught:
        v1beta.models.generate_content(model="gemini-2.5-flash", contents="hi")

    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
    assert caught.value.message.startswith(
        "models/gemini-2.5-flash is not found for API version v1beta"
    )


def test_missing_api_key_is_denied(server: StandinServer) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    request = urllib.request.Request(
        f"{server.base_url}/v1beta/models/{MODEL}:generateContent",
        data=json.dumps(body).encode(),
        method="POST",
    )

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)

    assert caught.value.code == 403
    assert json.loads(caught.value.read())["error"]["status"] == "PERMISSION_DENIED"


def test_calls_log_counts_model_calls(server: StandinServer, client: genai.Client) -> None:
    generate(client, "first", aspect_ratio="4:3")
    with pytest.raises(errors.ClientError):
        generate(client, "second", aspect_ratio="7:3")

    log = control(server, "GET", "/_standin/calls")[1]
    timings = [(call.pop("render_ms"), call.pop("slept_ms")) for call in log["calls"]]

    assert all(render >= 0 and slept == 0 for render, slept in timings)
    assert log["count"] == 2
    assert log["calls"][0] == {
        "model": MODEL,
        "prompt": "first",
        "aspect_ratio": "4:3",
        "image_size": "1K",
        "seed": None,
        "has_input_image": False,
        "input_images": [],
        "fault": None,
        "status": 200,
    }
    assert (log["calls"][1]["prompt"], log["calls"][1]["status"]) == ("second", 400)
    control(server, "POST", "/_standin/reset")
    assert control(server, "GET", "/_standin/calls")[1] == {"count": 0, "calls": [], "in_flight": 0}


def test_latency_applies_to_successes_and_faults(
    server: StandinServer, client: genai.Client
) -> None:
    set_faults(server, {"kind": "safety", "match": "blocked"}, latency_ms=150)

    for prompt in ("fine", "blocked"):
        started = time.monotonic()
        generate(client, prompt)
        assert time.monotonic() - started >= 0.15


def test_drawing_counts_inside_the_latency_not_on_top(
    server: StandinServer, client: genai.Client
) -> None:
    """The call lasts latency_ms: the stand-in sleeps what its own drawing left of it."""
    set_faults(server, latency_ms=400)

    started = time.monotonic()
    response = generate(client, "a drawing worth timing", image_size="2K")
    elapsed = time.monotonic() - started

    call = control(server, "GET", "/_standin/calls")[1]["calls"][0]
    headers = response.sdk_http_response.headers if response.sdk_http_response else {}
    assert float(headers["x-standin-render-ms"]) == call["render_ms"] > 0
    assert call["slept_ms"] == pytest.approx(max(0.0, 400 - call["render_ms"]), abs=0.2)
    assert elapsed >= 0.4


def test_pictures_are_cached_by_prompt_size_and_inputs() -> None:
    first = render_png("cached picture", (256, 256))
    assert render_png("cached picture", (256, 256)) is first
    assert render_png("cached picture", (256, 128)) is not first


def test_bad_config_is_rejected(server: StandinServer) -> None:
    status, body = control(server, "PUT", "/_standin/config", {"faults": [{"kind": "teapot"}]})

    assert (status, body["error"]["status"]) == (400, "INVALID_ARGUMENT")
    assert control(server, "GET", "/_standin/config")[1] == {
        "latency_ms": 0,
        "faults": [],
        "shut_down_models": [],
        "model_latency_ms": {},
    }
    for bad in ({"shut_down_models": "gemini-3-pro-image"}, {"model_latency_ms": {"m": -1}}):
        assert control(server, "PUT", "/_standin/config", bad)[0] == 400


@pytest.mark.parametrize(
    ("model", "size", "output_tokens", "input_tokens"),
    [
        ("gemini-3.1-flash-image", "512", 747, 1120),
        ("gemini-3.1-flash-image", "4K", 2520, 1120),
        ("gemini-3-pro-image", "2K", 1120, 560),
        ("gemini-3-pro-image", "4K", 2000, 560),
        ("gemini-2.5-flash-image", "1K", 1290, 258),
    ],
)
def test_usage_follows_each_models_published_token_counts(
    client: genai.Client, model: str, size: str, output_tokens: int, input_tokens: int
) -> None:
    response = client.models.generate_content(
        model=model,
        contents=[types.Part.from_bytes(data=render_png("in", (64, 64)), mime_type="image/png"), "abcd"],
        config=types.GenerateContentConfig(
            response_modalities=["IMAGE"], image_config=types.ImageConfig(aspect_ratio="1:1", image_size=size)
        ),
    )
    usage = response.usage_metadata
    assert usage.candidates_token_count == output_tokens
    details = {d.modality: d.token_count for d in usage.prompt_tokens_details}
    assert details == {types.MediaModality.TEXT: 1, types.MediaModality.IMAGE: input_tokens}
    with Image.open(io.BytesIO(image_bytes(response))) as img:
        assert img.size == {"512": (512, 512), "1K": (1024, 1024), "2K": (2048, 2048), "4K": (4096, 4096)}[size]


def test_a_size_the_model_does_not_offer_is_a_400(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(
            model="gemini-2.5-flash-image",
            contents="p",
            config=types.GenerateContentConfig(image_config=types.ImageConfig(image_size="4K")),
        )
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")


def test_a_shut_down_model_answers_as_google_does(server: StandinServer, client: genai.Client) -> None:
    assert control(server, "PUT", "/_standin/config", {"shut_down_models": ["gemini-3-pro-image"]})[0] == 200
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-3-pro-image", contents="p")
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
    assert caught.value.message == (
        "This model models/gemini-3-pro-image is no longer available. Please update your code to use "
        "a newer model for the latest features and improvements."
    )
    assert image_bytes(generate(client, "p"))  # the others still answer


def test_safety_blocks_carry_ratings_and_finish_reason(server: StandinServer, client: genai.Client) -> None:
    set_faults(server, {"kind": "safety", "match": "prompt"}, {"kind": "image_safety", "match": "picture"})
    feedback = generate(client, "blocked prompt").prompt_feedback
    assert feedback.block_reason == types.BlockedReason.SAFETY
    blocked = [r.category for r in feedback.safety_ratings if r.blocked]
    assert blocked == [types.HarmCategory.HARM_CATEGORY_DANGEROUS_CONTENT]
    candidate = generate(client, "blocked picture").candidates[0]
    assert candidate.finish_reason == types.FinishReason.IMAGE_SAFETY
    assert not candidate.content  # no image part: the worker reports content_blocked


def test_latency_is_per_model(server: StandinServer, client: genai.Client) -> None:
    body = {"latency_ms": 100, "model_latency_ms": {"gemini-2.5-flash-image": 0}}
    assert control(server, "PUT", "/_standin/config", body)[0] == 200
    for model in ("gemini-3.1-flash-image", "gemini-3-pro-image", "gemini-2.5-flash-image"):
        client.models.generate_content(model=model, contents="p")
    calls = control(server, "GET", "/_standin/calls")[1]["calls"]
    totals = [call["render_ms"] + call["slept_ms"] for call in calls]
    # Flash 1x, Pro 2x the base latency; a model named in model_latency_ms gets its own.
    assert 95 <= totals[0] <= 140 and 195 <= totals[1] <= 240 and calls[2]["slept_ms"] == 0
