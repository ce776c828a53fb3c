"""Pillow post-processing: the model's picture to the exact size and format asked.

Gemini image models take an aspect ratio and an ``image_size`` tier (1K, 2K,
4K), not pixel sizes, so each seed size maps to the closest aspect ratio and
a tier at least as large as the target (``ultra`` asks for 4K where the
model offers it: ``model_catalog``); the result is then cover-resized (scaled
to fill, centre-cropped) to the exact dimensions and encoded.

=========  ======  =============================================
size       ratio   tier per quality (standard / high / ultra)
=========  ======  =============================================
512x512    1:1     1K / 1K / 4K (2K without 4K)
1024x1024  1:1     1K / 1K / 4K (2K without 4K)
1792x1024  16:9    1K / 2K / 4K (2K without 4K)
=========  ======  =============================================

A model that lacks a tier gets the largest it has below it
(``ModelSpec.tier``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageOps

from imagegen.generation.model_catalog import ModelSpec

# Bound on decoded pixels for anything we open (model output or user input):
# 4K 21:9 output is 6336x2688 = 17 Mpx; 40 Mpx leaves room and refuses bombs.
MAX_PIXELS = 40_000_000
_INPUT_MAX_SIDE = 2048

_ASPECT = {"512x512": "1:1", "1024x1024": "1:1", "1792x1024": "16:9"}
_TIER = {
    ("512x512", "standard"): "1K",
    ("512x512", "high"): "1K",
    ("512x512", "ultra"): "4K",
    ("1024x1024", "standard"): "1K",
    ("1024x1024", "high"): "1K",
    ("1024x1024", "ultra"): "4K",
    ("1792x1024", "standard"): "1K",
    ("1792x1024", "high"): "2K",
    ("1792x1024", "ultra"): "4K",
}
_CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
_LOSSY_QUALITY = {"standard": 85, "high": 92, "ultra": 95}
THUMBNAIL_SIDE = 256
_THUMBNAIL_QUALITY = 80


class ImageError(Exception):
    """Bytes that are not a usable image (corrupt, unsupported or too large)."""


@dataclass(frozen=True)
class Plan:
    """What to ask the model for, and what to turn its answer into."""

    aspect_ratio: str
    image_size: str
    width: int
    height: int


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    width: int
    height: int
    format: str
    content_type: str
    extension: str
    thumbnail: bytes
    """A WEBP of the image, ``THUMBNAIL_SIDE`` pixels on its long side."""

    @property
    def dimensions(self) -> str:
        return f"{self.width}x{self.height}"


def plan(size: str, quality: str, model: ModelSpec) -> Plan:
    """The aspect ratio and the tier ``model`` offers for ``size`` at ``quality``."""
    width, height = (int(side) for side in size.split("x"))
    return Plan(_ASPECT[size], model.tier(_TIER[(size, quality)]), width, height)


def open_image(data: bytes) -> Image.Image:
    """Decode ``data`` fully, refusing decompression bombs before decoding pixels; upright."""
    return ImageOps.exif_transpose(_decode(data))


def _decode(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise ImageError(f"image trop grande ({image.width}x{image.height})")
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError("image illisible ou format non pris en charge") from exc
    return image


def render(data: bytes, target: Plan, fmt: str, quality: str) -> EncodedImage:
    """Cover-resize the model's image to ``target`` and encode it as ``fmt``.

    A PNG that already is what was asked (PNG, exact size, upright) is kept as
    the model sent it, once decoded in full: encoding it again would cost time
    and change nothing a client sees.
    """
    decoded = _decode(data)
    if _as_asked(decoded, target, fmt):
        return _encoded(data, decoded, fmt)
    image = ImageOps.exif_transpose(decoded)
    keep_alpha = fmt in ("PNG", "WEBP") and image.mode in ("RGBA", "LA", "PA")
    image = image.convert("RGBA" if keep_alpha else "RGB")
    fitted = ImageOps.fit(image, (target.width, target.height), Image.Resampling.LANCZOS)
    return _encoded(_encode(fitted, fmt, quality), fitted, fmt)


def _as_asked(image: Image.Image, target: Plan, fmt: str) -> bool:
    return (
        fmt == image.format == "PNG"
        and image.size == (target.width, target.height)
        and image.getexif().get(ExifTags.Base.Orientation, 1) == 1
    )


def _encoded(data: bytes, image: Image.Image, fmt: str) -> EncodedImage:
    """``data``, the encoding of ``image``, with its thumbnail."""
    return EncodedImage(
        data=data,
        width=image.width,
        height=image.height,
        format=fmt,
        content_type=_CONTENT_TYPES[fmt],
        extension=_EXTENSIONS[fmt],
        thumbnail=_thumbnail(image),
    )


def _thumbnail(image: Image.Image) -> bytes:
    """``image`` scaled to ``THUMBNAIL_SIDE`` on its long side (aspect kept), as WEBP."""
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA")
    scale = THUMBNAIL_SIDE / max(image.width, image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    out = io.BytesIO()
    image.resize(size, Image.Resampling.LANCZOS).save(out, "WEBP", quality=_THUMBNAIL_QUALITY, method=4)
    return out.getvalue()


def _encode(image: Image.Image, fmt: str, quality: str) -> bytes:
    out = io.BytesIO()
    if fmt == "PNG":
        image.save(out, "PNG", compress_level=6)
    elif fmt == "JPEG":
        image.save(
            out,
            "JPEG",
            quality=_LOSSY_QUALITY[quality],
            optimize=True,
            progressive=True,
            subsampling=0 if quality == "ultra" else 2,
        )
    else:
        image.save(out, "WEBP", quality=_LOSSY_QUALITY[quality], method=4)
    return out.getvalue()


def prepare_input(data: bytes) -> tuple[bytes, str]:
    """Normalise a user's source image for the model: upright, RGB, ≤2048 px, JPEG.

    Re-encoding strips metadata and bounds what we send (and pay tokens for).
    """
    image = open_image(data).convert("RGB")
    image.thumbnail((_INPUT_MAX_SIDE, _INPUT_MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue(), "image/jpeg"
