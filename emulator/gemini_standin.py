"""Local stand-in for the Gemini image API — not Google's service, not a model.

It answers ``POST /{v1,v1beta,v1alpha}/models/{model}:generateContent`` with the
same camelCase REST JSON as generativelanguage.googleapis.com, so the real
google-genai SDK can talk to it through ``HttpOptions(base_url=...)``. The image
it returns is a deterministic picture *of the prompt* (a seeded geometric
composition with the prompt text drawn on it, or the input image tinted with the
text on top): same prompt, size and input image give byte-identical PNGs. Output
pixel sizes and token counts follow the Gemini 3 image models, so everything
around the model (storage, sizing, billing estimates, error handling) can be
exercised offline, without a key and without cost. Every response says it is a
stand-in (``modelVersion``, the ``Server`` header, the logs, a label on the image).

generateContent checks, in order: API key present, model exists (its name must
contain "image"), request valid, injected faults; then it renders.

Control endpoints, never under the Gemini paths:
  GET  /_standin/health  -> {"status": "ok", "stand_in": true}
  GET  /_standin/config  -> current config (fault ``times`` = remaining uses)
  PUT  /_standin/config  {"latency_ms": int, "faults": [{"kind", "match", "times"}],
                          "shut_down_models": [model, ...], "model_latency_ms": {model: int}}
  POST /_standin/reset   -> latency 0, no faults, call log cleared
  GET  /_standin/calls   -> {"count": n, "calls": [...], "in_flight": n} (calls log when answered)
Fault kinds: "429", "500", "503", "invalid_key", "not_found" (Google error JSON),
"safety" (promptFeedback with safetyRatings), "image_safety" (finishReason
IMAGE_SAFETY with its finishMessage), "no_image" (HTTP 200 without an image).
A model in ``shut_down_models`` answers as a retired model does (404 NOT_FOUND
"This model models/x is no longer available..."). Token counts and latency
follow each model's profile (``MODEL_PROFILES``: Google's published tokens per
output image and size and per input image; ``latency_ms`` × the model's factor,
unless ``model_latency_ms`` names it); an image size the model does not offer
is a 400. A fault hits
prompts containing ``match`` (all if null), ``times`` more times (null: forever);
the first live match in list order wins. ``generationConfig.seed`` picks the
picture with the prompt: same seed, same bytes; another seed, another picture.
``latency_ms`` is how long every
generateContent call takes, faults included: the stand-in's own work (parsing,
drawing, encoding) counts inside it, and only the rest is slept, so the drawing
never adds to the model time a client measures (unless it alone takes longer).
Each call's drawing time is in the ``X-Standin-Render-Ms`` header and, with the
time slept, in ``/_standin/calls`` (``render_ms``, ``slept_ms``). Pictures are
cached by prompt, size and input images, and fonts by size.

Run: ``python -m emulator.gemini_standin --port 9010 [--latency-ms 0]``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import colorsys
import functools
import hashlib
import io
import json
import math
import random
import re
import secrets
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from PIL import Image, ImageDraw, ImageFont, ImageOps

COMPONENT = "gemini-standin"
RENDER_HEADER = "X-Standin-Render-Ms"
MODEL_VERSION_SUFFIX = " (local stand-in)"

# Gemini 3 image models' output sizes at 1K; 2K doubles each side, 4K quadruples.
BASE_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "2:3": (848, 1264),
    "3:2": (1264, 848),
    "3:4": (896, 1200),
    "4:3": (1200, 896),
    "4:5": (928, 1152),
    "5:4": (1152, 928),
    "9:16": (768, 1376),
    "16:9": (1376, 768),
    "21:9": (1584, 672),
}
SIZE_SCALE = {"512": 0.5, "1K": 1, "2K": 2, "4K": 4}


@dataclass(frozen=True)
class ModelProfile:
    """What one image model bills and how long it takes, as Google publishes it.

    Token counts: Vertex AI model pages, read 2026-12-01:
    docs.cloud.google.com/vertex-ai/generative-ai/docs/models/gemini/3-1-flash-image
    ("1120 input image tokens per input image ... 747 output image tokens for 512,
    1120 for 1K, 1680 for 2K, and 2520 for 4K") and .../models/gemini/3-pro-image
    ("560 input image tokens per input image ... 1120 tokens for 1K and 2K, and 2000
    tokens for 4K"); Gemini 2.5 Flash Image: 1290 tokens per image up to 1024x1024
    (ai.google.dev/gemini-api/docs/pricing), 258 per input image. ``latency_factor``
    scales ``latency_ms`` (Pro thinks before drawing: about twice Flash's time).
    """

    output_image_tokens: dict[str, int]
    input_image_tokens: int
    latency_factor: float


MODEL_PROFILES: dict[str, ModelProfile] = {
    "gemini-3.1-flash-image": ModelProfile({"512": 747, "1K": 1120, "2K": 1680, "4K": 2520}, 1120, 1.0),
    "gemini-3-pro-image": ModelProfile({"1K": 1120, "2K": 1120, "4K": 2000}, 560, 2.0),
    "gemini-2.5-flash-image": ModelProfile({"1K": 1290}, 258, 0.8),
}
DEFAULT_PROFILE = MODEL_PROFILES["gemini-3.1-flash-image"]


def profile(model: str) -> ModelProfile:
    """The model's profile (``-preview`` names share it; others: Flash's)."""
    return MODEL_PROFILES.get(model.removesuffix("-preview"), DEFAULT_PROFILE)


FAULT_KINDS = frozenset(
    {"429", "500", "503", "invalid_key", "safety", "image_safety", "no_image", "not_found"}
)

_GENERATE_PATH = re.compile(r"^/(v1|v1beta|v1alpha)/models/([^/:]+):generateContent$")
_TROUBLESHOOTING = "https://developers.generativeai.google/guide/troubleshooting"


class ApiError(Exception):
    """An error answered in Google's JSON error shape."""

    def __init__(
        self, code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(f"{code} {status}: {message}")
        self.code = code
        self.status = status
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def _invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


def _model_shut_down(model: str) -> ApiError:
    """What the API answers for a model Google has retired."""
    return ApiError(
        404,
        "NOT_FOUND",
        f"This model models/{model} is no longer available. Please update your code to use "
        "a newer model for the latest features and improvements.",
    )


def _model_not_found(model: str, api_version: str) -> ApiError:
    return ApiError(
        404,
        "NOT_FOUND",
        f"models/{model} is not found for API version {api_version}, or is not supported "
        "for generateContent. Call ListModels to see the list of available models and "
        "their supported methods.",
    )


def _missing_key() -> ApiError:
    return ApiError(
        403,
        "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers (callers without established identity)."
        " Please use API key or other form of API consumer identity to call this API.",
    )


def _fault_error(kind: str, model: str, api_version: str) -> ApiError:
    """The error the real API answers for an injected error fault."""
    if kind == "429":
        return ApiError(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details. "
            "For more information on this error, head to: "
            "https://ai.google.dev/gemini-api/docs/rate-limits.",
            [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}],
        )
    if kind == "500":
        return ApiError(
            500,
            "INTERNAL",
            f"An internal error has occurred. Please retry or report in {_TROUBLESHOOTING}",
        )
    if kind == "503":
        return ApiError(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
    if kind == "invalid_key":
        message = "API key not valid. Please pass a valid API key."
        return ApiError(
            400,
            "INVALID_ARGUMENT",
            message,
            [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": message,
                },
            ],
        )
    return _model_not_found(model, api_version)


# --------------------------------------------------------------------------- config


@dataclass
class Fault:
    """An injected fault; ``times`` counts down per use, ``None`` never runs out."""

    kind: str
    match: str | None = None
    times: int | None = None

    def applies_to(self, prompt: str) -> bool:
        live = self.times is None or self.times > 0
        return live and (self.match is None or self.match in prompt)

    @classmethod
    def from_json(cls, obj: Any) -> Fault:
        if not isinstance(obj, dict) or obj.get("kind") not in FAULT_KINDS:
            raise _invalid(f"each fault needs a 'kind' in {sorted(FAULT_KINDS)}, got {obj!r}")
        match, times = obj.get("match"), obj.get("times")
        if match is not None and not isinstance(match, str):
            raise _invalid(f"fault 'match' must be a string or null, got {match!r}")
        if times is not None and (not _is_int(times) or times < 0):
            raise _invalid(f"fault 'times' must be a non-negative integer or null, got {times!r}")
        return cls(obj["kind"], match, times)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Config:
    """A ``PUT /_standin/config`` body: latency, faults, retired models, per-model latency."""

    latency_ms: int = 0
    faults: tuple[Fault, ...] = ()
    shut_down_models: tuple[str, ...] = ()
    """Models that answer as Google's retired models do (404 "no longer available")."""
    model_latency_ms: tuple[tuple[str, int], ...] = ()
    """Per-model latency, instead of ``latency_ms`` × the model's ``latency_factor``."""

    def latency_ms_for(self, model: str) -> float:
        explicit = dict(self.model_latency_ms)
        if model in explicit:
            return explicit[model]
        return self.latency_ms * profile(model).latency_factor

    def as_json(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "faults": [asdict(f) for f in self.faults],
            "shut_down_models": list(self.shut_down_models),
            "model_latency_ms": dict(self.model_latency_ms),
        }


def _non_negative_ms(name: str, value: Any) -> int:
    if not _is_int(value) or value < 0:
        raise _invalid(f"'{name}' must be a non-negative integer, got {value!r}")
    return value


def parse_config(obj: Any) -> Config:
    """Validates a ``PUT /_standin/config`` body."""
    if not isinstance(obj, dict):
        raise _invalid("config must be a JSON object")
    latency_ms = _non_negative_ms("latency_ms", obj.get("latency_ms", 0))
    faults = obj.get("faults") or []
    if not isinstance(faults, list):
        raise _invalid("'faults' must be a list")
    shut_down = obj.get("shut_down_models") or []
    if not isinstance(shut_down, list) or not all(isinstance(m, str) for m in shut_down):
        raise _invalid("'shut_down_models' must be a list of model names")
    per_model = obj.get("model_latency_ms") or {}
    if not isinstance(per_model, dict):
        raise _invalid("'model_latency_ms' must be an object of model name to milliseconds")
    return Config(
        latency_ms,
        tuple(Fault.from_json(f) for f in faults),
        tuple(shut_down),
        tuple((str(m), _non_negative_ms(f"model_latency_ms.{m}", ms)) for m, ms in per_model.items()),
    )


class StandinState:
    """Latency, faults and the call log, shared by the server's request threads."""

    def __init__(self, latency_ms: int = 0) -> None:
        self._lock = threading.Lock()
        self._config = Config(latency_ms)
        self._calls: list[dict[str, Any]] = []
        self.in_flight = 0  # generateContent calls received and not answered yet

    def configure(self, config: Config) -> None:
        with self._lock:
            self._config = config

    def reset(self) -> None:
        with self._lock:
            self._config = Config()
            self._calls = []

    def config(self) -> dict[str, Any]:
        with self._lock:
            return self._config.as_json()

    def latency_seconds(self, model: str) -> float:
        with self._lock:
            return self._config.latency_ms_for(model) / 1000

    def is_shut_down(self, model: str) -> bool:
        with self._lock:
            return model in self._config.shut_down_models

    def take_fault(self, prompt: str) -> str | None:
        """Kind of the first live fault matching ``prompt``, using up one of its ``times``."""
        with self._lock:
            for fault in self._config.faults:
                if fault.applies_to(prompt):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault.kind
        return None

    def record_call(self, call: dict[str, Any]) -> None:
        with self._lock:
            self._calls.append(call)

    def count_in_flight(self, change: int) -> None:
        with self._lock:
            self.in_flight += change

    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self._calls]


# --------------------------------------------------------------------------- request


@dataclass(frozen=True)
class ImageRequest:
    """The parts of a generateContent request the stand-in acts on."""

    prompt: str
    images: tuple[bytes, ...]
    aspect_ratio: str
    image_size: str
    modalities: tuple[str, ...] | None
    candidate_count: int
    seed: int | None = None


def _decode_b64(data: Any) -> bytes:
    """Decodes standard or URL-safe base64, as the real API's JSON parser does."""
    if not isinstance(data, str):
        raise _invalid("inlineData.data must be a base64 string")
    normalized = data.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(normalized + "=" * (-len(normalized) % 4), validate=True)
    except (binascii.Error, ValueError) as err:
        raise _invalid(f"Invalid value at 'contents.parts.inline_data.data': {err}") from err


def _field(obj: dict[str, Any], camel: str) -> Any:
    """Reads a field by its JSON (camelCase) or proto (snake_case) name.

    Proto3 JSON parsers accept both, and the SDK really sends ``mime_type``
    inside ``inlineData``.
    """
    if camel in obj:
        return obj[camel]
    return obj.get(re.sub(r"([A-Z])", lambda m: "_" + m[1].lower(), camel))


def _collect_parts(contents: Any) -> tuple[list[str], list[bytes]]:
    """Text and image bytes of the user turns."""
    if not isinstance(contents, list) or not contents:
        raise _invalid("* GenerateContentRequest.contents: contents is not specified")
    texts: list[str] = []
    images: list[bytes] = []
    for content in contents:
        if not isinstance(content, dict) or content.get("role", "user") != "user":
            continue
        for part in content.get("parts") or []:
            part = part if isinstance(part, dict) else {}
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(_field(part, "inlineData"), dict):
                blob = _field(part, "inlineData")
                mime_type = _field(blob, "mimeType")
                if not str(mime_type).startswith("image/"):
                    raise _invalid(f"Unsupported MIME type: {mime_type}")
                images.append(_decode_b64(blob.get("data")))
            else:
                raise _invalid("the local stand-in only supports text and inlineData parts")
    if not texts and not images:
        raise _invalid(
            "* GenerateContentRequest.contents[0].parts: contents.parts must not be empty."
        )
    return texts, images


def parse_request(body: Any) -> ImageRequest:
    """Extracts prompt, input images and image config from a request body."""
    if not isinstance(body, dict):
        raise _invalid("Invalid JSON payload received. Expected an object.")
    texts, images = _collect_parts(body.get("contents"))
    generation = _field(body, "generationConfig") or {}
    image_config = _field(generation, "imageConfig") or {}
    modalities = _field(generation, "responseModalities")
    return ImageRequest(
        prompt="\n".join(texts),
        images=tuple(images),
        aspect_ratio=_field(image_config, "aspectRatio") or "1:1",
        image_size=_field(image_config, "imageSize") or "1K",
        modalities=tuple(m.upper() for m in modalities) if modalities else None,
        candidate_count=_field(generation, "candidateCount") or 1,
        seed=_field(generation, "seed"),
    )


def validate_request(req: ImageRequest, model: str = "gemini-3.1-flash-image") -> None:
    """Rejects what the real image models reject (``image_size``: what ``model`` offers)."""
    if req.candidate_count > 1:
        raise _invalid("Multiple candidates is not enabled for this model.")
    if req.seed is not None and (not _is_int(req.seed) or not -(2**31) <= req.seed < 2**31):
        raise _invalid(f"Invalid value at 'generation_config.seed' (TYPE_INT32), {req.seed!r}")
    if req.aspect_ratio not in BASE_SIZES:
        raise _invalid(
            f"Unsupported aspect ratio: {req.aspect_ratio}. Supported: {', '.join(BASE_SIZES)}."
        )
    offered = profile(model).output_image_tokens
    if req.image_size not in offered:
        raise _invalid(f"Unsupported image size: {req.image_size}. Supported: {', '.join(offered)}.")
    if req.modalities is not None and not {"TEXT", "IMAGE"} & set(req.modalities):
        raise _invalid(f"Unsupported response modalities: {list(req.modalities)}.")
    for data in req.images:
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.verify()
        except Exception as err:  # Pillow raises many types for bad input
            raise _invalid(
                f"Unable to process input image. Please retry or report in {_TROUBLESHOOTING}"
            ) from err


def output_size(aspect_ratio: str, image_size: str) -> tuple[int, int]:
    width, height = BASE_SIZES[aspect_ratio]
    scale = SIZE_SCALE[image_size]
    return int(width * scale), int(height * scale)


# --------------------------------------------------------------------------- image


def _palette(rng: random.Random, count: int) -> list[tuple[int, int, int]]:
    """Colours spread around a hue picked by the prompt hash."""
    base = rng.random()
    colours = []
    for i in range(count):
        hue = (base + i / count + rng.uniform(-0.05, 0.05)) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, rng.uniform(0.45, 0.85), rng.uniform(0.55, 0.95))
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return colours


