"""What each Gemini image model accepts: one table of per-model limits.

Read by the API (``model`` and reference-image validation), the worker (the
``image_size`` tier each quality gets) and the usage accounting (prices per
model and size, kept beside these limits). Which models a caller may choose is
configuration (``GEMINI_MODELS``, with aliases; ``GEMINI_MODEL`` is the
default and always allowed); this table says what each one can do.

Sources (read 2026-12-01): Vertex AI model pages "Gemini 3.1 Flash Image"
(docs.cloud.google.com/vertex-ai/generative-ai/docs/models/gemini/3-1-flash-image,
GA 2026-05-28: up to 14 images per prompt, 512 / 1K / 2K / 4K) and "Gemini 3
Pro Image" (.../models/gemini/3-pro-image: 14 images, 1K / 2K / 4K); Gemini
2.5 Flash Image: 3 input images, 1K output only.
"""

from __future__ import annotations

from dataclasses import dataclass

from imagegen.config import Settings


@dataclass(frozen=True)
class ModelSpec:
    """Limits of one image model."""

    name: str
    max_reference_images: int
    image_sizes: tuple[str, ...]
    """``ImageConfig.image_size`` tiers the model offers, smallest first."""

    @property
    def offers_4k(self) -> bool:
        return "4K" in self.image_sizes

    def tier(self, wanted: str) -> str:
        """``wanted`` if offered, else the largest offered tier below it (at least the smallest)."""
        if wanted in self.image_sizes:
            return wanted
        order = ("512", "1K", "2K", "4K")
        below = [size for size in self.image_sizes if order.index(size) <= order.index(wanted)]
        return below[-1] if below else self.image_sizes[0]


CATALOG: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("gemini-3.1-flash-image", 14, ("512", "1K", "2K", "4K")),
        ModelSpec("gemini-3-pro-image", 14, ("1K", "2K", "4K")),
        ModelSpec("gemini-2.5-flash-image", 3, ("1K",)),
    )
}
# A model configured but absent from the table (a newer one): assume the Gemini 3 family's
# common ground, without 4K, so that no request it cannot serve is sent.
_UNKNOWN = ModelSpec("", 3, ("1K", "2K"))


def spec(model: str) -> ModelSpec:
    """The limits of ``model`` (a ``-preview`` suffix shares its model's row)."""
    base = model.removesuffix("-preview")
    return CATALOG.get(base) or ModelSpec(model, _UNKNOWN.max_reference_images, _UNKNOWN.image_sizes)


def allowed_models(settings: Settings) -> dict[str, str]:
    """What a request's ``model`` may say, alias or exact name, mapped to the exact model.

    ``GEMINI_MODELS`` is ``alias=model,...`` (an item without ``=`` allows the
    model under its own name); the default model is always allowed.
    """
    allowed: dict[str, str] = {settings.gemini_model: settings.gemini_model}
    for item in settings.gemini_models.split(","):
        alias, _, model = item.strip().partition("=")
        alias, model = alias.strip(), model.strip()
        if not alias:
            continue
        allowed[alias] = model or alias
        allowed[model or alias] = model or alias
    return allowed


def resolve(requested: str | None, settings: Settings) -> str | None:
    """The exact model a request names (None: not allowed); no ``model``: the default."""
    if requested is None:
        return settings.gemini_model
    return allowed_models(settings).get(requested)


def fallbacks(model: str, settings: Settings) -> list[str]:
    """Models to try, in order, after ``model`` answered "not found" or "shut down".

    ``GEMINI_MODEL_FALLBACKS``: a comma-separated list of models or
    ``GEMINI_MODELS`` aliases; the model that failed is skipped.
    """
    aliases = allowed_models(settings)
    names = [aliases.get(n.strip(), n.strip()) for n in settings.gemini_model_fallbacks.split(",")]
    return [name for name in dict.fromkeys(names) if name and name != model]
