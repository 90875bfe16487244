// The queue consumer: validate, send through SES, ack one by one, retry or dead-letter.
import { AwsClient } from "aws4fetch";
import { QUEUE_BINDINGS, missingBindings } from "./config.js";
import { fingerprint, guardFor } from "./guard.js";
import { log } from "./log.js";
import { createPacer } from "./pacer.js";
import { sendEmail } from "./ses.js";
import { countRecipients, validateMessage } from "./validate.js";

/** Workers allow 6 simultaneous open connections per invocation; more would only queue. */
export const MAX_IN_FLIGHT = 6;
export const BACKOFF_BASE_SECONDS = 5;
export const BACKOFF_MAX_SECONDS = 15 * 60;
/** A DLQ entry must fit in one queue message (128 KB, about 100 bytes of it metadata). */
export const DLQ_ENTRY_MAX_BYTES = 128 * 1024 - 1024;
/**
 * The key of the envelope a message travels in when the consumer puts it back on the
 * queue itself (throttled, held for the daily quota, or paced to a later turn). The
 * message schema allows no such key, so no producer can forge one through `/send`.
 */
export const REQUEUE_KEY = "serverless_mail_requeue";
/** Throttle waits: 1 s doubling per hop up to 5 min, drawn from the upper half (jitter). */
export const THROTTLE_BASE_SECONDS = 1;
export const THROTTLE_MAX_SECONDS = 5 * 60;
/**
 * The daily quota is a rolling 24-hour window (SES Developer Guide, "Managing your Amazon
 * SES sending quotas"), so there is no reset instant to wait for: a held message tries
 * again after 30 to 60 minutes.
 */
export const QUOTA_HOLD_SECONDS = 60 * 60;
/** Throttles and holds a message may go through before it is dead-lettered with the reason (days of waiting). */
export const MAX_HOPS = 200;
/** Queues refuse a longer `delaySeconds` (https://developers.cloudflare.com/queues/platform/limits/). */
export const MAX_DELAY_SECONDS = 43_200;
/** Queues keep a message at most 14 days (same limits page): an enqueue time claimed further back was not our copy's. */
export const MAX_QUEUED_AGE_MS = 14 * 24 * 60 * 60 * 1000;

/**
 * The Worker's `queue` handler.
 *
 * Each message is claimed by id in its Durable Object guard (guard.js) before it is
 * sent and acked on its own as soon as it is sent: SES v2 has no idempotency token, so
 * a redelivery or a second enqueue of the same id sends nothing, and an id reused for
 * another message goes to the DLQ. Sends are paced to EMAIL_MAX_SEND_RATE. Throttled
 * and quota-held messages wait as delayed copies that cost no retry; transient
 * failures are retried with exponential backoff and jitter; permanent ones, and
 * transient ones on their last delivery, go to the DLQ with their reason.
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
  // One pacer per invocation at its share of the path's rate (EMAIL_MAX_SEND_RATE, set
  // by the WorkerSender component to the path's rate / the consumer's max_concurrency).
  const run = { pacer: createPacer(env.EMAIL_MAX_SEND_RATE), held: false, settling: [] };
  // Every message's id is claimed before the first send, all at once, so the six lanes
  // below spend their connections on SES, not on waiting for the guard.
  const tickets = await Promise.all(batch.messages.map((msg) => ticketFor(msg, env).catch((error) => ({ msg, error }))));
  await forEachLimited(tickets, MAX_IN_FLIGHT, async (ticket) => {
    const { msg } = ticket;
    try {
      if (ticket.error) throw ticket.error;
      await processMessage(ticket, env, client, run);
    } catch (error) {
      // A bug must not cost a batch-mate its send, nor this message its delivery.
      const delaySeconds = backoffSeconds(msg.attempts);
      msg.retry({ delaySeconds });
      log("error", "unexpected_error", { queue_message_id: msg.id, attempts: msg.attempts, outcome: "retry", delay_seconds: delaySeconds, error_class: error?.name ?? "Error", error: redact(error?.message ?? error) });
    }
  });
  await Promise.all(run.settling);
  await run.pacer.drain();
}

/** Validate the message and, if it is valid, claim its id in the duplicate guard. */
async function ticketFor(msg, env) {
  const { message, hops, queuedAt } = unwrap(msg.body, msg.timestamp);
  const id = typeof message?.id === "string" ? message.id : null;
  const errors = validateMessage(message, env.EMAIL_DOMAIN);
  if (errors.length > 0) return { msg, message, id, hops, errors };
  const print = await fingerprint(message);
  const guard = guardFor(env, id);
  return { msg, message, id, hops, queuedAt, errors, print, guard, claim: await guard.claim(id, print) };
}

