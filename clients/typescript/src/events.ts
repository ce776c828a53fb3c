/**
 * Following `GET /api/images/events/<job_id>` (Server-Sent Events) with fetch,
 * so that the same code runs in browsers and in Node 20 (which has no
 * EventSource) and can send the API key as a header.
 */
import { EventSourceParserStream } from "eventsource-parser/stream";

/** The event stream cannot be used here (route missing, proxy, repeated failures): poll instead. */
export class StreamUnavailable extends Error {
  override readonly name = "StreamUnavailable";
}

export interface FollowOptions {
  url: string;
  headers: Record<string, string>;
  fetch: typeof fetch;
  signal?: AbortSignal | undefined;
  /** Resume after this event (the `id:` of the last event seen). */
  lastEventId?: string | undefined;
}

/** Consecutive failed reconnections tolerated before giving up on the stream. */
const MAX_RECONNECT_FAILURES = 3;

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Yield the JSON `data` of each `status` event until `isLast(data)` is true.
 *
 * The server ends a stream after its time cap: reconnect after the `retry:`
 * delay with `Last-Event-ID`, so no event is repeated or lost, as EventSource
 * would. A first answer that is not an event stream throws StreamUnavailable.
 */
export async function* followEvents<T>(options: FollowOptions, isLast: (data: T) => boolean): AsyncGenerator<T> {
  const { signal } = options;
  let lastEventId = options.lastEventId;
  let retryMs = 2000;
  let failures = 0;
  for (;;) {
    const headers: Record<string, string> = { ...options.headers, Accept: "text/event-stream" };
    if (lastEventId) headers["Last-Event-ID"] = lastEventId;
    let body: ReadableStream<Uint8Array>;
    try {
      const response = await options.fetch(options.url, { headers, signal, cache: "no-store" });
      const type = response.headers.get("Content-Type") ?? "";
      if (!response.ok || !type.startsWith("text/event-stream") || !response.body) {
        await response.body?.cancel();
        throw new StreamUnavailable(`event stream refused: HTTP ${response.status}`);
      }
      body = response.body;
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (error instanceof StreamUnavailable || ++failures > MAX_RECONNECT_FAILURES) {
        throw error instanceof StreamUnavailable ? error : new StreamUnavailable(String(error));
      }
      await sleep(retryMs, signal);
      continue;
    }
    failures = 0;
    const reader = body
      .pipeThrough(new TextDecoderStream() as ReadableWritablePair<string, Uint8Array>)
      .pipeThrough(new EventSourceParserStream({ onRetry: (ms) => (retryMs = ms) }))
      .getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (value.id) lastEventId = value.id;
        if (value.event !== "status") continue;
        const data = JSON.parse(value.data) as T;
        yield data;
        if (isLast(data)) return;
      }
    } catch {
      if (signal?.aborted) throw signal.reason;
      // A connection cut mid-stream: reconnect below, like EventSource.
    } finally {
      await reader.cancel().catch(() => undefined);
    }
    await sleep(retryMs, signal);
  }
}
