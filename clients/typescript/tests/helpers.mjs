// Shared by the Node tests: they run against a live API whose URL is in IMAGEGEN_URL
// (tests/integration/test_typescript_client.py starts them on the test stack).
import assert from "node:assert/strict";

export const baseUrl = process.env.IMAGEGEN_URL;
assert.ok(baseUrl, "IMAGEGEN_URL must point at a running API (see tests/integration/test_typescript_client.py)");

/** A fetch that records every URL it is asked for, with its method. */
export function recordingFetch(calls, answer = fetch) {
  return (input, init) => {
    const request = input instanceof Request ? input : new Request(input, init);
    calls.push(`${request.method} ${new URL(request.url).pathname}`);
    return answer(input, init);
  };
}
