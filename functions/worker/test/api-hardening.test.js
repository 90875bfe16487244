// The enqueue API against an adversary, over HTTP in workerd: nothing internal before
// the token, JSON only, two tokens during a rotation, and a per-token rate limit
// enforced by the real Workers Rate Limiting binding (simulated by Miniflare).
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../dist/worker.js";
import { message, recordingQueue, uniqueId } from "./support/fakes.js";

const TOKEN = env.EMAIL_WORKER_TOKEN;
const PATHS = ["/send", "/send/batch"];

function bodyFor(path) {
  return path === "/send" ? message() : { messages: [message()] };
}

/** POST raw bytes, so the runtime adds no Content-Type of its own. */
async function post(path, { token = TOKEN, authorization, contentType = "application/json", bindings = {} } = {}) {
  const headers = {};
  if (authorization !== undefined) headers.Authorization = authorization;
  else if (token !== null) headers.Authorization = `Bearer ${token}`;
  if (contentType !== null) headers["Content-Type"] = contentType;
  const queue = recordingQueue();
  const ctx = createExecutionContext();
  const request = new Request(`https://mail-worker.test${path}`, { method: "POST", headers, body: new TextEncoder().encode(JSON.stringify(bodyFor(path))) });
  const response = await worker.fetch(request, { ...env, EMAIL_QUEUE: queue, ...bindings }, ctx);
  await waitOnExecutionContext(ctx);
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: text ? JSON.parse(text) : null, queue };
}

/** A limiter that records its calls and answers as told. */
function recordingLimiter({ success = true, fail = false } = {}) {
  const calls = [];
  return {
    calls,
    async limit(options) {
      calls.push(options);
      if (fail) throw new Error("rate limiter unavailable");
      return { success };
    },
  };
}

describe("an unauthenticated request learns nothing", () => {
  const cases = [
    ["no Authorization header", { token: null }],
    ["a wrong token", { token: "not-the-token" }],
    ["the token with one character missing", { token: TOKEN.slice(0, -1) }],
    ["the token with one character more", { token: `${TOKEN}x` }],
    ["Basic credentials", { authorization: `Basic ${btoa(`user:${TOKEN}`)}` }],
    ["Bearer without a token", { authorization: "Bearer " }],
    ["the token without the Bearer scheme", { authorization: TOKEN }],
    ["two tokens", { authorization: `Bearer ${TOKEN} ${TOKEN}` }],
    ["a wrong token while bindings are missing", { token: "nope", bindings: { EMAIL_QUEUE: undefined, EMAIL_DOMAIN: "", EMAIL_RATE_LIMITER: undefined } }],
    ["any token while the token binding itself is missing", { bindings: { EMAIL_WORKER_TOKEN: undefined, EMAIL_QUEUE: undefined } }],
    ["any token while the token binding is empty", { bindings: { EMAIL_WORKER_TOKEN: "" } }],
    ["a wrong token with a wrong media type", { token: "nope", contentType: "text/plain" }],
  ];

  it.each(PATHS.flatMap((path) => cases.map(([name, options]) => [path, name, options])))("%s, %s: 401 with a generic body", async (path, _name, options) => {
    const limiter = recordingLimiter();
    const { status, headers, text, queue } = await post(path, { ...options, bindings: { EMAIL_RATE_LIMITER: limiter, ...options.bindings } });

    expect(status).toBe(401);
    expect(JSON.parse(text)).toEqual({ error: "unauthorized", details: null });
    expect(text).not.toMatch(/EMAIL_|binding|queue|token|missing/i);
    expect([...headers.keys()].sort()).toEqual(["content-type", "www-authenticate"]);
    expect(queue.sent).toEqual([]);
    // Refused before the limiter: a stranger cannot drain a producer's bucket.
    expect(limiter.calls).toEqual([]);
  });
});

describe("POST bodies must be JSON", () => {
  const refused = [
    ["missing", null],
    ["empty", ""],
    ["text/plain", "text/plain"],
    ["text/plain with UTF-8", "text/plain;charset=UTF-8"],
    ["a form", "application/x-www-form-urlencoded"],
    ["multipart", "multipart/form-data; boundary=x"],
    ["text/json", "text/json"],
    ["a JSON-ish subtype", "application/json-patch+json"],
    ["a +json suffix", "application/ld+json"],
    ["a longer subtype", "application/jsonp"],
    ["a list of types", "application/json, text/plain"],
    ["a Latin-1 charset", "application/json; charset=latin1"],
    ["a UTF-16 charset", "application/json; charset=utf-16"],
    ["another parameter", "application/json; boundary=x"],
    ["a parameter without a value", "application/json; charset"],
  ];

  it.each(PATHS.flatMap((path) => refused.map(([name, type]) => [path, name, type])))("%s, Content-Type %s: 415, nothing enqueued", async (path, _name, contentType) => {
    const { status, json, queue } = await post(path, { contentType });

    expect(status).toBe(415);
    expect(json).toEqual({ error: "unsupported media type", details: { expected: "application/json" } });
    expect(queue.sent).toEqual([]);
  });

  const accepted = [
    "application/json",
    "Application/JSON",
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    'application/json; charset="utf-8"',
    "application/json ;  charset=utf-8 ",
    "application/json;",
  ];

  it.each(PATHS.flatMap((path) => accepted.map((type) => [path, type])))("%s, Content-Type %s: 202", async (path, contentType) => {
    const { status, queue } = await post(path, { contentType });

    expect(status).toBe(202);
    expect(queue.sent.map((entry) => entry.body)).toEqual([message()]);
  });
});

