"""Pillow post-processing: exact dimensions and formats from any model output."""

from __future__ import annotations

import io
import itertools

import pytest
from PIL import Image

from imagegen.generation import imaging, model_catalog
from imagegen.models import FORMATS, QUALITIES, SIZES

FLASH = model_catalog.spec("gemini-3.1-flash-image")


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    color = (200, 40, 90, 128) if mode == "RGBA" else (200, 40, 90)
    Image.new(mode, (width, height), color[: len(mode)]).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("model", "size", "quality", "expected"),
    [
        ("gemini-3.1-flash-image", "512x512", "standard", ("1:1", "1K")),
        ("gemini-3.1-flash-image", "1024x1024", "high", ("1:1", "1K")),
        ("gemini-3.1-flash-image", "1024x1024", "ultra", ("1:1", "4K")),
        ("gemini-3.1-flash-image", "1792x1024", "standard", ("16:9", "1K")),
        ("gemini-3.1-flash-image", "1792x1024", "high", ("16:9", "2K")),
        ("gemini-3.1-flash-image", "1792x1024", "ultra", ("16:9", "4K")),
        ("gemini-3-pro-image", "512x512", "ultra", ("1:1", "4K")),
        # Without 4K, ultra takes the largest tier the model has below it.
        ("gemini-2.5-flash-image", "1792x1024", "ultra", ("16:9", "1K")),
        ("gemini-future-image", "1792x1024", "ultra", ("16:9", "2K")),
    ],
)
def test_plan_maps_size_and_quality(model: str, size: str, quality: str, expected: tuple[str, str]) -> None:
    plan = imaging.plan(size, quality, model_catalog.spec(model))
    assert (plan.aspect_ratio, plan.image_size) == expected
    assert f"{plan.width}x{plan.height}" == size


@pytest.mark.parametrize(("size", "fmt", "quality"), list(itertools.product(SIZES, FORMATS, QUALITIES)))
def test_render_gives_exact_size_and_format(size: str, fmt: str, quality: str) -> None:
    source = png(1376, 768) if size == "1792x1024" else png(1024, 1024)
    encoded = imaging.render(source, imaging.plan(size, quality, FLASH), fmt, quality)
    decoded = Image.open(io.BytesIO(encoded.data))
    assert decoded.format == fmt
    assert f"{decoded.width}x{decoded.height}" == size == encoded.dimensions
    assert encoded.content_type == f"image/{fmt.lower()}"
    with Image.open(io.BytesIO(encoded.thumbnail)) as thumbnail:
        assert thumbnail.format == "WEBP"
        assert thumbnail.size == ((256, 146) if size == "1792x1024" else (256, 256))


def test_render_crops_instead_of_stretching() -> None:
    # A square picture whose left half is red and right half blue, to 16:9:
    # cover-resizing keeps the centre, so both colours remain, undistorted.
    image = Image.new("RGB", (1000, 1000), (255, 0, 0))
    image.paste((0, 0, 255), (500, 0, 1000, 1000))
    out = io.BytesIO()
    image.save(out, "PNG")
    encoded = imaging.render(out.getvalue(), imaging.plan("1792x1024", "high", FLASH), "PNG", "high")
    result = Image.open(io.BytesIO(encoded.data)).convert("RGB")
    assert result.getpixel((10, 512)) == (255, 0, 0)
    assert result.getpixel((1780, 512)) == (0, 0, 255)


def test_alpha_kept_for_png_and_dropped_for_jpeg() -> None:
    source = png(1024, 1024, "RGBA")
    target = imaging.plan("512x512", "high", FLASH)
    assert Image.open(io.BytesIO(imaging.render(source, target, "PNG", "high").data)).mode == "RGBA"
    assert Image.open(io.BytesIO(imaging.render(source, target, "JPEG", "high").data)).mode == "RGB"


def test_corrupt_bytes_refused() -> None:
    with pytest.raises(imaging.ImageError):
        imaging.render(b"not an image", imaging.plan("512x512", "high", FLASH), "PNG", "high")


def test_decompression_bomb_refused_before_decoding() -> None:
    # A 10000x5000 PNG of one colour is tiny on disk but 50 Mpx once decoded.
    bomb = png(10000, 5000)
    assert len(bomb) < 200_000
    with pytest.raises(imaging.ImageError, match="trop grande"):
        imaging.open_image(bomb)


def test_prepare_input_normalises_to_bounded_jpeg() -> None:
    data, mime = imaging.prepare_input(png(3000, 1500, "RGBA"))
    image = Image.open(io.BytesIO(data))
    assert mime == "image/jpeg" and image.format == "JPEG"
    assert image.size == (2048, 1024)


def test_a_png_already_as_asked_is_kept_as_the_model_sent_it() -> None:
    source = png(1024, 1024)
    target = imaging.plan("1024x1024", "high", FLASH)
    assert imaging.render(source, target, "PNG", "high").data == source
    assert imaging.render(source, target, "WEBP", "high").data[:4] == b"RIFF"
    assert imaging.render(source, imaging.plan("512x512", "standard", FLASH), "PNG", "standard").data != source


def test_a_png_with_an_exif_rotation_is_turned_upright_not_kept() -> None:
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.new("RGB", (1024, 1024), (10, 20, 30)).save(out, "PNG", exif=exif)
    rendered = imaging.render(out.getvalue(), imaging.plan("1024x1024", "high", FLASH), "PNG", "high")
    assert rendered.data != out.getvalue()
    assert Image.open(io.BytesIO(rendered.data)).getexif().get(0x0112, 1) == 1


def test_a_truncated_png_of_the_right_size_is_refused() -> None:
    with pytest.raises(imaging.ImageError):
        imaging.render(png(1024, 1024)[:-200], imaging.plan("1024x1024", "high", FLASH), "PNG", "high")
