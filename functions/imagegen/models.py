"""Request and response models of the public API.

The request model is the single source of truth for validation and for the
OpenAPI document: every constraint declared here shows up in
``/openapi.json``. Validation errors carry the seed's French messages, one per
bad field, through ``validation_messages``.
"""

from __future__ import annotations

import enum
import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

MAX_PROMPT_CHARS = 4000
MAX_URL_CHARS = 2048
MAX_REFERENCE_IMAGES = 14  # the largest limit in generation/model_catalog.py
MAX_SEED = 2**31 - 1
MAX_TIMEOUT_SECONDS = 900
SIZES = ("512x512", "1024x1024", "1792x1024")
FORMATS = ("PNG", "JPEG", "WEBP")
STYLES = ("photorealistic", "artistic", "illustration", "3d-render")
QUALITIES = ("standard", "high", "ultra")
WEBHOOK_EVENTS = ("completed", "failed", "progress", "cancelled")
_CHOICES = {"size": SIZES, "format": FORMATS, "style": STYLES, "quality": QUALITIES}
JOB_ID_PATTERN = re.compile(r"^img_[a-z0-9]{8,32}\Z")  # \Z: "$" would accept a trailing newline
# C0/C1 control characters other than tab, newline and carriage return.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_URL = re.compile(r"^https?://[^\s/?#@]+(?::\d{1,5})?(?:[/?#]\S*)?$", re.IGNORECASE)


class JobStatus(str, enum.Enum):
    """Job lifecycle, in the seed's order; the last three are terminal."""

    PENDING = "PENDING"
    INITIALIZING = "INITIALIZING"
    GENERATING = "GENERATING"
    SAVING = "SAVING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class ErrorCode(str, enum.Enum):
    """Why a job ended FAILED or CANCELLED (``error_code``); ``errors[]`` keeps the French text."""

    API_KEY_MISSING = "api_key_missing"
    INVALID_API_KEY = "invalid_api_key"
    MODEL_UNAVAILABLE = "model_unavailable"
    CONTENT_BLOCKED = "content_blocked"
    NO_IMAGE = "no_image"
    QUOTA_EXHAUSTED = "quota_exhausted"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    REQUEST_REJECTED = "request_rejected"
    INPUT_IMAGE_INVALID = "input_image_invalid"
    INPUT_IMAGE_UNREACHABLE = "input_image_unreachable"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    CANCELLED = "cancelled"
    INTERNAL = "internal"


ERROR_CODE_DESCRIPTION = (
    "Cause typée de l'échec : api_key_missing (aucune clé Gemini configurée), invalid_api_key, "
    "model_unavailable (modèle introuvable ou arrêté, replis compris), content_blocked (filtres de "
    "sécurité : voir safety), no_image (Gemini n'a rendu aucune image), quota_exhausted, "
    "upstream_unavailable (Gemini injoignable ou en erreur après les reprises), request_rejected "
    "(requête refusée par Gemini), input_image_invalid, input_image_unreachable, deadline_exceeded "
    "(timeout_seconds écoulé), cancelled, internal"
)


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_field", message)


def _choice_message(field: str, choices: tuple[str, ...]) -> str:
    return f"{field} doit être l'une des valeurs : {', '.join(choices)}"


def _check_url(field: str, value: Any, also: str = "") -> Any:
    """A URL the worker or the webhook sender can request: http(s), valid host and port."""
    if value is None:
        return None
    from imagegen.outbound import url_problem  # loads the HTTP client: only when a URL is sent

    if (
        not isinstance(value, str)
        or len(value) > MAX_URL_CHARS
        or not _URL.match(value.strip())
        or url_problem(value.strip())
    ):
        raise _invalid(f"{field} doit être une URL http(s) {also}valide")
    return value.strip()


def _check_choice(field: str, value: Any, choices: tuple[str, ...]) -> Any:
    """Accept exactly one of the seed's spellings (the OpenAPI enum says the same)."""
    if isinstance(value, str) and value in choices:
        return value
    raise _invalid(_choice_message(field, choices))


