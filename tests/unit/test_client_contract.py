"""The Python client against the server's own code: its models match /openapi.json, and
``verify_webhook`` accepts what the webhook sender signs, with both forms of secret."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

import imagegen_client
from imagegen.api.openapi import openapi_document
from imagegen.webhooks.messages import signature_headers
from imagegen_client import WebhookVerificationError, verify_webhook

SCHEMAS = openapi_document()["components"]["schemas"]
CLIENT_MODELS = {
    name: model for name in dir(imagegen_client)
    if isinstance(model := getattr(imagegen_client, name), type) and issubclass(model, BaseModel)
}


def test_every_response_schema_has_a_client_model() -> None:
    responses = {name for name in SCHEMAS if name.endswith(("Response", "Info")) or name == "JobEvent"}
    assert responses - {"ErrorResponse"} <= set(CLIENT_MODELS), sorted(responses - set(CLIENT_MODELS))


@pytest.mark.parametrize("name", sorted(set(CLIENT_MODELS) & set(SCHEMAS)))
def test_client_models_have_the_schemas_fields_and_required_ones(name: str) -> None:
    schema, model = SCHEMAS[name], CLIENT_MODELS[name]
    assert set(model.model_fields) == set(schema["properties"]), name
    required = {field for field, info in model.model_fields.items() if info.is_required()}
    assert required == set(schema.get("required", [])), name


def test_job_status_values_are_the_apis() -> None:
    assert [status.value for status in imagegen_client.JobStatus] == SCHEMAS["JobStatus"]["enum"]


def test_generate_params_are_the_request_fields() -> None:
    fields = set(imagegen_client.GenerateParams.__annotations__)
    assert fields | {"prompt"} == set(SCHEMAS["GenerateRequest"]["properties"])


PAYLOAD = {"job_id": "img_abcdefgh", "status": "completed", "message": "Génération terminée"}
BODY = json.dumps(PAYLOAD, ensure_ascii=False, separators=(",", ":"))


def _signed(*secrets: str, at: datetime | None = None) -> dict[str, str]:
    return signature_headers("evt_1", BODY, list(secrets), at or datetime.now(UTC))


@pytest.mark.parametrize(
    "secret",
    ["whsec_" + base64.b64encode(b"k" * 32).decode(), "local-test-webhook-secret"],
    ids=["whsec_base64", "raw_utf8"],
)
def test_verify_webhook_accepts_what_the_api_signs(secret: str) -> None:
    headers = _signed(secret)
    assert verify_webhook(headers, BODY.encode(), secret) == PAYLOAD
    # Header names are case-insensitive (frameworks differ), a str body works too.
    assert verify_webhook({k.title(): v for k, v in headers.items()}, BODY, secret) == PAYLOAD


def test_during_a_rotation_either_key_verifies() -> None:
    old, new = "whsec_" + base64.b64encode(b"o" * 32).decode(), "whsec_" + base64.b64encode(b"n" * 32).decode()
    headers = _signed(new, old)
    assert verify_webhook(headers, BODY, old) == verify_webhook(headers, BODY, new) == PAYLOAD


@pytest.mark.parametrize(
    "case",
    ["other key", "raw form of a whsec secret", "tampered body", "old timestamp", "no signature", "malformed signature"],
)
def test_verify_webhook_refuses(case: str) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    headers: dict[str, Any] = _signed(secret)
    body, key = BODY, secret
    if case == "other key":
        key = "whsec_" + base64.b64encode(b"x" * 32).decode()
    elif case == "raw form of a whsec secret":  # a raw secret is its UTF-8 bytes, not base64-decoded
        headers = _signed(secret.removeprefix("whsec_"))
    elif case == "tampered body":
        body = BODY.replace("terminée", "échouée")
    elif case == "old timestamp":
        headers = _signed(secret, at=datetime.now(UTC) - timedelta(minutes=10))
    elif case == "no signature":
        headers.pop("webhook-signature")
    else:
        headers["webhook-signature"] = "v1"
    with pytest.raises(WebhookVerificationError) as caught:
        verify_webhook(headers, body, key)
    assert caught.value.message.startswith("Webhook non vérifié")
