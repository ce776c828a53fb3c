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
    JobListResponse,
    ResultResponse,
    StatusResponse,
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


@functools.cache
def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "API de génération d'images (Gemini)",
            "version": "1.0.0",
            "description": (
                "Crée des tâches de génération d'images asynchrones, suivies par "
                "sondage (status/result) ou par webhook."
            ),
        },
        "paths": {
            "/api/images/generate": {
                "post": {
                    "operationId": "generateImages",
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
                    "summary": "Vérifier le statut",
                    "parameters": [_JOB_ID],
                    "responses": {
                        "200": _json("StatusResponse", "Statut de la tâche"),
                        "404": _error("Tâche introuvable"),
                    }
                    | _AUTH_ERRORS,
                }
            },
            "/api/images/result/{job_id}": {
                "get": {
                    "operationId": "getJobResult",
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
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "État du service",
                    "security": [],
                    "responses": {"200": _json("HealthResponse", "Service en bonne santé")},
                }
            },
        },
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