class GenerateRequest(BaseModel):
    """Body of ``POST /api/images/generate``."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    prompt: str = Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description="Description textuelle de l'image à générer",
        examples=["Un chat astronaute flottant dans l'espace"],
    )
    input_image_url: str | None = Field(
        default=None,
        max_length=MAX_URL_CHARS,
        pattern=r"^[hH][tT][tT][pP][sS]?://",
        description="URL http(s) d'une image source pour la génération multimodale",
    )
    num_images: int = Field(default=1, ge=1, le=4, description="Nombre d'images à générer")
    size: Literal["512x512", "1024x1024", "1792x1024"] = Field(
        default="1024x1024", description="Dimensions exactes des images"
    )
    format: Literal["PNG", "JPEG", "WEBP"] = Field(default="PNG", description="Format de sortie")
    style: Literal["photorealistic", "artistic", "illustration", "3d-render"] = Field(
        default="photorealistic", description="Style visuel"
    )
    quality: Literal["standard", "high", "ultra"] = Field(
        default="high", description="Qualité de génération"
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SEED,
        description=(
            "Graine : l'image n utilise seed + n - 1 (GenerateContentConfig.seed), notée sur "
            "chaque image (images[].seed). Sans graine, chaque image reçoit sa propre graine aléatoire"
        ),
        examples=[42],
    )
    timeout_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TIMEOUT_SECONDS,
        description=(
            "Délai depuis la création : une tâche non terminée après ce délai échoue "
            "(error_code deadline_exceeded; billed false si aucun appel au modèle n'a commencé)"
        ),
        examples=[120],
    )
    allow_partial: bool = Field(
        default=False,
        description=(
            "Si certaines images sont bloquées (filtres de sécurité, aucune image), terminer "
            "quand même avec les autres, listées dans missing_images; sinon la tâche échoue sans image"
        ),
    )
    model: str | None = Field(
        default=None,
        max_length=128,
        description=(
            "Modèle Gemini : un nom ou un alias de GEMINI_MODELS (ex. flash, pro); "
            "défaut GEMINI_MODEL. Le modèle exact qui a tourné est dans metadata.model_name"
        ),
        examples=["pro"],
    )
    # After `model`: its limit is checked against the model (validators run in field order).
    input_image_urls: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_REFERENCE_IMAGES,
        description=(
            "Images de référence, chacune sa propre partie de la requête : URL http(s) ou objet "
            "gs:// du bucket des images ou d'INPUT_IMAGE_BUCKETS. input_image_url compte comme "
            "la première; au plus la limite du modèle (14 pour gemini-3-pro-image)"
        ),
        examples=[["https://example.com/produit.jpg", "gs://mon-bucket/logo.png"]],
    )
    webhook_url: str | None = Field(
        default=None,
        max_length=MAX_URL_CHARS,
        pattern=r"^[hH][tT][tT][pP][sS]?://",
        description="URL http(s) qui reçoit les webhooks de cette tâche (prioritaire sur WEBHOOK_URL)",
    )
    webhook_events: list[Literal["completed", "failed", "progress", "cancelled"]] | None = Field(
        default=None,
        min_length=1,
        max_length=len(WEBHOOK_EVENTS),
        description="Événements envoyés au webhook (défaut : completed, failed, cancelled)",
    )

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise _invalid("Prompt requis")
        value = value.strip()
        if len(value) > MAX_PROMPT_CHARS:
            raise _invalid(f"Le prompt ne doit pas dépasser {MAX_PROMPT_CHARS} caractères")
        if _CONTROL_CHARS.search(value):
            raise _invalid("Le prompt contient des caractères de contrôle non autorisés")
        return value

    @field_validator("num_images", mode="before")
    @classmethod
    def _num_images(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4:
            raise _invalid("num_images doit être entre 1 et 4")
        return value

    @field_validator("input_image_url", "webhook_url", mode="before")
    @classmethod
    def _urls(cls, value: Any, info: Any) -> Any:
        return _check_url(info.field_name, value)

    @field_validator("size", "format", "style", "quality", mode="before")
    @classmethod
    def _choices(cls, value: Any, info: Any) -> Any:
        return _check_choice(info.field_name, value, _CHOICES[info.field_name])

    @field_validator("timeout_seconds", mode="before")
    @classmethod
    def _timeout_seconds(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TIMEOUT_SECONDS:
            raise _invalid(f"timeout_seconds doit être un entier entre 1 et {MAX_TIMEOUT_SECONDS}")
        return value

    @field_validator("allow_partial", mode="before")
    @classmethod
    def _allow_partial(cls, value: Any) -> Any:
        if not isinstance(value, bool):
            raise _invalid("allow_partial doit être un booléen")
        return value

    @field_validator("seed", mode="before")
    @classmethod
    def _seed(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
            raise _invalid(f"seed doit être un entier entre 0 et {MAX_SEED}")
        return value

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: Any) -> Any:
        """An allowed name or alias, stored as the exact model it names."""
        if value is None:
            return None
        from imagegen.config import load_settings
        from imagegen.generation.model_catalog import allowed_models, resolve

        settings = load_settings()
        exact = resolve(value, settings) if isinstance(value, str) else None
        if exact is None:
            names = ", ".join(allowed_models(settings))
            raise _invalid(f"model doit être l'un des modèles autorisés : {names}")
        return exact

    @field_validator("input_image_urls", mode="before")
    @classmethod
    def _input_image_urls(cls, value: Any, info: Any) -> Any:
        """Each an http(s) URL or an allowed gs:// object; all within the model's limit."""
        if value is None:
            return None
        from imagegen.config import load_settings
        from imagegen.generation import model_catalog, reference_images

        settings = load_settings()
        if not isinstance(value, list) or not value:
            raise _invalid("input_image_urls doit être une liste non vide d'URL")
        model = info.data.get("model") or settings.gemini_model
        limit = model_catalog.spec(model).max_reference_images
        count = len(value) + (1 if info.data.get("input_image_url") else 0)
        if count > limit:
            raise _invalid(
                f"Au plus {limit} images de référence pour {model} (input_image_url compris), "
                f"{count} reçues"
            )
        checked = []
        for position, item in enumerate(value):
            match = reference_images.GS_URI.match(item) if isinstance(item, str) else None
            if match is None:
                checked.append(_check_url(f"input_image_urls[{position}]", item, "ou gs:// "))
                continue
            if match[1] not in reference_images.allowed_buckets(settings):
                allowed = ", ".join(reference_images.allowed_buckets(settings))
                raise _invalid(f"input_image_urls[{position}] : bucket {match[1]} non autorisé ({allowed})")
            checked.append(item)
        return checked

    @field_validator("webhook_events", mode="before")
    @classmethod
    def _webhook_events(cls, value: Any) -> Any:
        if value is None:
            return None
        message = f"webhook_events doit être une liste non vide parmi : {', '.join(WEBHOOK_EVENTS)}"
        if not isinstance(value, list) or not 1 <= len(value) <= len(WEBHOOK_EVENTS):
            raise _invalid(message)
        events = [_check_choice("webhook_events", item, WEBHOOK_EVENTS) for item in value]
        return list(dict.fromkeys(events))

    def job_fields(self) -> dict[str, Any]:
        """The generation parameters stored on the job (webhook settings apart)."""
        return self.model_dump(exclude={"webhook_url", "webhook_events"})


