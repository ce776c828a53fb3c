"""OpenAPI 3.1 document, generated from the pydantic models so it cannot drift.

OpenAPI 3.1 uses JSON Schema 2020-12, which is what pydantic emits; the
models' ``$defs`` are hoisted into ``components/schemas``.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel

from imagegen.models import (
    CreateJobResponse,
    ErrorResponse,
    GenerateRequest,
    HealthResponse,
    JobEvent,
    JobListResponse,
    ResultResponse,
    StatusResponse,
    UsageResponse,
    WebhookSecretResponse,
)

_REF = "#/components/schemas/{model}"
_JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "maxLength": 64},
    "description": "Identifiant renvoyé par /api/images/generate (img_...)",
}


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    models: list[type[BaseModel]] = [
        GenerateRequest,
        CreateJobResponse,
        StatusResponse,
        ResultResponse,
        ErrorResponse,
        HealthResponse,
        JobListResponse,
        JobEvent,
        UsageResponse,
        WebhookSecretResponse,
    ]
    for model in models:
        schema = model.model_json_schema(ref_template=_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _json(model: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}},
    }


def _error(description: str) -> dict[str, Any]:
    return _json("ErrorResponse", description)


_AUTH_ERRORS = {
    "401": _error("Authentification requise ou invalide"),
    "503": _error("Service temporairement indisponible"),
    "500": _error("Erreur interne du serveur"),
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
    "description": (
        "Rejouer la même requête avec la même clé (24 h) renvoie la même tâche; "
        "la même clé avec un autre corps est refusée (422)."
    ),
}


_ETAG_HEADER = {
    "ETag": {
        "description": "Empreinte du corps; à renvoyer en If-None-Match avec ?wait=",
        "schema": {"type": "string"},
    }
}
_LONG_POLL = [
    {
        "name": "wait",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 30},
        "description": (
            "Long-poll : répondre dès que le statut diffère de ce que l'appelant a vu "
            "(If-None-Match ou since), sinon après wait secondes avec le statut inchangé (200)."
        ),
    },
    {
        "name": "since",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "updated_at du dernier statut vu, tel que renvoyé (avec wait)",
    },
    {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "ETag du dernier statut vu (avec wait; prioritaire sur since)",
    },
]
_EVENT_PARAMETERS = [
    {
        "name": "Last-Event-ID",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "pattern": "^[0-9]{1,20}$"},
        "description": "id du dernier événement reçu : la reprise n'envoie que les états plus récents",
    },
    {
        "name": "last_event_id",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "pattern": "^[0-9]{1,20}$"},
        "description": "Comme l'en-tête Last-Event-ID, pour qui ne peut pas envoyer d'en-têtes",
    },
    {
        "name": "api_key",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": (
            "Clé API dans l'URL, sur cette route seulement (EventSource ne peut pas envoyer "
            "d'en-têtes); elle apparaît alors dans les journaux comme toute URL."
        ),
    },
]
_EVENT_STREAM = {
    "description": (
        "Flux Server-Sent Events : d'abord « retry: 2000 », puis un événement « status » par "
        "changement (id: heure de mise à jour du document en microsecondes, croissante; "
        "data: JobEvent en JSON), un commentaire « : keepalive » après 15 s de silence; "
        "le flux se termine après l'état final ou au bout de SSE_MAX_SECONDS."
    ),
    "content": {
        "text/event-stream": {
            "schema": {"type": "string"},
            # OpenAPI 3.1 has no schema for an event's fields (3.2's itemSchema):
            # the extension names the schema of each event's `data`.
            "x-event-data": {"$ref": _REF.format(model="JobEvent")},
        }
    },
}


@functools.cache
def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Image Generation API (Gemini)",
            "version": "1.0.0",
            "description": (
                "Crée des tâches de génération d'images asynchrones, suivies par "
                "flux d'événements (events), long-poll (status?wait=), sondage "
                "(status/result) ou webhook. Référence interactive : /docs."
            ),
        },
        "paths": {
            "/api/images/generate": {
                "post": {
                    "operationId": "createJob",
                    "tags": ["jobs"],
                    "summary": "Générer des images",
                    "parameters": [_IDEMPOTENCY_KEY],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": _REF.format(model="GenerateRequest")}}
                        },
                    },
                    "responses": {
                        "202": _json("CreateJobResponse", "Tâche créée (PENDING)"),
                        "400": _error("Requête invalide (un message par champ)"),
                        "413": _error("Corps trop volumineux"),
                        "402": _error("Budget mensuel de la clé API épuisé (jusqu'au mois suivant)"),
                        "422": _error("Idempotency-Key réutilisée avec un autre corps"),
                        "429": _error("Trop de tâches créées (en-tête Retry-After)"),
                    }
                    | _AUTH_ERRORS
                    | {"500": _error("Clé API Google non configurée, ou erreur interne")},
                }
            },
            "/api/images/status/{job_id}": {
                "get": {
                    "operationId": "getJobStatus",
                    "tags": ["jobs"],
                    "summary": "Vérifier le statut (long-poll avec wait)",
                    "parameters": [_JOB_ID, *_LONG_POLL],
                    "responses": {
                        "200": _json("StatusResponse", "Statut de la tâche") | {"headers": _ETAG_HEADER},
                        "400": _error("wait invalide (entier de 1 à 30)"),
                        "404": _error("Tâche introuvable"),
                    }
                    | _AUTH_ERRORS,
                }
            },
            "/api/images/result/{job_id}": {
                "get": {
                    "operationId": "getJobResult",
                    "tags": ["jobs"],
                    "summary": "Récupérer les résultats",
                    "parameters": [_JOB_ID],
                    "responses": {
                        "200": _json("ResultResponse", "Tâche terminée (COMPLETED, FAILED ou CANCELLED)"),
                        "202": _json("ResultResponse", "Tâche en cours : statut et progression, sans images"),
                        "404": _error("Tâche introuvable"),
                    }
                    | _AUTH_ERRORS,
                }
            },
            "/api/images/cancel/{job_id}": {
                "post": {
                    "operationId": "cancelJob",
                    "tags": ["jobs"],
                    "summary": "Annuler une tâche non terminée",
                    "parameters": [_JOB_ID],
                    "responses": {
                        "200": _json("StatusResponse", "Tâche annulée (CANCELLED)"),
                        "404": _error("Tâche introuvable"),
                        "409": _error("Tâche déjà terminée"),
                    }
                    | _AUTH_ERRORS,
                }
            },
            "/api/images/jobs": {
                "get": {
                    "operationId": "listJobs",
                    "tags": ["jobs"],
                    "summary": "Lister ses tâches, les plus récentes d'abord",
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "required": False,
                            "schema": {"$ref": _REF.format(model="JobStatus")},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                        },
                        {
                            "name": "cursor",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "pattern": "^img_[a-z0-9]{8,32}$"},
                            "description": "next_cursor de la page précédente",
                        },
                    ],
                    "responses": {
                        "200": _json("JobListResponse", "Une page de tâches"),
                        "400": _error("Paramètre invalide"),
                    }
                    | _AUTH_ERRORS,
                }
            },
            "/api/images/events/{job_id}": {
                "get": {
                    "operationId": "streamJobEvents",
                    "tags": ["jobs"],
                    "summary": "Suivre la tâche en direct (Server-Sent Events)",
                    "parameters": [_JOB_ID, *_EVENT_PARAMETERS],
                    "responses": {
                        "200": _EVENT_STREAM,
                        "204": {"description": "L'état final a déjà été reçu (Last-Event-ID) : ne plus se reconnecter"},
                        "400": _error("Last-Event-ID invalide, ou deux authentifications"),
                        "404": _error("Tâche introuvable"),
                    }
                    | _AUTH_ERRORS,
                }
            },
            "/generated_images/{job_id}/{filename}": {
                "get": {
                    "operationId": "getImage",
                    "tags": ["images"],
                    "summary": "Télécharger une image générée (IMAGE_URL_MODE=api)",
                    "security": [],
                    "parameters": [
                        _JOB_ID,
                        {
                            "name": "filename",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^image_[1-4](\\.(png|jpg|webp)|_thumb\\.webp)$"},
                            "description": "image_<n>.<ext>, ou sa vignette image_<n>_thumb.webp",
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "L'image",
                            "content": {
                                media: {"schema": {"type": "string", "contentEncoding": "binary"}}
                                for media in ("image/png", "image/jpeg", "image/webp")
                            },
                        },
                        "404": _error("Image introuvable"),
                        "503": _error("Service temporairement indisponible"),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApiDocument",
                    "tags": ["service"],
                    "summary": "Ce document OpenAPI",
                    "security": [],
                    "responses": {
                        "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}
                    },
                }
            },
            "/docs": {
                "get": {
                    "operationId": "getDocsPage",
                    "tags": ["service"],
                    "summary": "Référence interactive de l'API (Swagger UI)",
                    "security": [],
                    "responses": {
                        "200": {"description": "Page HTML", "content": {"text/html": {"schema": {"type": "string"}}}}
                    },
                }
            },
            "/api/usage": {
                "get": {
                    "operationId": "getUsage",
                    "tags": ["usage"],
                    "summary": "Votre consommation par jour (UTC) : tâches, images, jetons, coût",
                    "description": (
                        "Totaux des tâches terminées (COMPLETED) chaque jour, calculés par des "
                        "agrégations Firestore sur vos tâches. Par défaut : du 1er du mois à aujourd'hui."
                    ),
                    "parameters": [
                        {
                            "name": name,
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                            "description": description,
                        }
                        for name, description in (
                            ("from", "Premier jour, AAAA-MM-JJ (défaut : le 1er du mois de to)"),
                            ("to", "Dernier jour inclus, AAAA-MM-JJ (défaut : aujourd'hui); 93 jours au plus"),
                        )
                    ],
                    "responses": {
                        "200": _json("UsageResponse", "Un total par jour et celui de la période"),
                        "400": _error("Date invalide, from après to, ou période de plus de 93 jours"),
                    }
                    | _AUTH_ERRORS,
                }
            },
            "/api/webhooks/secret": {
                "get": {
                    "operationId": "getWebhookSecret",
                    "tags": ["webhooks"],
                    "summary": "Votre clé de signature des webhooks (créée au premier appel)",
                    "description": (
                        "Les webhooks envoyés au webhook_url de vos tâches sont signés (Standard "
                        "Webhooks) avec cette clé, propre à l'appelant; jamais avec celle de l'opérateur."
                    ),
                    "responses": {"200": _json("WebhookSecretResponse", "La clé courante")} | _AUTH_ERRORS,
                }
            },
            "/api/webhooks/secret/rotate": {
                "post": {
                    "operationId": "rotateWebhookSecret",
                    "tags": ["webhooks"],
                    "summary": "Remplacer votre clé de signature des webhooks",
                    "description": (
                        "L'ancienne clé signe encore (seconde signature v1) jusqu'à "
                        "previous_secret_expires_at."
                    ),
                    "responses": {"200": _json("WebhookSecretResponse", "La nouvelle clé")} | _AUTH_ERRORS,
                }
            },
            "/": {
                "get": {
                    "operationId": "getHomePage",
                    "tags": ["service"],
                    "summary": "Redirige vers /playground",
                    "security": [],
                    "responses": {"302": {"description": "Location: playground"}},
                }
            },
            "/playground": {
                "get": {
                    "operationId": "getPlaygroundPage",
                    "tags": ["service"],
                    "summary": "Page d'essai : formulaire, progression en direct, images (/ y redirige)",
                    "security": [],
                    "responses": {
                        "200": {"description": "Page HTML", "content": {"text/html": {"schema": {"type": "string"}}}}
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "getHealth",
                    "tags": ["service"],
                    "summary": "État du service",
                    "security": [],
                    "responses": {"200": _json("HealthResponse", "Service en bonne santé")},
                }
            },
        },
        "tags": [
            {"name": "jobs", "description": "Tâches de génération : créer, suivre, récupérer, annuler"},
            {"name": "images", "description": "Images générées servies par l'API"},
            {"name": "webhooks", "description": "Votre clé de signature des webhooks de vos tâches"},
            {"name": "usage", "description": "Consommation et coût de vos tâches"},
            {"name": "service", "description": "État du service et documentation"},
        ],
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Clé API (igk_...) ou jeton d'identification Firebase Auth",
                },
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        # Optional in development (AUTH_REQUIRED=false): an empty requirement allows anonymous calls.
        "security": [{"bearer": []}, {"apiKey": []}, {}],
    }
