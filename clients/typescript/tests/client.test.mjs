import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ImageGenClient, ImageGenError, JobFailedError } from "../dist/index.js";
import { baseUrl, recordingFetch } from "./helpers.mjs";

const client = new ImageGenClient({ baseUrl });

describe("generate", () => {
  test("follows the job to its typed result and reports rising progress", async () => {
    const updates = [];
    const result = await client.generate(
      { prompt: "Un phare breton au coucher du soleil", num_images: 2, size: "512x512", format: "WEBP" },
      { onProgress: (update) => updates.push(update) },
    );
    assert.equal(result.status, "COMPLETED");
    assert.equal(result.images.length, 2);
    const progress = updates.map((update) => update.progress);
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b), "progress never goes back");
    assert.equal(updates.at(-1).status, "COMPLETED");
    assert.equal(updates.at(-1).progress, 100);
    assert.ok(result.metadata.generation_time_seconds > 0);
    for (const image of result.images) {
      assert.equal(image.dimensions, "512x512");
      const response = await fetch(image.url.replace(/^http:\/\/localhost:/, "http://127.0.0.1:"));
      assert.equal(response.headers.get("Content-Type"), "image/webp");
      assert.equal((await response.arrayBuffer()).byteLength, image.size_bytes);
    }
  });

  test("waits on the event stream: one request for the whole wait", async () => {
    const calls = [];
    const streaming = new ImageGenClient({ baseUrl, fetch: recordingFetch(calls) });
    const result = await streaming.generate({ prompt: "En direct", size: "512x512" });
    assert.equal(result.status, "COMPLETED");
    assert.deepEqual(calls, ["POST /api/images/generate", `GET /api/images/events/${result.job_id}`]);
  });

  test("falls back to long-polling when the event stream is unavailable", async () => {
    const calls = [];
    const noStream = (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      return url.includes("/api/images/events/") ? Promise.resolve(new Response("{}", { status: 404 })) : fetch(input, init);
    };
    const polling = new ImageGenClient({ baseUrl, fetch: recordingFetch(calls, noStream) });
    const result = await polling.generate({ prompt: "Sans flux", size: "512x512" });
    assert.equal(result.status, "COMPLETED");
    assert.equal(result.images.length, 1);
    assert.ok(calls.some((call) => call.startsWith("GET /api/images/status/")), calls.join("\n"));
  });

  test("an invalid request rejects with the API's French message, details and HTTP status", async () => {
    const error = await client.generate({ prompt: "   ", size: "640x480" }).catch((caught) => caught);
    assert.ok(error instanceof ImageGenError);
    assert.equal(error.status, 400);
    assert.equal(error.message, "Prompt requis");
    assert.equal(error.error, "Prompt requis");
    assert.equal(error.fieldMessage("prompt"), "Prompt requis");
    assert.match(error.fieldMessage("size"), /^size doit être l'une des valeurs/);
  });

  test("a job that fails rejects with JobFailedError and its French error", async () => {
    // tests/integration/test_typescript_client.py makes the stand-in block prompts with "[refus]".
    const error = await client.generate({ prompt: "Un sujet [refus]", size: "512x512" }).catch((caught) => caught);
    assert.ok(error instanceof JobFailedError, String(error));
    assert.equal(error.jobStatus, "FAILED");
    assert.match(error.message, /^Prompt bloqué par les filtres de sécurité de Gemini/);
    assert.deepEqual(error.errors, error.result.errors);
  });

  test("aborting stops waiting and cancels the job", async () => {
    const controller = new AbortController();
    let jobId;
    const error = await client
      .generate(
        { prompt: "Interrompu", num_images: 4 },
        {
          signal: controller.signal,
          onProgress: (update) => {
            jobId = update.job_id;
            controller.abort();
          },
        },
      )
      .catch((caught) => caught);
    assert.equal(error.name, "AbortError");
    assert.ok(jobId, "onProgress saw the job");
    assert.equal((await client.status(jobId)).status, "CANCELLED");
  });
});

describe("calls", () => {
  test("create, status, result, wait, then the job is listed", async () => {
    const created = await client.create({ prompt: "Une rue de Lyon", size: "512x512", format: "JPEG" });
    assert.equal(created.status, "PENDING");
    assert.match(created.job_id, /^img_/);
    const status = await client.status(created.job_id);
    assert.equal(status.job_id, created.job_id);
    const early = await client.result(created.job_id);
    assert.ok(["PENDING", "INITIALIZING", "GENERATING", "SAVING", "COMPLETED"].includes(early.status));
    const done = await client.wait(created.job_id);
    assert.equal(done.images[0].format, "JPEG");
    const final = await client.result(created.job_id);
    assert.deepEqual(final.images.map((image) => image.file_path), done.images.map((image) => image.file_path));
    const page = await client.jobs({ status: "COMPLETED", limit: 100 });
    assert.ok(page.jobs.some((job) => job.job_id === created.job_id));
  });

  test("allJobs walks every cursor page, newest first", async () => {
    const ids = [];
    for (const prompt of ["un", "deux", "trois"]) ids.unshift((await client.create({ prompt, size: "512x512" })).job_id);
    const calls = [];
    const paging = new ImageGenClient({ baseUrl, fetch: recordingFetch(calls) });
    const seen = [];
    // Other test files create jobs meanwhile (node --test runs files in parallel): ours
    // must come in order among them, one page per job.
    for await (const job of paging.allJobs({ limit: 1 })) {
      seen.push(job.job_id);
      if (ids.every((id) => seen.includes(id)) || seen.length === 50) break;
    }
    assert.deepEqual(seen.filter((id) => ids.includes(id)), ids);
    assert.equal(calls.filter((call) => call === "GET /api/images/jobs").length, seen.length);
    await Promise.all(ids.map((id) => client.wait(id)));
  });

  test("cancel ends a running job; waiting on it rejects with JobFailedError", async () => {
    const created = await client.create({ prompt: "À annuler", num_images: 4 });
    const cancelled = await client.cancel(created.job_id);
    assert.equal(cancelled.status, "CANCELLED");
    const error = await client.wait(created.job_id).catch((caught) => caught);
    assert.ok(error instanceof JobFailedError);
    assert.equal(error.jobStatus, "CANCELLED");
    const again = await client.cancel(created.job_id).catch((caught) => caught);
    assert.ok(again instanceof ImageGenError);
    assert.equal(again.status, 409);
    assert.equal(again.message, "La tâche est déjà terminée (CANCELLED)");
  });

  test("the caller's webhook secret, and its rotation", async () => {
    const current = await client.webhookSecret();
    assert.match(current.secret, /^whsec_/);
    const rotated = await client.rotateWebhookSecret();
    assert.notEqual(rotated.secret, current.secret);
    assert.ok(rotated.previous_secret_expires_at, "the previous key keeps signing for a while");
    assert.equal((await client.webhookSecret()).secret, rotated.secret);
  });

  test("an unknown job is a 404 ImageGenError", async () => {
    const error = await client.status("img_doesnotexist00").catch((caught) => caught);
    assert.ok(error instanceof ImageGenError);
    assert.deepEqual([error.status, error.message], [404, "Tâche introuvable"]);
    const waiting = await client.wait("img_doesnotexist00").catch((caught) => caught);
    assert.deepEqual([waiting.status, waiting.message], [404, "Tâche introuvable"]);
  });
});
