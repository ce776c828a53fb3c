/**
 * The API's client: typed calls through openapi-fetch (types generated from
 * /openapi.json by openapi-typescript), plus `generate`, which creates a job
 * and follows it to its result.
 */
import createClient from "openapi-fetch";

import { ImageGenError, JobFailedError } from "./errors.js";
import { followEvents, sleep, StreamUnavailable } from "./events.js";
import type { components, paths } from "./schema.js";

type Schemas = components["schemas"];
export type GenerateRequest = Schemas["GenerateRequest"];
export type CreateJobResponse = Schemas["CreateJobResponse"];
export type StatusResponse = Schemas["StatusResponse"];
export type ResultResponse = Schemas["ResultResponse"];
export type JobListResponse = Schemas["JobListResponse"];
export type JobStatus = Schemas["JobStatus"];
export type ImageInfo = Schemas["ImageInfo"];
export type ResultMetadata = Schemas["ResultMetadata"];
export type HealthResponse = Schemas["HealthResponse"];
export type WebhookSecretResponse = Schemas["WebhookSecretResponse"];
/** One update of a job: its status body, plus images and metadata once COMPLETED (pushed events). */
export type JobUpdate = Schemas["JobEvent"];

export interface ClientOptions {
  /** The API's URL; default `IMAGEGEN_URL` (Node), the page's origin (browsers), else http://localhost:9006. */
  baseUrl?: string;
  /** An API key (`igk_...`) or a Firebase ID token, sent as `Authorization: Bearer`; default `IMAGEGEN_API_KEY` (Node). */
  apiKey?: string;
  /** Extra headers sent with every request. */
  headers?: Record<string, string>;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
}

export interface WaitOptions {
  /** Called with every change of status or progress, in order. */
  onProgress?: (update: JobUpdate) => void;
  /** Aborting stops waiting: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface GenerateOptions extends WaitOptions {
  /** Also cancel the job when `signal` aborts (default true: generate created it). */
  cancelOnAbort?: boolean;
  /** Sent as `Idempotency-Key` (default: a random one, so a retried create never makes two jobs). */
  idempotencyKey?: string;
}

export interface JobsQuery {
  status?: JobStatus;
  limit?: number;
  cursor?: string;
}

const TERMINAL: ReadonlySet<string> = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
/** Seconds the server may hold a long-poll (its maximum). */
const LONG_POLL_SECONDS = 30;
/** Floor between two polls that saw no change (a server without long-poll answers at once). */
const MIN_POLL_INTERVAL_MS = 1000;

export const isTerminal = (update: { status: string }): boolean => TERMINAL.has(update.status);

/** An environment variable in Node; nothing in browsers (no `process` there). */
function environment(name: string): string | undefined {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
}

function defaultBaseUrl(): string {
  return environment("IMAGEGEN_URL") ?? globalThis.location?.origin ?? "http://localhost:9006";
}

export class ImageGenClient {
  readonly baseUrl: string;
  private readonly headers: Record<string, string>;
  private readonly fetchImpl: typeof fetch;
  private readonly api: ReturnType<typeof createClient<paths>>;