describe("token rotation: the previous token works while it is set", () => {
  const OLD = "previous-token-0123456789";
  const NEW = "rotated-token-9876543210";

  it.each(PATHS)("%s: both the current and the previous token are accepted", async (path) => {
    const bindings = { EMAIL_WORKER_TOKEN: NEW, EMAIL_WORKER_TOKEN_PREVIOUS: OLD };

    expect((await post(path, { token: NEW, bindings })).status).toBe(202);
    expect((await post(path, { token: OLD, bindings })).status).toBe(202);
    expect((await post(path, { token: "neither", bindings })).status).toBe(401);
  });

  it.each([
    ["unset", undefined],
    ["empty", ""],
  ])("the previous token fails once its binding is %s", async (_case, previous) => {
    const bindings = { EMAIL_WORKER_TOKEN: NEW, EMAIL_WORKER_TOKEN_PREVIOUS: previous };

    expect((await post("/send", { token: OLD, bindings })).status).toBe(401);
    expect((await post("/send", { token: NEW, bindings })).status).toBe(202);
    // An empty previous binding must not admit an empty token either.
    expect((await post("/send", { authorization: "Bearer ", bindings })).status).toBe(401);
  });

  it("gives each token its own rate-limit bucket, keyed by a hash, never the token", async () => {
    const limiter = recordingLimiter();
    const bindings = { EMAIL_WORKER_TOKEN: NEW, EMAIL_WORKER_TOKEN_PREVIOUS: OLD, EMAIL_RATE_LIMITER: limiter };

    await post("/send", { token: NEW, bindings });
    await post("/send", { token: OLD, bindings });
    await post("/send", { token: NEW, bindings });

    const keys = limiter.calls.map((call) => call.key);
    expect(keys).toHaveLength(3);
    for (const key of keys) expect(key).toMatch(/^token:[0-9a-f]{32}$/);
    expect(keys[0]).toBe(keys[2]);
    expect(keys[0]).not.toBe(keys[1]);
    expect(keys.join()).not.toContain(NEW);
    expect(Object.keys(limiter.calls[0])).toEqual(["key"]);
  });
});

describe("per-token rate limit with the real binding", () => {
  it.each(PATHS)("%s: the 4th request in a minute on a limit of 3 gets 429 with Retry-After, and another token is unaffected", async (path) => {
    // A fresh token is a fresh bucket, whatever earlier tests spent.
    const token = uniqueId("rl");
    const other = uniqueId("rl-other");
    const bindings = { EMAIL_WORKER_TOKEN: token, EMAIL_WORKER_TOKEN_PREVIOUS: other, EMAIL_RATE_LIMITER: env.TIGHT_RATE_LIMITER };

    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await post(path, { token, bindings })).status);
    const limited = await post(path, { token, bindings });

    expect(statuses).toEqual([202, 202, 202]);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("Retry-After")).toBe("60");
    expect(limited.json).toEqual({ error: "rate limited", details: { retry_after_seconds: 60 } });
    expect(limited.queue.sent).toEqual([]);
    expect((await post(path, { token: other, bindings })).status).toBe(202);
  });

  it("counts only authenticated requests: 401s do not spend the bucket", async () => {
    const token = uniqueId("rl-auth");
    const bindings = { EMAIL_WORKER_TOKEN: token, EMAIL_RATE_LIMITER: env.TIGHT_RATE_LIMITER };

    for (let i = 0; i < 5; i++) expect((await post("/send", { token: "wrong", bindings })).status).toBe(401);

    expect((await post("/send", { token, bindings })).status).toBe(202);
  });

  it("lets mail through when the limiter itself fails (it is a safeguard, not a gate)", async () => {
    const { status, queue } = await post("/send", { bindings: { EMAIL_RATE_LIMITER: recordingLimiter({ fail: true }) } });

    expect(status).toBe(202);
    expect(queue.sent).toHaveLength(1);
  });

  it("answers 429 when the limiter says no", async () => {
    const limiter = recordingLimiter({ success: false });
    const { status, headers, queue } = await post("/send", { bindings: { EMAIL_RATE_LIMITER: limiter } });

    expect(status).toBe(429);
    expect(headers.get("Retry-After")).toBe("60");
    expect(queue.sent).toEqual([]);
  });
});