async function processMessage({ msg, message, id, hops, queuedAt, errors, print, guard, claim }, env, client, run) {
  if (errors.length > 0) {
    const summary = errors.map((e) => `${e.path || "/"}: ${e.error}`).join("; ");
    await deadLetter(msg, env, { reason: `invalid message: ${summary}`.slice(0, 2000), errorClass: "InvalidMessage", details: errors });
    return;
  }
  if (claim.outcome === "conflict") {
    await deadLetter(msg, env, {
      reason: `id reused for a different message: ${JSON.stringify(id)} was claimed by another message (other recipients or content) within the last 24 h`,
      errorClass: "IdempotencyKeyReused",
    });
    return;
  }
  if (claim.outcome === "sent") {
    msg.ack();
    log("info", "duplicate", { message_id: id, attempts: msg.attempts, outcome: "duplicate", sent_at: new Date(claim.sentAt).toISOString() });
    return;
  }
  if (claim.outcome === "busy") {
    // Another delivery of this id is sending right now; look again when its lease ends.
    const delaySeconds = Math.max(1, Math.ceil(claim.retryInMs / 1000));
    msg.retry({ delaySeconds });
    log("warn", "id_busy", { message_id: id, attempts: msg.attempts, outcome: "retry", delay_seconds: delaySeconds });
    return;
  }
  const recipients = countRecipients(message);
  if (run.held) {
    // A batch-mate found the daily quota spent: this one would only be refused too.
    await guard.release(id, print);
    await requeue(msg, env, message, { hops: hops + 1, queuedAt, delaySeconds: holdSeconds(), event: "held_for_quota", fields: { message_id: id } });
    return;
  }
  const turn = await run.pacer.take(recipients);
  if (turn.deferMs !== undefined) {
    await guard.release(id, print);
    await requeue(msg, env, message, { hops, queuedAt, delaySeconds: Math.ceil(turn.deferMs / 1000), event: "paced_later", fields: { message_id: id, recipients } });
    return;
  }
  const outcome = await sendEmail(client, env, message, queuedAt);
  if (outcome.kind === "sent") {
    // Recorded while the lane moves on to its next message (awaited before the handler
    // returns). If it fails the mail still left, so it is acked anyway; the claim's lease
    // still covers a prompt redelivery.
    run.settling.push(
      guard.complete(id, print).catch((error) => log("error", "guard_complete_failed", { message_id: id, error: String(error?.message ?? error) })),
    );
    msg.ack();
    log("info", "sent", { message_id: id, ses_message_id: outcome.sesMessageId, recipients, attempts: msg.attempts, hops, waited_ms: turn.waitedMs, outcome: "sent" });
    return;
  }
  await guard.release(id, print);
  const failure = { message_id: id, recipients, attempts: msg.attempts, status: outcome.status, error_class: outcome.errorClass, error: redact(outcome.reason) };
  if ((outcome.kind === "throttled" || outcome.kind === "quota") && hops + 1 > MAX_HOPS) {
    await deadLetter(msg, env, { reason: `${outcome.kind === "quota" ? "held for the daily quota" : "throttled"} ${hops + 1} times: ${outcome.reason}`, errorClass: outcome.errorClass, status: outcome.status });
  } else if (outcome.kind === "throttled") {
    // Cloudflare Queues count every retry() toward max_retries, throttled or not
    // (https://developers.cloudflare.com/queues/configuration/batching-retries/): a fresh
    // delayed copy with a hop count waits instead, and costs no retry.
    await requeue(msg, env, message, { hops: hops + 1, queuedAt, delaySeconds: throttleSeconds(hops + 1), event: "throttled", fields: failure });
  } else if (outcome.kind === "quota") {
    run.held = true;
    await requeue(msg, env, message, { hops: hops + 1, queuedAt, delaySeconds: holdSeconds(), event: "daily_quota_exceeded", level: "error", fields: failure });
  } else if (outcome.kind === "transient" && !lastDelivery(msg, env)) {
    const delaySeconds = backoffSeconds(msg.attempts);
    msg.retry({ delaySeconds });
    log("warn", "send_failed", { ...failure, outcome: "retry", delay_seconds: delaySeconds });
  } else {
    // Permanent, or transient on the last delivery the consumer allows: the DLQ, with the
    // reason (the platform's own move after max_retries would carry none).
    const reason = outcome.kind === "transient" ? `${outcome.reason} (attempt ${msg.attempts}, the last)` : outcome.reason;
    await deadLetter(msg, env, { reason, errorClass: outcome.errorClass, status: outcome.status });
  }
}