def validation_messages(error: ValidationError) -> list[dict[str, str]]:
    """One ``{field, message}`` per bad field, in the seed's French wording."""
    details: list[dict[str, str]] = []
    seen: set[str] = set()
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "body"
        if field in seen:
            continue
        seen.add(field)
        if item["type"] == "missing" and field == "prompt":
            message = "Prompt requis"
        elif item["type"] == "extra_forbidden":
            message = f"Champ inconnu : {field[:64]}"
        elif item["type"] == "invalid_field":
            message = item["msg"]
        else:
            message = f"Valeur invalide pour {field}"
        details.append({"field": field[:64], "message": message})
    return details


# Response models: used to shape responses and to document them in OpenAPI.


class _Response(BaseModel):
    """Base of the response models: each is built on first use (``defer_build``), so a
    cold instance pays only for the models of the routes it serves."""

    model_config = ConfigDict(defer_build=True)


class ErrorResponse(_Response):
    error: str = Field(description="Message principal, en français")
    details: list[dict[str, str]] = Field(
        default_factory=list, description="Un message par champ invalide"
    )


class CreateJobResponse(_Response):
    job_id: str
    status: JobStatus
    message: str


class StatusResponse(_Response):
    job_id: str
    status: JobStatus
    message: str
    progress: int = Field(ge=0, le=100)
    created_at: str = Field(description="ISO 8601, UTC")
    updated_at: str = Field(description="ISO 8601, UTC")
    errors: list[str] | None = Field(default=None, description="Présent si FAILED")
    error_code: ErrorCode | None = Field(
        default=None, description="Présent si FAILED ou CANCELLED. " + ERROR_CODE_DESCRIPTION
    )