def _gradient(
    size: tuple[int, int], start: tuple[int, ...], end: tuple[int, ...], angle: float
) -> Image.Image:
    """Linear gradient along ``angle``, computed small and upscaled (fast at 4K)."""
    n = 64
    dx, dy = math.cos(angle), math.sin(angle)
    span = abs(dx) + abs(dy)
    values = [
        int(255 * (0.5 + ((x / (n - 1) - 0.5) * dx + (y / (n - 1) - 0.5) * dy) / span))
        for y in range(n)
        for x in range(n)
    ]
    mask = Image.new("L", (n, n))
    mask.putdata(values)
    mask = mask.resize(size, Image.Resampling.BILINEAR)
    return Image.composite(Image.new("RGB", size, end), Image.new("RGB", size, start), mask)


def _draw_shapes(img: Image.Image, rng: random.Random, colours: list[tuple[int, int, int]]) -> None:
    draw = ImageDraw.Draw(img, "RGBA")
    width, height = img.size
    unit = min(width, height)
    for _ in range(rng.randint(6, 10)):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = rng.uniform(0.08, 0.3) * unit
        fill = (*rng.choice(colours), rng.randint(80, 170))
        box = (cx - radius, cy - radius, cx + radius, cy + radius)
        shape = rng.choice(("ellipse", "rectangle", "triangle"))
        if shape == "ellipse":
            draw.ellipse(box, fill=fill)
        elif shape == "rectangle":
            draw.rectangle(box, fill=fill)
        else:
            turn = rng.uniform(0, 2 * math.pi)
            corners = (turn + k * 2 * math.pi / 3 for k in range(3))
            points = [(cx + radius * math.cos(a), cy + radius * math.sin(a)) for a in corners]
            draw.polygon(points, fill=fill)