  constructor(options: ClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? defaultBaseUrl()).replace(/\/+$/, "");
    const apiKey = options.apiKey ?? environment("IMAGEGEN_API_KEY");
    this.headers = { ...(apiKey ? { Authorization: `Bearer ${apiKey}` } : {}), ...options.headers };
    this.fetchImpl = retryingFetch(options.fetch ?? globalThis.fetch);
    this.api = createClient<paths>({ baseUrl: this.baseUrl, headers: this.headers, fetch: (request) => this.fetchImpl(request) });
  }

  /** `GET /health`: whether image generation is configured, and with which model. */
  async health(options: { signal?: AbortSignal } = {}): Promise<HealthResponse> {
    return unwrap(await this.api.GET("/health", { signal: options.signal }));
  }

  /** `POST /api/images/generate`: a PENDING job (202). */
  async create(params: GenerateRequest, options: { idempotencyKey?: string; signal?: AbortSignal } = {}): Promise<CreateJobResponse> {
    const headers = options.idempotencyKey ? { "Idempotency-Key": options.idempotencyKey } : {};
    return unwrap(await this.api.POST("/api/images/generate", { body: params, headers, signal: options.signal }));
  }

  /**
   * `GET /api/images/status/<id>`; with `wait` (seconds, at most 30), a long-poll that
   * answers as soon as the job differs from the one last seen at `since` (its `updated_at`).
   */
  async status(jobId: string, options: { wait?: number; since?: string; signal?: AbortSignal } = {}): Promise<StatusResponse> {
    const query = options.wait === undefined ? {} : { wait: options.wait, ...(options.since ? { since: options.since } : {}) };
    return unwrap(
      await this.api.GET("/api/images/status/{job_id}", { params: { path: { job_id: jobId }, query }, signal: options.signal }),
    );
  }

  /** `GET /api/images/result/<id>`: images and metadata once COMPLETED; status and progress while running. */
  async result(jobId: string, options: { signal?: AbortSignal } = {}): Promise<ResultResponse> {
    return unwrap(await this.api.GET("/api/images/result/{job_id}", { params: { path: { job_id: jobId } }, signal: options.signal }));
  }

  /** `POST /api/images/cancel/<id>`: the job, now CANCELLED (409 ImageGenError if it had already ended). */
  async cancel(jobId: string, options: { signal?: AbortSignal } = {}): Promise<StatusResponse> {
    return unwrap(await this.api.POST("/api/images/cancel/{job_id}", { params: { path: { job_id: jobId } }, signal: options.signal }));
  }

  /** `GET /api/images/jobs`: one page of the caller's jobs, newest first; pass `next_cursor` back as `cursor`. */
  async jobs(query: JobsQuery = {}, options: { signal?: AbortSignal } = {}): Promise<JobListResponse> {
    return unwrap(await this.api.GET("/api/images/jobs", { params: { query }, signal: options.signal }));
  }

  /** Every job of the caller, newest first, fetching the pages as the loop goes. */
  async *allJobs(query: Omit<JobsQuery, "cursor"> = {}, options: { signal?: AbortSignal } = {}): AsyncGenerator<StatusResponse> {
    let cursor: string | undefined;
    do {
      const page = await this.jobs({ ...query, ...(cursor ? { cursor } : {}) }, options);
      yield* page.jobs;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  /** `GET /api/webhooks/secret`: the caller's own key (`whsec_...`) signing the webhooks sent to its jobs' `webhook_url`. */
  async webhookSecret(options: { signal?: AbortSignal } = {}): Promise<WebhookSecretResponse> {
    return unwrap(await this.api.GET("/api/webhooks/secret", { signal: options.signal }));
  }

  /** `POST /api/webhooks/secret/rotate`: a new key; the previous one also signs until `previous_secret_expires_at`. */
  async rotateWebhookSecret(options: { signal?: AbortSignal } = {}): Promise<WebhookSecretResponse> {
    return unwrap(await this.api.POST("/api/webhooks/secret/rotate", { signal: options.signal }));
  }

  /** The job's pushed updates (`GET /api/images/events/<id>`) until it ends; throws StreamUnavailable without a stream. */
  events(jobId: string, options: { signal?: AbortSignal; lastEventId?: string } = {}): AsyncGenerator<JobUpdate> {
    const url = `${this.baseUrl}/api/images/events/${encodeURIComponent(jobId)}`;
    return followEvents<JobUpdate>({ url, headers: this.headers, fetch: this.fetchImpl, ...options }, isTerminal);
  }

  /** The job's updates by long-polling `status`, until it ends. */
  async *poll(jobId: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<StatusResponse> {
    let seen = "";
    let since: string | undefined;
    for (;;) {
      const started = Date.now();
      const update = await this.status(jobId, { wait: LONG_POLL_SECONDS, since, signal: options.signal });
      const key = `${update.status}/${update.progress}/${update.updated_at}`;
      since = update.updated_at;
      if (key !== seen) {
        seen = key;
        yield update;
        if (isTerminal(update)) return;
      } else {
        await sleep(Math.max(0, MIN_POLL_INTERVAL_MS - (Date.now() - started)), options.signal);
      }
    }
  }

  /**
   * Follow an existing job to its end: the event stream, or long-polling when the
   * stream is unavailable. Resolves with the COMPLETED result; rejects with
   * JobFailedError (FAILED, CANCELLED), ImageGenError (HTTP) or the signal's reason.
   */
  async wait(jobId: string, options: WaitOptions = {}): Promise<ResultResponse> {
    const { onProgress, signal } = options;
    let last: JobUpdate | undefined;
    const watch = async (updates: AsyncIterable<JobUpdate>) => {
      for await (const update of updates) {
        last = update;
        onProgress?.(update);
      }
    };
    try {
      await watch(this.events(jobId, { signal }));
    } catch (error) {
      if (!(error instanceof StreamUnavailable)) throw error;
      await watch(this.poll(jobId, { signal }));
    }
    const final = last as JobUpdate;
    const result: ResultResponse = final.status === "COMPLETED" && !final.images ? await this.result(jobId, { signal }) : final;
    if (result.status !== "COMPLETED") throw new JobFailedError(result);
    return result;
  }

  /** Create a job and wait for its result (see `wait`); aborting also cancels the job unless `cancelOnAbort: false`. */
  async generate(params: GenerateRequest, options: GenerateOptions = {}): Promise<ResultResponse> {
    const { cancelOnAbort = true, idempotencyKey = randomKey(), signal } = options;
    const job = await this.create(params, { signal, idempotencyKey });
    try {
      return await this.wait(job.job_id, options);
    } catch (error) {
      if (signal?.aborted && cancelOnAbort) {
        // Best effort: the job may have ended meanwhile (409); the abort is what the caller sees.
        await this.cancel(job.job_id).catch(() => undefined);
      }
      throw error;
    }
  }
}

/** 128 random bits in hex (crypto.randomUUID needs a secure context; this does not). */
function randomKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Attempts of a request that failed before any answer (a kept-alive connection the server had closed). */
const NETWORK_ATTEMPTS = 3;

/**
 * Retry network failures (fetch's TypeError, never an HTTP answer) of requests that are
 * safe to repeat: GETs, and POSTs carrying an Idempotency-Key.
 */
function retryingFetch(fetchImpl: typeof fetch): typeof fetch {
  return async (input, init) => {
    const request = input instanceof Request ? input : undefined;
    const method = (init?.method ?? request?.method ?? "GET").toUpperCase();
    const repeatable = method === "GET" || new Headers(init?.headers ?? request?.headers).has("Idempotency-Key");
    for (let attempt = 1; ; attempt++) {
      try {
        return await fetchImpl(request && attempt < NETWORK_ATTEMPTS ? request.clone() : input, init);
      } catch (error) {
        const aborted = (init?.signal ?? request?.signal)?.aborted;
        if (!(error instanceof TypeError) || !repeatable || aborted || attempt >= NETWORK_ATTEMPTS) throw error;
      }
    }
  };
}

/** The parsed body of a 2xx answer, or the ImageGenError of any other. */
function unwrap<T>(answer: { data?: T; error?: unknown; response: Response }): T {
  if (!answer.response.ok || answer.data === undefined) throw ImageGenError.fromResponse(answer.response, answer.error);
  return answer.data;
}
