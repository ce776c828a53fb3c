import assert from "node:assert/strict";
import { test } from "node:test";

import { ImageGenClient as Client } from "../dist/index.js";
import { printed, until } from "./readme-setup.mjs";
// README-START
import { createServer } from "node:http";
import { verifyWebhook, WebhookVerificationError } from "@imagegen/client/webhooks";

const seen = new Set(); // use a durable store (unique key) in production
const server = createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    try {
      const event = verifyWebhook(request.headers, Buffer.concat(chunks), process.env.WEBHOOK_SECRET);
      if (!seen.has(request.headers["webhook-id"])) {
        seen.add(request.headers["webhook-id"]);
        console.log(event.status, event.job_id);
      }
      response.writeHead(204).end();
    } catch (error) {
      response.writeHead(error instanceof WebhookVerificationError ? 401 : 400).end();
    }
  });
});
server.listen(process.env.PORT ?? 8080);
// README-END

test("README: the receiver verifies a real delivery and refuses a forged one", async () => {
  try {
    await until(() => server.listening, "the receiver");
    const hook = `http://127.0.0.1:${server.address().port}/hook`;
    const job = await new Client().generate({ prompt: "Signé", size: "512x512", webhook_url: hook });
    await until(() => printed.length > 0, "the webhook");
    assert.deepEqual(printed, [`completed ${job.job_id}`]);
    const now = `${Math.floor(Date.now() / 1000)}`;
    const headers = { "webhook-id": "msg_forged", "webhook-timestamp": now, "webhook-signature": "v1,AAAA" };
    assert.equal((await fetch(hook, { method: "POST", body: "{}", headers })).status, 401);
  } finally {
    server.close();
  }
});
