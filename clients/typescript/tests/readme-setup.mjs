// Imported first by the readme-*.test.mjs files, whose code between README-START and
// README-END is the README's "Use it" examples verbatim (tests/unit/test_readme_examples.py
// checks it): it records what the examples print and gives them their environment.
import { ImageGenClient } from "../dist/index.js";
import { baseUrl } from "./helpers.mjs";

export const printed = [];
console.log = (...args) => printed.push(args.join(" "));
console.error = (...args) => printed.push(`error: ${args.join(" ")}`);

// What the README tells a receiver to configure: the caller's own signing key.
process.env.WEBHOOK_SECRET = (await new ImageGenClient({ baseUrl }).webhookSecret()).secret;
process.env.PORT = "0";

/** Resolves once `condition()` holds (checked every 50 ms, for at most 30 s). */
export async function until(condition, what) {
  for (const deadline = Date.now() + 30_000; !condition(); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
