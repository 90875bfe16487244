// The enqueue API: POST /send, POST /send/batch, GET /health.
import { FETCH_BINDINGS, PREVIOUS_TOKEN_BINDING, RATE_LIMIT_PERIOD_SECONDS, missingBindings } from "./config.js";
import { log } from "./log.js";
import { LIMITS, countRecipients, jsonByteLength, validateMessage } from "./validate.js";

/**
 * Cloudflare Queues limits for `sendBatch`: at most 100 messages and 256 KB in all,
 * each message counting about 100 bytes of metadata
 * (https://developers.cloudflare.com/queues/platform/limits/).
 */
export const BATCH_MAX_MESSAGES = 100;
export const BATCH_MAX_QUEUE_BYTES = 256 * 1024;
export const QUEUE_MESSAGE_OVERHEAD_BYTES = 100;
// A batch body may carry indentation; the exact queue size is checked after parsing.
const BATCH_MAX_BODY_BYTES = 2 * BATCH_MAX_QUEUE_BYTES;

const ROUTES = {
  "/send": { POST: sendOne },
  "/send/batch": { POST: sendBatch },
  "/health": { GET: health },
};

class HttpError extends Error {
  constructor(status, error, details, headers) {
    super(error);
    this.status = status;
    this.details = details;
    this.headers = headers;
  }
}

/** The Worker's `fetch` handler. */
export async function handleFetch(request, env) {
  const { pathname } = new URL(request.url);
  const route = ROUTES[pathname];
  try {
    if (!route) {
      throw new HttpError(404, "not found", { path: pathname });
    }
    const handler = route[request.method];
    if (!handler) {
      const allow = Object.keys(route).join(", ");
      throw new HttpError(405, "method not allowed", { method: request.method, allow }, { Allow: allow });
    }
    return await handler(request, env);
  } catch (error) {
    if (error instanceof HttpError) {
      return json(error.status, { error: error.message, details: error.details ?? null }, error.headers);
    }
    log("error", "request_failed", { path: pathname, error_class: error?.name ?? "Error", error: String(error?.message ?? error) });
    return json(500, { error: "internal error", details: null });
  }
}

async function health() {
  return json(200, { status: "ok" });
}

async function sendOne(request, env) {
  await admit(request, env);
  const message = await readJson(request, LIMITS.maxMessageBytes);
  const errors = validateMessage(message, env.EMAIL_DOMAIN);
  if (errors.length > 0) {
    throw new HttpError(400, "invalid message", errors);
  }
  await enqueue(() => env.EMAIL_QUEUE.send(message, { contentType: "json" }), [message]);
  return json(202, { id: message.id });
}

async function sendBatch(request, env) {
  await admit(request, env);
  const body = await readJson(request, BATCH_MAX_BODY_BYTES);
  if (body === null || typeof body !== "object" || Array.isArray(body) || !Array.isArray(body.messages)) {
    throw new HttpError(400, "invalid batch", [{ path: "/messages", error: "the body must be an object with a `messages` list" }]);
  }
  const { messages } = body;
  if (messages.length === 0 || messages.length > BATCH_MAX_MESSAGES) {
    throw new HttpError(400, "invalid batch", [
      { path: "/messages", error: `\`messages\` must hold 1 to ${BATCH_MAX_MESSAGES} messages, but ${messages.length} were given` },
    ]);
  }
  const invalid = [];
  messages.forEach((message, index) => {
    const errors = validateMessage(message, env.EMAIL_DOMAIN);
    if (errors.length > 0) invalid.push({ index, errors });
  });
  if (invalid.length > 0) {
    throw new HttpError(400, "invalid batch", invalid);
  }
  const queueBytes = messages.reduce((total, message) => total + jsonByteLength(message) + QUEUE_MESSAGE_OVERHEAD_BYTES, 0);
  if (queueBytes > BATCH_MAX_QUEUE_BYTES) {
    throw new HttpError(413, "batch too large", {
      limit: BATCH_MAX_QUEUE_BYTES,
      size: queueBytes,
      hint: "split the batch: a queue batch holds at most 256 KB",
    });
  }
  await enqueue(() => env.EMAIL_QUEUE.sendBatch(messages.map((message) => ({ body: message, contentType: "json" }))), messages);
  return json(202, { ids: messages.map((message) => message.id) });
}

/**
 * What every POST passes, in this order: the token (401, the same generic answer
 * whatever is wrong, so a caller without the token learns nothing about the Worker),
 * then the bindings (500 naming the missing ones: only a token holder sees that), the
 * per-token rate limit (429) and the media type (415).
 */
