// The queue consumer: validate, send through SES, ack one by one, retry or dead-letter.
import { AwsClient } from "aws4fetch";
import { QUEUE_BINDINGS, missingBindings } from "./config.js";
import { log } from "./log.js";
import { sendEmail } from "./ses.js";
import { countRecipients, validateMessage } from "./validate.js";

/** Workers allow 6 simultaneous open connections per invocation; more would only queue. */
export const MAX_IN_FLIGHT = 6;
export const BACKOFF_BASE_SECONDS = 5;
export const BACKOFF_MAX_SECONDS = 15 * 60;
/** A DLQ entry must fit in one queue message (128 KB, about 100 bytes of it metadata). */
export const DLQ_ENTRY_MAX_BYTES = 128 * 1024 - 1024;

/**
 * The Worker's `queue` handler.
 *
 * Each message is acked on its own as soon as it is sent, so a batch that is retried
 * (the invocation crashed, or timed out) does not send again what already left: SES v2
 * has no idempotency token, this is the guard. Transient failures are retried with
 * exponential backoff and jitter; permanent ones go to the DLQ with their reason.
 */
export async function handleQueue(batch, env) {
  const missing = missingBindings(env, QUEUE_BINDINGS);
  if (missing.length > 0) {
    // A deployment bug, not the messages' fault: keep them until it is fixed.
    log("error", "missing_bindings", { handler: "queue", missing, queue: batch.queue, count: batch.messages.length });
    const attempts = Math.max(1, ...batch.messages.map((msg) => msg.attempts ?? 1));
    batch.retryAll({ delaySeconds: backoffSeconds(attempts) });
    return;
  }
  const client = new AwsClient({
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    region: env.AWS_REGION,
    service: "ses",
    // Retries belong to the queue (delayed, counted, dead-lettered), not to a busy loop here.
    retries: 0,
  });
  await forEachLimited(batch.messages, MAX_IN_FLIGHT, async (msg) => {
    try {
      await processMessage(msg, env, client);
    } catch (error) {
      // A bug must not cost a batch-mate its send, nor this message its delivery.
      const delaySeconds = backoffSeconds(msg.attempts);
      msg.retry({ delaySeconds });
      log("error", "unexpected_error", { queue_message_id: msg.id, attempts: msg.attempts, outcome: "retry", delay_seconds: delaySeconds, error_class: error?.name ?? "Error", error: redact(error?.message ?? error) });
    }
  });
}

async function processMessage(msg, env, client) {
  const message = msg.body;
  const id = typeof message?.id === "string" ? message.id : null;
  const errors = validateMessage(message, env.EMAIL_DOMAIN);
  if (errors.length > 0) {
    const summary = errors.map((e) => `${e.path || "/"}: ${e.error}`).join("; ");
    await deadLetter(msg, env, { reason: `invalid message: ${summary}`.slice(0, 2000), errorClass: "InvalidMessage", details: errors });
    return;
  }
  const recipients = countRecipients(message);
  const outcome = await sendEmail(client, env, message);
  if (outcome.kind === "sent") {
    msg.ack();
    log("info", "sent", { message_id: id, ses_message_id: outcome.sesMessageId, recipients, attempts: msg.attempts, outcome: "sent" });
  } else if (outcome.kind === "transient") {
    const delaySeconds = backoffSeconds(msg.attempts);
    msg.retry({ delaySeconds });
    log("warn", "send_failed", {
      message_id: id,
      recipients,
      attempts: msg.attempts,
      outcome: "retry",
      delay_seconds: delaySeconds,
      status: outcome.status,
      error_class: outcome.errorClass,
      error: redact(outcome.reason),
    });
  } else {
    await deadLetter(msg, env, { reason: outcome.reason, errorClass: outcome.errorClass, status: outcome.status });
  }
}

/**
 * Queues attach no reason to a retry and dead-letter only after `max_retries`, so a
 * message that can never be sent is written to the DLQ by this consumer, with its
 * reason, and then acked. If that write fails the message is retried: nothing is lost.
 */
async function deadLetter(msg, env, { reason, errorClass, status = null, details = null }) {
  const id = typeof msg.body?.id === "string" ? msg.body.id : null;
  const entry = {
    reason,
    error_class: errorClass,
    status,
    details,
    message: portable(msg.body),
    message_id: id,
    queue_message_id: msg.id,
    attempts: msg.attempts,
    failed_at: new Date().toISOString(),
  };
  const fields = { message_id: id, attempts: msg.attempts, error_class: errorClass, status, error: redact(reason) };
  try {
    const size = new TextEncoder().encode(JSON.stringify(entry)).byteLength;
    if (size > DLQ_ENTRY_MAX_BYTES) {
      // Too big to annotate: retried until max_retries, then the platform moves the raw message to the DLQ.
      throw new RangeError(`DLQ entry of ${size} bytes exceeds ${DLQ_ENTRY_MAX_BYTES}`);
    }
    await env.EMAIL_DLQ.send(entry, { contentType: "json" });
  } catch (error) {
    const delaySeconds = backoffSeconds(msg.attempts);
    msg.retry({ delaySeconds });
    log("error", "dead_letter_failed", { ...fields, outcome: "retry", delay_seconds: delaySeconds, dlq_error: String(error?.message ?? error) });
    return;
  }
  msg.ack();
  log("error", "dead_lettered", { ...fields, outcome: "dead_lettered" });
}

/**
 * Exponential backoff with jitter: the cap doubles per attempt (5 s, 10 s, 20 s ... 15 min)
 * and the delay is drawn from its upper half, so retried batch-mates spread out.
 */
export function backoffSeconds(attempts, random = Math.random) {
  const exponent = Math.max(0, (Number.isFinite(attempts) ? attempts : 1) - 1);
  const cap = Math.min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** Math.min(exponent, 20));
  return Math.max(1, Math.ceil(cap / 2 + (random() * cap) / 2));
}

/** Run `task` over `items` with at most `limit` in flight; a task must not throw. */
export async function forEachLimited(items, limit, task) {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      await task(item);
    }
  });
  await Promise.all(workers);
}

// DLQ entries are JSON: a body sent as bytes is kept as base64, anything else as it parses.
function portable(body) {
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
    const bytes = body instanceof ArrayBuffer ? new Uint8Array(body) : new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return { base64: btoa(binary) };
  }
  try {
    return JSON.parse(JSON.stringify(body ?? null));
  } catch {
    return String(body);
  }
}

/** Logs carry no full addresses: SES error messages sometimes quote one. */
export function redact(text) {
  return String(text).replace(/[^\s<>"'@:;,]+@/g, "***@");
}
