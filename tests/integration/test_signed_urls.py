"""IMAGE_URL_MODE=signed: V4 signed URLs, as far as the storage emulator can take them.

The emulator does not check signatures, so the test checks what we produce:
a V4 URL for the right object, signed by the configured service account,
whose signature verifies with that account's public key, and which serves
the image. (On Cloud Functions the same code signs through IAM signBlob.)
"""

from __future__ import annotations

import binascii
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.integration.helpers import create_job, fetch_image, side_api

ACCOUNT = "imagegen-api@imagegen-local.iam.gserviceaccount.com"


def service_account_key(path: Path) -> rsa.RSAPrivateKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "imagegen-local", "private_key_id": "test-key",
        "private_key": pem, "client_email": ACCOUNT, "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }))
    return key


def test_signed_result_urls(api: Any, stack: Any, tmp_path: Path) -> None:
    key = service_account_key(tmp_path / "sa.json")
    job_id = create_job(api, num_images=1, format="WEBP")
    api.wait_for_job(job_id)
    env = stack.env | {
        "IMAGE_URL_MODE": "signed",
        "SIGNED_URL_TTL_SECONDS": "900",
        "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "sa.json"),
    }
    with side_api(env) as base:
        result = requests.get(f"{base}/api/images/result/{job_id}", timeout=10).json()
        # In signed mode the API does not serve images itself.
        assert requests.get(f"{base}/generated_images/{job_id}/image_1.webp", timeout=10).status_code == 404
    url = result["images"][0]["url"]
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}" == stack.env["STORAGE_EMULATOR_HOST"]
    assert parts.path == f"/imagegen-local-images/generated_images/{job_id}/image_1.webp"
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert query["X-Goog-Expires"] == "900"
    assert query["X-Goog-Credential"].startswith(ACCOUNT + "/")

    # Rebuild the V4 string-to-sign and verify the signature with the public key.
    signed_query = "&".join(
        f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(query.items()) if k != "X-Goog-Signature"
    )
    canonical = "\n".join([
        "GET", parts.path, signed_query, f"host:{parts.netloc}\n", query["X-Goog-SignedHeaders"], "UNSIGNED-PAYLOAD",
    ])
    scope = query["X-Goog-Credential"].split("/", 1)[1]
    to_sign = "\n".join([
        "GOOG4-RSA-SHA256", query["X-Goog-Date"], scope, hashlib.sha256(canonical.encode()).hexdigest(),
    ])
    key.public_key().verify(
        binascii.unhexlify(query["X-Goog-Signature"]), to_sign.encode(), padding.PKCS1v15(), hashes.SHA256()
    )

    image, content_type = fetch_image(url)
    assert (image.format, image.size, content_type) == ("WEBP", (1024, 1024), "image/webp")