async function admit(request, env) {
  const token = await authenticate(request, env);
  const missing = missingBindings(env, FETCH_BINDINGS);
  if (missing.length > 0) {
    log("error", "missing_bindings", { handler: "fetch", missing });
    throw new HttpError(500, "worker misconfigured: missing bindings", { missing });
  }
  await rateLimit(env, token);
  if (!isJsonMediaType(request.headers.get("Content-Type"))) {
    throw new HttpError(415, "unsupported media type", { expected: "application/json" });
  }
}

/** @returns {Promise<string>} the hex SHA-256 of the accepted token; throws 401 */
async function authenticate(request, env) {
  const unauthorized = new HttpError(401, "unauthorized", null, { "WWW-Authenticate": "Bearer" });
  const tokens = [env.EMAIL_WORKER_TOKEN, env[PREVIOUS_TOKEN_BINDING]].filter((token) => typeof token === "string" && token !== "");
  if (typeof env.EMAIL_WORKER_TOKEN !== "string" || env.EMAIL_WORKER_TOKEN === "") {
    // No current token: nobody can be authenticated. Said in the logs, not to the caller.
    log("error", "missing_bindings", { handler: "fetch", missing: ["EMAIL_WORKER_TOKEN"] });
    throw unauthorized;
  }
  const match = (request.headers.get("Authorization") ?? "").match(/^Bearer[ ]+(\S+)\s*$/i);
  if (!match) throw unauthorized;
  const given = await sha256(match[1]);
  // Constant time: both sides are hashed to equal length (timingSafeEqual requires it)
  // and every configured token is compared, so neither which one matched nor a length leaks.
  const matches = await Promise.all(tokens.map(async (token) => crypto.subtle.timingSafeEqual(given, await sha256(token))));
  if (!matches.includes(true)) throw unauthorized;
  return [...new Uint8Array(given)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

function sha256(text) {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}

/**
 * One bucket per token (keyed by a prefix of its hash, never the token itself), so a
 * leaked or runaway producer is held back without starving the other during rotation.
 * The binding is a safeguard, not an accounting system: if it fails, mail still flows.
 */
async function rateLimit(env, tokenHash) {
  let outcome;
  try {
    outcome = await env.EMAIL_RATE_LIMITER.limit({ key: `token:${tokenHash.slice(0, 32)}` });
  } catch (error) {
    log("error", "rate_limiter_failed", { error_class: error?.name ?? "Error", error: String(error?.message ?? error) });
    return;
  }
  if (!outcome?.success) {
    log("warn", "rate_limited", { key_hash: tokenHash.slice(0, 12) });
    throw new HttpError(429, "rate limited", { retry_after_seconds: RATE_LIMIT_PERIOD_SECONDS }, { "Retry-After": String(RATE_LIMIT_PERIOD_SECONDS) });
  }
}

/**
 * `application/json`, in any case, with at most a UTF-8 charset parameter (RFC 9110
 * section 8.3.1; RFC 8259 section 8.1: JSON exchanged between systems is UTF-8).
 */
export function isJsonMediaType(header) {
  if (!header) return false;
  const [type, ...parameters] = header.split(";");
  if (type.trim().toLowerCase() !== "application/json") return false;
  return parameters.every((parameter) => {
    if (parameter.trim() === "") return true;
    const separator = parameter.indexOf("=");
    if (separator < 0) return false;
    const name = parameter.slice(0, separator).trim().toLowerCase();
    const value = parameter.slice(separator + 1).trim().replace(/^"(.*)"$/, "$1").toLowerCase();
    return name === "charset" && value === "utf-8";
  });
}

/** Read and parse a JSON body, refusing (413) more than `limit` bytes whatever Content-Length says. */
async function readJson(request, limit) {
  const declared = Number(request.headers.get("Content-Length"));
  if (Number.isFinite(declared) && declared > limit) {
    throw new HttpError(413, "body too large", { limit, size: declared });
  }
  const bytes = await readAtMost(request.body, limit);
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, "invalid JSON", [{ path: "", error: "the body is not UTF-8" }]);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, "invalid JSON", [{ path: "", error: String(error.message) }]);
  }
}

async function readAtMost(stream, limit) {
  if (!stream) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new HttpError(413, "body too large", { limit, size: `more than ${limit}` });
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

async function enqueue(send, messages) {
  try {
    await send();
  } catch (error) {
    log("error", "enqueue_failed", { count: messages.length, error_class: error?.name ?? "Error", error: String(error?.message ?? error) });
    throw new HttpError(503, "could not enqueue, retry later", null, { "Retry-After": "5" });
  }
  for (const message of messages) {
    log("info", "enqueued", { message_id: message.id, recipients: countRecipients(message) });
  }
}

function json(status, body, headers = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json; charset=utf-8", ...headers },
  });
}
