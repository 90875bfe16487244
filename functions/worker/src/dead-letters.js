// The DLQ queue's consumer: forward every dead letter to the stack's SQS dead-letter queue,
// so both paths' dead letters sit in one durable place with one alarm, one redrive, one retention.
import { AwsClient } from "aws4fetch";
import { DEAD_LETTER_BINDINGS, missingBindings } from "./config.js";
import { log } from "./log.js";

/** `source` attribute of every dead letter this consumer forwards (the Lambda's have none). */
export const SOURCE = "cloudflare-dlq";
/** error_class of a raw message the platform moved to the DLQ after the sender's max_retries. */
export const RETRIES_EXHAUSTED = "RetriesExhausted";
export const SQS_TIMEOUT_MS = 10_000;
export const BACKOFF_BASE_SECONDS = 60;
export const BACKOFF_MAX_SECONDS = 60 * 60;
/**
 * After this many failed deliveries a dead letter is sent to the DLQ queue again as a new
 * message (and the old one acked): its attempt count and its retention start over. The
 * consumer's `max_retries` (100, components/worker_sender.py) is never reached by an SQS
 * outage, however long; without a DLQ of its own Cloudflare would delete the message there
 * (https://developers.cloudflare.com/queues/configuration/dead-letter-queues/).
 */
export const REQUEUE_AFTER_ATTEMPTS = 10;
/** Delay of a re-enqueued dead letter; Queues accept up to 12 hours (43200 s). */
export const REQUEUE_DELAY_SECONDS = 60 * 60;
/** Same cap as the Lambda's `_MAX_REASON_CHARS`: a longer reason says nothing more. */
export const MAX_REASON_CHARS = 1000;
const MAX_IN_FLIGHT = 6;

/**
 * The `queue` handler for batches of the DLQ queue (`EMAIL_DLQ_NAME`).
 *
 * Each dead letter is acked only once SQS accepted it; a failure retries it with backoff,
 * never acks it. Logs carry ids, classes and outcomes, never bodies.
 */
export async function handleDeadLetters(batch, env) {
  const missing = missingBindings(env, DEAD_LETTER_BINDINGS);
  if (missing.length > 0) {
    log("error", "missing_bindings", { handler: "dead_letters", missing, queue: batch.queue, count: batch.messages.length });
    batch.retryAll({ delaySeconds: REQUEUE_DELAY_SECONDS });
    return;
  }
  const queueUrl = env.EMAIL_DEAD_LETTER_QUEUE_URL;
  const client = new AwsClient({
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    region: sqsRegion(queueUrl, env.AWS_REGION),
    service: "sqs",
    // Retries belong to the queue (delayed, counted), not to a busy loop here.
    retries: 0,
  });
  const pending = [...batch.messages];
  const workers = Array.from({ length: Math.min(MAX_IN_FLIGHT, pending.length) }, async () => {
    while (pending.length > 0) await forwardOne(pending.shift(), env, client, queueUrl);
  });
  await Promise.all(workers);
}

async function forwardOne(msg, env, client, queueUrl) {
  let letter;
  try {
    letter = describe(msg);
    const sqsMessageId = await sendToSqs(client, sqsEndpoint(env, queueUrl), queueUrl, letter);
    msg.ack();
    log("warn", "dead_letter_forwarded", { ...letter.log, outcome: "forwarded", sqs_message_id: sqsMessageId });
  } catch (error) {
    await settleFailure(msg, env, letter?.log ?? { queue_message_id: msg.id, attempts: msg.attempts }, error);
  }
}

async function settleFailure(msg, env, fields, error) {
  const failure = { ...fields, forward_error_class: error?.name ?? "Error", forward_error: redact(error?.message ?? error) };
  if (msg.attempts >= REQUEUE_AFTER_ATTEMPTS) {
    try {
      await env.EMAIL_DLQ.send(msg.body, { contentType: contentType(msg.body), delaySeconds: REQUEUE_DELAY_SECONDS });
      msg.ack();
      log("error", "dead_letter_forward_failed", { ...failure, outcome: "requeued", delay_seconds: REQUEUE_DELAY_SECONDS });
      return;
    } catch (requeueError) {
      failure.requeue_error = redact(requeueError?.message ?? requeueError);
    }
  }
  const delaySeconds = backoffSeconds(msg.attempts);
  msg.retry({ delaySeconds });
  log("error", "dead_letter_forward_failed", { ...failure, outcome: "retry", delay_seconds: delaySeconds });
}

/**
 * What one DLQ message becomes in SQS. An entry the sender consumer wrote (consumer.js
 * `deadLetter`: `reason`, `error_class`, `message`, ...) gives back the original message as
 * the body and its reason as attributes; anything else is a raw message the platform moved
 * here after the sender's `max_retries` and goes as it is, with `RetriesExhausted`.
 */