class JobListResponse(_Response):
    jobs: list[StatusResponse] = Field(description="Tâches de l'appelant, les plus récentes d'abord")
    next_cursor: str | None = Field(
        default=None, description="À passer en ?cursor= pour la page suivante; absent à la fin"
    )


class UsageInfo(_Response):
    """Tokens Gemini reported (``usage_metadata``) and their cost at the pinned prices."""

    input_tokens: int = Field(description="prompt_token_count : texte et images d'entrée")
    output_tokens: int = Field(description="candidates_token_count : image(s) produite(s)")
    thinking_tokens: int = Field(description="thoughts_token_count : raisonnement du modèle")
    images: int = Field(description="Images produites")
    cost_usd: float = Field(description="Coût en USD (table de prix épinglée par modèle et taille)")


class ImageInfo(_Response):
    file_path: str = Field(description="Objet Cloud Storage (gs://bucket/generated_images/...)")
    url: str = Field(description="URL de téléchargement de l'image")
    description: str
    format: Literal["PNG", "JPEG", "WEBP"]
    size_bytes: int
    dimensions: str = Field(examples=["1024x1024"])
    seed: int | None = Field(
        default=None, description="Graine qui a produit l'image (la renvoyer en seed la reproduit)"
    )
    width: int | None = Field(default=None, description="Largeur en pixels (absente sur les tâches antérieures)")
    height: int | None = Field(default=None, description="Hauteur en pixels (absente sur les tâches antérieures)")
    sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="SHA-256 (hex) des octets téléchargés depuis url"
    )
    thumbnail_url: str | None = Field(
        default=None,
        description="Vignette WEBP de 256 pixels sur le grand côté, servie comme url (api, signée ou publique)",
    )
    usage: UsageInfo | None = Field(default=None, description="Consommation de l'appel qui a produit l'image")


class JobTimingsInfo(_Response):
    """Where the job's time went, in seconds; the phases add up to ``total``."""

    queued: float = Field(description="De la création au début de la livraison qui a terminé la tâche")
    input_fetch: float = Field(description="Téléchargement et préparation de input_image_url")
    model: float = Field(description="Appels au modèle (chemin critique des images parallèles)")
    post_processing: float = Field(description="Redimensionnement et encodage (Pillow)")
    storage: float = Field(description="Écritures Firestore et envois vers Cloud Storage")
    total: float = Field(description="De la création à la fin, somme des phases")


class ModelFallbacks(_Response):
    unavailable: list[str] = Field(description="Modèles qui ont répondu « introuvable » ou « arrêté »")
    used: str = Field(description="Modèle de repli qui a produit les images")


class ResultMetadata(_Response):
    model_name: str
    version: str
    generation_time_seconds: float
    input_tokens: int
    output_size_bytes: int
    timestamp: str
    timings: JobTimingsInfo | None = Field(
        default=None, description="Répartition du temps de la tâche (absent sur les tâches antérieures)"
    )
    usage: UsageInfo | None = Field(
        default=None, description="Somme des images[].usage (absent sur les tâches antérieures)"
    )
    fallbacks: ModelFallbacks | None = Field(
        default=None, description="Présent si le modèle demandé était indisponible (GEMINI_MODEL_FALLBACKS)"
    )


