import type { components } from "./schema.js";

type ResultResponse = components["schemas"]["ResultResponse"];

/** One invalid field of a 4xx answer: `{field, message}`, the message in French. */
export interface FieldError {
  field?: string;
  message?: string;
  [key: string]: string | undefined;
}

/** An HTTP error answered by the API: its French `error` message, `details` and status. */
export class ImageGenError extends Error {
  override readonly name = "ImageGenError";
  /** HTTP status of the answer (400, 401, 404, 409, 413, 422, 429, 5xx...). */
  readonly status: number;
  /** The answer's `error` field, in French (also `message`). */
  readonly error: string;
  /** One entry per invalid field (`details[].field`, `details[].message`). */
  readonly details: FieldError[];
  /** Seconds to wait before retrying, from `Retry-After` (429, 503). */
  readonly retryAfter: number | undefined;

  constructor(status: number, error: string, details: FieldError[] = [], retryAfter?: number) {
    super(error);
    this.status = status;
    this.error = error;
    this.details = details;
    this.retryAfter = retryAfter;
  }

  /** The French message for one field (`prompt`, `size`...), if that field was refused. */
  fieldMessage(field: string): string | undefined {
    return this.details.find((item) => item.field === field)?.message;
  }

  /** Build from an answer that was not 2xx (its body already parsed, when it was JSON). */
  static fromResponse(response: Response, body: unknown): ImageGenError {
    const payload = (typeof body === "object" && body !== null ? body : {}) as {
      error?: unknown;
      details?: unknown;
    };
    const message =
      typeof payload.error === "string" ? payload.error : `HTTP ${response.status} ${response.statusText}`.trim();
    const details = Array.isArray(payload.details) ? (payload.details as FieldError[]) : [];
    const retryAfter = Number(response.headers.get("Retry-After") ?? Number.NaN);
    return new ImageGenError(response.status, message, details, Number.isFinite(retryAfter) ? retryAfter : undefined);
  }
}

/** A job that ended FAILED or CANCELLED: `message` is its first French error. */
export class JobFailedError extends Error {
  override readonly name = "JobFailedError";
  /** `FAILED` or `CANCELLED`. */
  readonly jobStatus: ResultResponse["status"];
  /** The job's `errors` (French). */
  readonly errors: string[];
  /** The job's final result body. */
  readonly result: ResultResponse;

  constructor(result: ResultResponse) {
    const errors = result.errors ?? [];
    super(errors[0] ?? result.message);
    this.jobStatus = result.status;
    this.errors = errors;
    this.result = result;
  }
}