export function describe(msg) {
  const body = msg.body;
  const entry = isConsumerEntry(body) ? body : null;
  const message = entry ? entry.message : portable(body);
  const emailId = typeof message?.id === "string" ? message.id : typeof entry?.message_id === "string" ? entry.message_id : null;
  const errorClass = entry ? String(entry.error_class || "Error") : RETRIES_EXHAUSTED;
  const reason = entry
    ? String(entry.reason || errorClass)
    : "Cloudflare Queues moved the message to the DLQ queue after the consumer's max_retries deliveries (transient failures: see the Worker's send_failed logs)";
  const attributes = {
    error_class: text(errorClass),
    error_reason: text(reason.slice(0, MAX_REASON_CHARS)),
    source: text(SOURCE),
    source_message_id: text(String(entry?.queue_message_id ?? msg.id)),
  };
  if (emailId !== null) attributes.email_id = text(emailId);
  if (Number.isInteger(entry?.attempts)) attributes.attempts = { DataType: "Number", StringValue: String(entry.attempts) };
  if (typeof entry?.failed_at === "string") attributes.failed_at = text(entry.failed_at);
  return {
    body: sqsJson(message),
    attributes,
    log: {
      message_id: emailId,
      queue_message_id: msg.id,
      source_message_id: attributes.source_message_id.StringValue,
      attempts: msg.attempts,
      error_class: errorClass,
      error: redact(reason),
    },
  };
}

function isConsumerEntry(body) {
  return body !== null && typeof body === "object" && !Array.isArray(body) && "error_class" in body && "reason" in body && "message" in body && "queue_message_id" in body;
}

/**
 * SQS JSON protocol SendMessage (`X-Amz-Target: AmazonSQS.SendMessage`), signed for `sqs`.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
 * @returns {Promise<string>} the SQS MessageId; throws on anything but a 2xx
 */
export async function sendToSqs(client, endpoint, queueUrl, { body, attributes }) {
  const response = await client.fetch(`${endpoint}/`, {
    method: "POST",
    headers: { "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessage" },
    body: JSON.stringify({ QueueUrl: queueUrl, MessageBody: body, MessageAttributes: attributes }),
    signal: AbortSignal.timeout(SQS_TIMEOUT_MS),
  });
  // The answer is `application/x-amz-json-1.0`, which workerd's .text() warns about.
  const answer = new TextDecoder().decode(await response.arrayBuffer());
  if (!response.ok) {
    const parsed = parseJson(answer);
    const code = String(parsed?.__type ?? response.headers.get("x-amzn-query-error") ?? `HTTP${response.status}`).split("#").pop().split(";")[0];
    const error = new Error(`SQS ${response.status} ${code}: ${parsed?.message ?? parsed?.Message ?? answer.slice(0, 200)}`);
    error.name = code;
    throw error;
  }
  return parseJson(answer)?.MessageId ?? "";
}

/**
 * Where SendMessage goes: `SQS_ENDPOINT` (tests and the sandbox: a local SQS that holds a
 * queue of the planned name) or the queue URL's own origin, SQS's regional endpoint.
 */
export function sqsEndpoint(env, queueUrl) {
  return (env.SQS_ENDPOINT || new URL(queueUrl).origin).replace(/\/+$/, "");
}

/**
 * The SQS endpoint's region from the queue URL (`https://sqs.<region>.amazonaws.com/...`,
 * or the legacy `<region>.queue.amazonaws.com`), else `fallback` (a local endpoint in tests).
 */
export function sqsRegion(queueUrl, fallback) {
  const host = new URL(queueUrl).hostname;
  return host.match(/^sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/)?.[1] ?? host.match(/^([a-z0-9-]+)\.queue\.amazonaws\.com(?:\.cn)?$/)?.[1] ?? fallback;
}

/**
 * JSON text SQS accepts: it refuses characters outside #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD
 * #x10000-#x10FFFF (SendMessage, MessageBody). JSON.stringify already escapes controls and
 * lone surrogates; U+FFFE and U+FFFF can only sit inside strings, where their escape means
 * the same.
 */
export function sqsJson(value) {
  let json;
  try {
    // A body sent with contentType "v8" may hold what JSON cannot: BigInts become digits.
    json = JSON.stringify(value ?? null, (_key, v) => (typeof v === "bigint" ? v.toString() : v));
  } catch {
    // A cycle: the letter is still forwarded (a retry could never succeed), as its text.
    json = JSON.stringify(String(value));
  }
  return json.replace(/[\uFFFE\uFFFF]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

// A String attribute value has the body's alphabet: anything else becomes U+FFFD.
function text(value) {
  return { DataType: "String", StringValue: String(value).replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "\uFFFD") || "-" };
}

// A raw body is JSON when it came as JSON; bytes are kept as base64 as consumer.js does.
function portable(body) {
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
    const bytes = body instanceof ArrayBuffer ? new Uint8Array(body) : new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return { base64: btoa(binary) };
  }
  return body;
}

// The body goes back as it came: JSON when JSON can hold it, else structured clone ("v8").
function contentType(body) {
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return "bytes";
  if (typeof body === "string") return "text";
  try {
    JSON.stringify(body);
    return "json";
  } catch {
    return "v8";
  }
}

/** Exponential from 1 min to 1 h, jittered in the upper half: SQS outages are rarely short. */
export function backoffSeconds(attempts, random = Math.random) {
  const exponent = Math.max(0, (Number.isFinite(attempts) ? attempts : 1) - 1);
  const cap = Math.min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** Math.min(exponent, 20));
  return Math.max(1, Math.ceil(cap / 2 + (random() * cap) / 2));
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Logs carry no full addresses: reasons sometimes quote one. */
function redact(value) {
  return String(value).replace(/[^\s<>"'@:;,]+@/g, "***@");
}
