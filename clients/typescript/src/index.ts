export { ImageGenClient, isTerminal } from "./client.js";
export type {
  ClientOptions,
  CreateJobResponse,
  GenerateOptions,
  GenerateRequest,
  HealthResponse,
  ImageInfo,
  JobListResponse,
  JobsQuery,
  JobStatus,
  JobUpdate,
  ResultMetadata,
  ResultResponse,
  StatusResponse,
  WaitOptions,
  WebhookSecretResponse,
} from "./client.js";
export { ImageGenError, JobFailedError } from "./errors.js";
export type { FieldError } from "./errors.js";
export { StreamUnavailable } from "./events.js";
export type { components, paths } from "./schema.js";
