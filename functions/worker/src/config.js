// Bindings the Worker needs. The WorkerSender component creates every one of them;
// a missing one is a deployment bug, reported by name instead of failing later.

export const FETCH_BINDINGS = ["EMAIL_QUEUE", "EMAIL_WORKER_TOKEN", "EMAIL_DOMAIN", "EMAIL_RATE_LIMITER"];
/**
 * Optional secret: the token being rotated out. While it is set both tokens are
 * accepted, each with its own rate-limit bucket; unset it once producers moved on.
 */
export const PREVIOUS_TOKEN_BINDING = "EMAIL_WORKER_TOKEN_PREVIOUS";
/**
 * The rate limiter's window. The Workers Rate Limiting binding counts per `period`,
 * 10 or 60 seconds, set on the binding (the WorkerSender component uses 60), and does
 * not say when a window ends: a refused caller is told to wait one whole period
 * (https://developers.cloudflare.com/workers/runtime-apis/bindings/rate-limit/).
 */
export const RATE_LIMIT_PERIOD_SECONDS = 60;
export const QUEUE_BINDINGS = [
  "EMAIL_QUEUE",
  "EMAIL_DLQ",
  "EMAIL_ID_GUARD",
  "EMAIL_MAX_RETRIES",
  "AWS_REGION",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "EMAIL_DOMAIN",
  "EMAIL_DEFAULT_FROM",
  "EMAIL_CONFIGURATION_SET",
];
/**
 * The DLQ queue's name: `queue` hands that queue's batches to the dead-letter forwarder.
 * Bound, with the SQS DLQ's URL, only when the WorkerSender consumes its DLQ queue.
 */
export const DLQ_NAME_BINDING = "EMAIL_DLQ_NAME";
export const DEAD_LETTER_BINDINGS = ["EMAIL_DEAD_LETTER_QUEUE_URL", "EMAIL_DLQ", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];

/**
 * Optional: the recipients per second one consumer invocation may send (the path's
 * rate / the consumer's max_concurrency); bound only when the stage sets a send rate.
 */
export const SEND_RATE_BINDING = "EMAIL_MAX_SEND_RATE";

/** @returns {string[]} names of the bindings that are absent or empty */
export function missingBindings(env, names) {
  return names.filter((name) => env[name] === undefined || env[name] === null || env[name] === "");
}

/** @returns {string} the SES v2 endpoint: `SES_ENDPOINT` (tests) or the regional one */
export function sesEndpoint(env) {
  const base = env.SES_ENDPOINT || `https://email.${env.AWS_REGION}.amazonaws.com`;
  return base.replace(/\/+$/, "");
}