def _background_from_inputs(
    inputs: tuple[bytes, ...], size: tuple[int, int], tint: tuple[int, int, int]
) -> Image.Image:
    """First input cover-cropped and tinted; further inputs as a thumbnail strip."""
    with Image.open(io.BytesIO(inputs[0])) as first:
        background = ImageOps.fit(first.convert("RGB"), size, Image.Resampling.BILINEAR)
    background = Image.blend(background, Image.new("RGB", size, tint), 0.3)
    thumb = min(size) // 6
    margin = thumb // 6
    for i, data in enumerate(inputs[1:]):
        with Image.open(io.BytesIO(data)) as extra:
            tile = ImageOps.fit(extra.convert("RGB"), (thumb, thumb), Image.Resampling.BILINEAR)
        background.paste(tile, (size[0] - (i + 1) * (thumb + margin), margin))
    return background


_Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def _wrap(
    draw: ImageDraw.ImageDraw, text: str, font: _Font, max_width: float, max_lines: int
) -> list[str]:
    """Greedy word wrap; words wider than a line are split, overflow ends in an ellipsis.

    Stops measuring once ``max_lines + 1`` lines exist, and splits long words
    by bisection, so a 4000-character word costs a few dozen measurements.
    """
    lines: list[str] = []

    def fits(candidate: str) -> bool:
        return draw.textlength(candidate, font=font) <= max_width

    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            if len(lines) > max_lines:
                break
            candidate = f"{line} {word}".strip()
            if fits(candidate):
                line = candidate
                continue
            if line:
                lines.append(line)
            line = word
            while len(line) > 1 and not fits(line) and len(lines) <= max_lines:
                low, high = 1, len(line) - 1  # the longest prefix that fits, at least 1 char
                while low < high:
                    middle = (low + high + 1) // 2
                    low, high = (middle, high) if fits(line[:middle]) else (low, middle - 1)
                lines.append(line[:low])
                line = line[low:]
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max(len(lines[-1]) - 3, 0)] + "..."
    return lines


