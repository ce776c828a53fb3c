import assert from "node:assert/strict";
import { test } from "node:test";

import { signingKey, verifyWebhook, WebhookVerificationError } from "../dist/webhooks.js";

// Signed by the server's own code (functions/imagegen/webhooks/messages.py, signature_headers)
// for this body, id and time: one secret of each form.
const BODY = '{"job_id": "img_abc12345", "status": "completed"}';
const VECTORS = [
  ["whsec_cGxheWdyb3VuZC10ZXN0LWtleS0zMi1ieXRlcy1vayE", "v1,2Y5q6O6TPp/8euTqeb/1kwQKKVZjb53uKY7Db4JpujM="],
  ["clé-brute-é", "v1,DgHzqc1NBvwwcl5Ba2aQmspcIGgMfQBb9ViZmE/Fwdo="],
];

test("both secret forms give the server's signatures", (t) => {
  t.mock.timers.enable({ apis: ["Date"], now: new Date("2026-12-01T12:00:00Z") });
  for (const [secret, signature] of VECTORS) {
    const headers = { "Webhook-Id": "msg_0123456789abcdef01234567", "Webhook-Timestamp": "1796126400", "Webhook-Signature": signature };
    assert.deepEqual(verifyWebhook(headers, BODY, secret), { job_id: "img_abc12345", status: "completed" });
    assert.throws(() => verifyWebhook(headers, BODY.replace("completed", "failed"), secret), WebhookVerificationError);
  }
  assert.throws(() => signingKey("whsec_pas du base64"), /n'est pas du base64 valide/);
});