class SafetyRatingInfo(_Response):
    category: str = Field(examples=["HARM_CATEGORY_SEXUALLY_EXPLICIT"])
    probability: str | None = Field(default=None, examples=["HIGH"])
    blocked: bool | None = None


class SafetyInfo(_Response):
    """What Gemini's safety filters said, as Gemini said it."""

    block_reason: str | None = Field(
        default=None, description="prompt_feedback.block_reason (prompt refusé)", examples=["SAFETY"]
    )
    finish_reason: str | None = Field(
        default=None, description="finish_reason du candidat (image refusée)", examples=["IMAGE_SAFETY"]
    )
    ratings: list[SafetyRatingInfo] = Field(default_factory=list, description="safety_ratings renvoyées")


class MissingImage(_Response):
    """An image of an ``allow_partial`` job that was not produced."""

    index: int = Field(ge=1, description="Rang de l'image (1..num_images)")
    error_code: ErrorCode
    message: str = Field(description="Message en français")
    safety: SafetyInfo | None = None


class ResultResponse(_Response):
    job_id: str
    status: JobStatus
    message: str
    progress: int | None = Field(default=None, description="Présent tant que la tâche n'est pas finie")
    images: list[ImageInfo] | None = None
    metadata: ResultMetadata | None = None
    errors: list[str] | None = None
    error_code: ErrorCode | None = Field(
        default=None, description="Présent si FAILED ou CANCELLED. " + ERROR_CODE_DESCRIPTION
    )
    safety: SafetyInfo | None = Field(
        default=None, description="Présent quand les filtres de sécurité de Gemini ont bloqué"
    )
    billed: bool | None = Field(
        default=None,
        description="FAILED/CANCELLED : false si aucun appel au modèle n'a commencé (rien n'est facturé)",
    )
    missing_images: list[MissingImage] | None = Field(
        default=None, description="allow_partial : les images manquantes d'une tâche COMPLETED"
    )


class JobEvent(StatusResponse):
    """``data`` of one ``status`` event of /api/images/events: the status body, and the result at the end."""

    images: list[ImageInfo] | None = Field(default=None, description="Présent si COMPLETED")
    metadata: ResultMetadata | None = Field(default=None, description="Présent si COMPLETED")


class UsageTotals(UsageInfo):
    """Totals of the caller's jobs completed in a period."""

    jobs: int = Field(description="Tâches terminées (COMPLETED)")


class UsageDay(UsageTotals):
    """One day (UTC)."""

    date: str = Field(examples=["2026-12-01"])


class UsageResponse(_Response):
    """``GET /api/usage``: the caller's totals per day, from the jobs completed those days."""

    from_date: str = Field(description="Premier jour (UTC), le paramètre from")
    to_date: str = Field(description="Dernier jour inclus (UTC), le paramètre to")
    days: list[UsageDay] = Field(description="Un élément par jour, du premier au dernier")
    total: UsageTotals = Field(description="Somme de la période")


class WebhookSecretResponse(_Response):
    """The caller's own key for the webhooks sent to its jobs' ``webhook_url``."""

    secret: str = Field(
        description="Clé Standard Webhooks (whsec_<base64>) qui signe les webhooks de vos tâches",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )
    created_at: str = Field(description="ISO 8601, UTC")
    rotated_at: str | None = Field(default=None, description="Dernière rotation (ISO 8601, UTC)")
    previous_secret_expires_at: str | None = Field(
        default=None,
        description="Jusqu'à cette date, les webhooks portent aussi la signature de l'ancienne clé",
    )


class HealthResponse(_Response):
    status: Literal["healthy"]
    features: dict[str, bool]
    model: str
    gemini_backend: str = Field(description="vertex-ai, gemini-api, stand-in ou none")