@functools.lru_cache(maxsize=32)
def _font(size: int) -> _Font:
    return ImageFont.load_default(size=size)


def _draw_prompt(img: Image.Image, prompt: str) -> None:
    """The prompt text on a translucent panel in the lower part of the image."""
    width, height = img.size
    draw = ImageDraw.Draw(img, "RGBA")
    font = _font(max(12, min(width, height) // 18))
    lines = _wrap(draw, prompt or "(no text prompt)", font, width * 0.84, max_lines=6)
    _, ascent_top, _, descent_bottom = font.getbbox("Ag")
    line_height = int((descent_bottom - ascent_top) * 1.4)
    pad = line_height // 2
    block = line_height * len(lines)
    top = int(height * 0.62 - block / 2)
    draw.rounded_rectangle(
        (width * 0.06, top - pad, width * 0.94, top + block + pad), radius=pad, fill=(0, 0, 0, 150)
    )
    for i, line in enumerate(lines):
        draw.text((width / 2, top + i * line_height), line, font=font, fill="white", anchor="ma")


def _draw_label(img: Image.Image) -> None:
    draw = ImageDraw.Draw(img, "RGBA")
    width, height = img.size
    font = _font(max(10, min(width, height) // 40))
    margin = min(width, height) // 50
    text = f"GEMINI STAND-IN · {width}x{height}"
    left, top, right, bottom = draw.textbbox((margin * 2, margin * 2), text, font=font)
    draw.rectangle(
        (left - margin, top - margin, right + margin, bottom + margin), fill=(0, 0, 0, 170)
    )
    draw.text((margin * 2, margin * 2), text, font=font, fill=(255, 210, 0))


@functools.lru_cache(maxsize=64)
def render_png(
    prompt: str, size: tuple[int, int], inputs: tuple[bytes, ...] = (), seed: int | None = None
) -> bytes:
    """A deterministic picture of ``prompt``: same arguments, same PNG bytes (so cached).

    The seed, when sent, picks the palette and the shapes with the prompt, so
    each seed gives another picture of the same prompt, as a model would.
    """
    key = prompt.encode("utf-8") + (b"" if seed is None else b"\0seed=%d" % seed)
    rng = random.Random(hashlib.sha256(key).digest())
    colours = _palette(rng, 4)
    if inputs:
        img = _background_from_inputs(inputs, size, colours[0])
    else:
        img = _gradient(size, colours[0], colours[1], rng.uniform(0, 2 * math.pi))
        _draw_shapes(img, rng, colours)
    _draw_prompt(img, prompt)
    _draw_label(img)
    buffer = io.BytesIO()
    img.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


# --------------------------------------------------------------------------- responses


def _text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _usage(model: str, req: ImageRequest, output: dict[str, int]) -> dict[str, Any]:
    """usageMetadata; ``output`` maps modality to candidate tokens (``MODEL_PROFILES``)."""
    prompt_details: list[dict[str, Any]] = [
        {"modality": "TEXT", "tokenCount": _text_tokens(req.prompt)}
    ]
    if req.images:
        prompt_details.append(
            {"modality": "IMAGE", "tokenCount": profile(model).input_image_tokens * len(req.images)}
        )
    prompt_tokens = sum(d["tokenCount"] for d in prompt_details)
    usage: dict[str, Any] = {
        "promptTokenCount": prompt_tokens,
        "promptTokensDetails": prompt_details,
    }
    candidate_tokens = sum(output.values())
    if output:
        usage["candidatesTokenCount"] = candidate_tokens
        usage["candidatesTokensDetails"] = [
            {"modality": m, "tokenCount": n} for m, n in output.items()
        ]
    usage["totalTokenCount"] = prompt_tokens + candidate_tokens
    return usage


def _envelope(
    model: str, req: ImageRequest, output: dict[str, int], **fields: Any
) -> dict[str, Any]:
    return {
        **fields,
        "usageMetadata": _usage(model, req, output),
        "modelVersion": model + MODEL_VERSION_SUFFIX,
        "responseId": secrets.token_urlsafe(16),
    }


def _candidate(parts: list[dict[str, Any]], finish_reason: str) -> dict[str, Any]:
    candidate: dict[str, Any] = {"finishReason": finish_reason, "index": 0}
    if parts:
        candidate["content"] = {"role": "model", "parts": parts}
    return candidate


def success_response(model: str, req: ImageRequest) -> dict[str, Any]:
    """A STOP candidate with a text part and/or a PNG, as responseModalities ask."""
    width, height = output_size(req.aspect_ratio, req.image_size)
    parts: list[dict[str, Any]] = []
    output: dict[str, int] = {}
    if req.modalities is None or "TEXT" in req.modalities:
        text = f"Local stand-in image ({width}x{height}, {req.aspect_ratio}) for the prompt."
        parts.append({"text": text})
        output["TEXT"] = _text_tokens(text)
    if req.modalities is None or "IMAGE" in req.modalities:
        data = _encoded_png(req.prompt, (width, height), req.images, req.seed)
        parts.append(
            {
                "inlineData": {
                    "mimeType": "image/png",
                    "data": data,
                }
            }
        )
        output["IMAGE"] = profile(model).output_image_tokens[req.image_size]
    return _envelope(model, req, output, candidates=[_candidate(parts, "STOP")])


@functools.lru_cache(maxsize=64)
def _encoded_png(
    prompt: str, size: tuple[int, int], inputs: tuple[bytes, ...], seed: int | None
) -> str:
    """``render_png`` as the base64 text of ``inlineData``."""
    return base64.b64encode(render_png(prompt, size, inputs, seed)).decode("ascii")


# A blocked prompt's ratings, one per category as the API lists them, the culprit blocked.
_RATINGS = [
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "LOW"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
]
_IMAGE_FILTERED = (
    "Unable to show the generated image. The generated image was filtered out because it "
    "violated Google's Generative AI Prohibited Use policy. (local stand-in)"
)


def fault_response(kind: str, model: str, api_version: str, req: ImageRequest) -> dict[str, Any]:
    """The 200 body for a content fault; raises ApiError for error faults."""
    if kind == "safety":
        return _envelope(model, req, {}, promptFeedback={"blockReason": "SAFETY", "safetyRatings": _RATINGS})
    if kind == "image_safety":
        candidate = _candidate([], "IMAGE_SAFETY") | {"finishMessage": _IMAGE_FILTERED}
        return _envelope(model, req, {}, candidates=[candidate])
    if kind == "no_image":
        text = "I can't generate an image for this request. (local stand-in)"
        candidate = _candidate([{"text": text}], "NO_IMAGE")
        return _envelope(model, req, {"TEXT": _text_tokens(text)}, candidates=[candidate])
    raise _fault_error(kind, model, api_version)


def generate_content(
    state: StandinState, api_version: str, model: str, api_key: str, raw_body: bytes
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Handles one generateContent call; returns (status, body, call-log entry).

    The call lasts ``latency_ms`` in all: the time spent here producing the
    answer is timed (``render_ms``) and only the remainder slept (``slept_ms``).
    """
    started = time.monotonic()
    state.count_in_flight(+1)
    try:
        return _answer(state, api_version, model, api_key, raw_body, started)
    finally:
        state.count_in_flight(-1)


def _answer(
    state: StandinState, api_version: str, model: str, api_key: str, raw_body: bytes, started: float
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    call: dict[str, Any] = {
        "model": model,
        "prompt": None,
        "aspect_ratio": None,
        "image_size": None,
        "seed": None,
        "has_input_image": False,
        "input_images": [],
        "fault": None,
    }
    try:
        body = _generate(state, api_version, model, api_key, raw_body, call)
        status = 200
    except ApiError as err:
        status, body = err.code, err.body()
    rendered = time.monotonic() - started
    pause = max(0.0, state.latency_seconds(model) - rendered)
    time.sleep(pause)
    call |= {"status": status, "render_ms": round(rendered * 1000, 1), "slept_ms": round(pause * 1000, 1)}
    state.record_call(call)
    return status, body, call


def _generate(
    state: StandinState,
    api_version: str,
    model: str,
    api_key: str,
    raw_body: bytes,
    call: dict[str, Any],
) -> dict[str, Any]:
    """The checks in the module docstring's order; fills ``call`` as it learns."""
    if not api_key:
        raise _missing_key()
    if "image" not in model:
        raise _model_not_found(model, api_version)
    if state.is_shut_down(model):
        raise _model_shut_down(model)
    req = parse_request(_load_json(raw_body))
    call.update(
        prompt=req.prompt,
        aspect_ratio=req.aspect_ratio,
        image_size=req.image_size,
        seed=req.seed,
        has_input_image=bool(req.images),
        # One entry per image part, in order: tests see every reference image as its own part.
        input_images=[{"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()} for data in req.images],
    )
    validate_request(req, model)
    fault = state.take_fault(req.prompt)
    if fault is not None:
        call["fault"] = fault
        return fault_response(fault, model, api_version, req)
    return success_response(model, req)


def _load_json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _invalid(f"Invalid JSON payload received. {err}") from err


# --------------------------------------------------------------------------- HTTP


def log(severity: str, message: str, **fields: Any) -> None:
    """One JSON line on stderr (a single write, so threads don't interleave)."""
    entry = {"severity": severity, "message": message, "component": COMPONENT, **fields}
    sys.stderr.write(json.dumps(entry, ensure_ascii=False) + "\n")
    sys.stderr.flush()


class _StandinHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: StandinState) -> None:
        super().__init__(address, _Handler)
        self.state = state


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # see emulator/__init__.py
    server: _StandinHTTPServer

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def version_string(self) -> str:
        """The ``Server`` header: exactly ``gemini-standin``, no Python version."""
        return COMPONENT

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: ``_dispatch`` logs one JSON line per request instead."""

    def _dispatch(self) -> None:
        started = time.monotonic()
        split = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fields: dict[str, Any] = {}
        headers: dict[str, str] = {}
        try:
            status, body = self._route(split.path, split.query, raw, fields, headers)
        except ApiError as err:
            status, body = err.code, err.body()
        except Exception as err:
            fields["error"] = repr(err)
            failure = ApiError(500, "INTERNAL", f"Local stand-in failed: {err!r}")
            status, body = failure.code, failure.body()
        severity = "ERROR" if "error" in fields else "INFO" if status < 400 else "WARNING"
        log(
            severity,
            f"{self.command} {split.path} -> {status} (local stand-in)",
            method=self.command,
            path=split.path,
            status=status,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            **fields,
        )
        self._send_json(status, body, headers)  # after the log, so a caller never outruns its log line

    def _route(
        self, path: str, query: str, raw: bytes, fields: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Any]:
        state = self.server.state
        match = _GENERATE_PATH.match(path)
        if match and self.command == "POST":
            api_key = self.headers.get("x-goog-api-key") or parse_qs(query).get("key", [""])[0]
            status, body, call = generate_content(state, match[1], match[2], api_key, raw)
            fields.update(
                model=call["model"],
                fault=call["fault"],
                prompt_chars=len(call["prompt"] or ""),
                render_ms=call["render_ms"],
            )
            headers[RENDER_HEADER] = str(call["render_ms"])
            return status, body
        route = (self.command, path)
        if route == ("GET", "/_standin/health"):
            return 200, {"status": "ok", "stand_in": True}
        if route == ("GET", "/_standin/config"):
            return 200, state.config()
        if route == ("PUT", "/_standin/config"):
            state.configure(parse_config(_load_json(raw)))
            return 200, state.config()
        if route == ("POST", "/_standin/reset"):
            state.reset()
            return 200, state.config()
        if route == ("GET", "/_standin/calls"):
            calls = state.calls()
            return 200, {"count": len(calls), "calls": calls, "in_flight": state.in_flight}
        raise ApiError(
            404, "NOT_FOUND", f"{self.command} {path} is not served by the local stand-in."
        )

    def _send_json(self, status: int, body: Any, headers: dict[str, str]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def serve(
    host: str = "127.0.0.1", port: int = 9010, latency_ms: int = 0
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Starts the stand-in on a daemon thread (``port=0`` picks a free port)."""
    server = _StandinHTTPServer((host, port), StandinState(latency_ms))
    thread = threading.Thread(target=server.serve_forever, name=COMPONENT, daemon=True)
    thread.start()
    log(
        "INFO",
        f"Gemini image API local stand-in listening on http://{host}:{server.server_port}",
        host=host,
        port=server.server_port,
        latency_ms=latency_ms,
    )
    return server, thread


class StandinServer:
    """In-process stand-in for tests: ``with StandinServer() as s: s.base_url``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency_ms: int = 0) -> None:
        self._args = (host, port, latency_ms)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self._server, self._thread = serve(*self._args)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "use StandinServer as a context manager"
        return f"http://{self._args[0]}:{self._server.server_port}"

    @property
    def state(self) -> StandinState:
        assert isinstance(self._server, _StandinHTTPServer), (
            "use StandinServer as a context manager"
        )
        return self._server.state


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Local stand-in for the Gemini image API (not Google's service)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9010)
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly on SIGTERM too
    server, thread = serve(args.host, args.port, args.latency_ms)
    try:
        thread.join()
    except KeyboardInterrupt:
        log("INFO", "Gemini image API local stand-in stopping")
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
