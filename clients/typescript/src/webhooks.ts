/**
 * Verifying the API's webhooks in a Node receiver (Standard Webhooks signatures).
 *
 * The key follows the server's rule (functions/imagegen/webhooks/messages.py):
 * a secret `whsec_<base64>` is base64-decoded; any other string is its raw
 * UTF-8 bytes (the standardwebhooks package alone would base64-decode those).
 */
import { Webhook, WebhookVerificationError } from "standardwebhooks";

export { WebhookVerificationError };

const PREFIX = "whsec_";
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** A webhook body as the API sends it (`completed`, `failed`, `generating`, `cancelled`). */
export interface WebhookPayload {
  job_id: string;
  status: string;
  message?: string;
  [key: string]: unknown;
}

type HeaderBag = Headers | Record<string, string | string[] | undefined>;

/** The HMAC key of a `WEBHOOK_SECRET`, exactly as the server derives it. */
export function signingKey(secret: string): Uint8Array {
  if (!secret.startsWith(PREFIX)) return new TextEncoder().encode(secret);
  const encoded = secret.slice(PREFIX.length);
  const padded = encoded + "=".repeat((4 - (encoded.length % 4)) % 4);
  if (!BASE64.test(padded)) throw new Error("WEBHOOK_SECRET whsec_… n'est pas du base64 valide");
  const key = Uint8Array.from(atob(padded), (char) => char.charCodeAt(0));
  if (key.length === 0) throw new Error("WEBHOOK_SECRET whsec_… est vide");
  return key;
}

function plainHeaders(headers: HeaderBag): Record<string, string> {
  const entries = headers instanceof Headers ? [...headers.entries()] : Object.entries(headers);
  const plain: Record<string, string> = {};
  for (const [name, value] of entries) {
    if (value !== undefined) plain[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return plain;
}

/**
 * Check `webhook-signature` over the exact body received and return the parsed payload.
 * Throws WebhookVerificationError for a missing, stale (over 5 min) or wrong signature.
 * Deduplicate on the `webhook-id` header: retries of one event carry the same id.
 */
export function verifyWebhook<T = WebhookPayload>(headers: HeaderBag, body: string | Uint8Array, secret: string): T {
  const text = typeof body === "string" ? body : new TextDecoder().decode(body);
  return new Webhook(signingKey(secret), { format: "raw" }).verify(text, plainHeaders(headers)) as T;
}