/**
 * The message, its hop count and when it first entered the queue (epoch ms), whether it
 * arrived as sent or in a requeue envelope. That time is the queue message's `timestamp`,
 * unless the envelope carries the original's: believed only if it is not later than the
 * message's own `timestamp` nor more than MAX_QUEUED_AGE_MS before it.
 */
export function unwrap(body, timestamp) {
  const own = Number.isInteger(+timestamp) ? +timestamp : undefined;
  const envelope = body && typeof body === "object" && !Array.isArray(body) ? body[REQUEUE_KEY] : undefined;
  if (envelope && typeof envelope === "object" && "message" in body) {
    const claimed = envelope.queued_at;
    const queuedAt = Number.isInteger(claimed) && claimed <= own && claimed >= own - MAX_QUEUED_AGE_MS ? claimed : own;
    return { message: body.message, hops: Number.isInteger(envelope.hops) && envelope.hops > 0 ? envelope.hops : 0, queuedAt };
  }
  return { message: body, hops: 0, queuedAt: own };
}

// The consumer's max_retries (EMAIL_MAX_RETRIES): a message on its last delivery goes to the DLQ itself.
function lastDelivery(msg, env) {
  const maxRetries = Number.parseInt(env.EMAIL_MAX_RETRIES ?? "", 10);
  return Number.isInteger(maxRetries) && Number.isInteger(msg.attempts) && msg.attempts > maxRetries;
}

/**
 * Put a copy of `message` back on the queue, `delaySeconds` from now, then ack the
 * original: the copy arrives as a new message (its attempts start at 1) carrying `hops`
 * and the original's enqueue time, so its SES tag `queued_at` stays the first one.
 * If the copy cannot be written the original is retried instead, so nothing is lost.
 */
async function requeue(msg, env, message, { hops, queuedAt, delaySeconds, event, level = "warn", fields }) {
  const delay = Math.min(MAX_DELAY_SECONDS, Math.max(0, Math.ceil(delaySeconds)));
  try {
    await env.EMAIL_QUEUE.send({ [REQUEUE_KEY]: { hops, queued_at: queuedAt }, message }, { contentType: "json", delaySeconds: delay });
  } catch (error) {
    const retryDelay = Math.max(delay, 1);
    msg.retry({ delaySeconds: retryDelay });
    log("error", "requeue_failed", { ...fields, event_kind: event, hops, outcome: "retry", delay_seconds: retryDelay, queue_error: String(error?.message ?? error) });
    return;
  }
  msg.ack();
  log(level, event, { ...fields, hops, outcome: "requeued", delay_seconds: delay });
}

/** The wait before a throttled message's next try: exponential in its hops, with jitter. */
export function throttleSeconds(hops, random = Math.random) {
  const cap = Math.min(THROTTLE_MAX_SECONDS, THROTTLE_BASE_SECONDS * 2 ** Math.min(Math.max(0, hops - 1), 20));
  return Math.max(1, Math.ceil(cap / 2 + (random() * cap) / 2));
}

/** The wait of a message held for the daily quota: 30 to 60 minutes, spread out. */
export function holdSeconds(random = Math.random) {
  return Math.ceil(QUOTA_HOLD_SECONDS / 2 + (random() * QUOTA_HOLD_SECONDS) / 2);
}

/**
 * Queues attach no reason to a retry and dead-letter only after `max_retries`, so a
 * message that can never be sent is written to the DLQ by this consumer, with its
 * reason, and then acked. If that write fails the message is retried: nothing is lost.
 */
async function deadLetter(msg, env, { reason, errorClass, status = null, details = null }) {
  const { message } = unwrap(msg.body);
  const id = typeof message?.id === "string" ? message.id : null;
  const entry = {
    reason,
    error_class: errorClass,
    status,
    details,
    message: portable(message),
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
