import assert from "node:assert/strict";
import { test } from "node:test";

import { printed } from "./readme-setup.mjs";
// README-START
import { ImageGenClient, ImageGenError, JobFailedError } from "@imagegen/client";

const client = new ImageGenClient(); // IMAGEGEN_URL (default http://localhost:9006), IMAGEGEN_API_KEY
try {
  const result = await client.generate(
    { prompt: "Un phare breton sous la pluie", num_images: 2, size: "1792x1024", format: "WEBP" },
    { onProgress: (job) => console.log(job.status, `${job.progress} %`) },
  );
  for (const image of result.images ?? []) console.log(image.url, image.dimensions, image.size_bytes);
} catch (error) {
  if (error instanceof ImageGenError) console.error(error.status, error.message, error.details);
  else if (error instanceof JobFailedError) console.error(error.jobStatus, error.errors);
  else throw error;
}
// README-END

test("README: generate prints the progress, then each image", () => {
  assert.ok(printed.includes("COMPLETED 100 %"), printed.join("\n"));
  assert.equal(printed.filter((line) => / 1792x1024 \d+$/.test(line)).length, 2, printed.join("\n"));
  assert.ok(!printed.some((line) => line.startsWith("error:")), printed.join("\n"));
});
