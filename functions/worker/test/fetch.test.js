import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../dist/worker.js";
import examples from "../../schema/examples.json";
import schema from "../../schema/message.schema.json";
import { message, recordingQueue } from "./support/fakes.js";

const TOKEN = env.EMAIL_WORKER_TOKEN;
const ORIGIN = "https://mail-worker.test";

async function call(path, { method = "POST", token = TOKEN, body, headers = {}, bindings = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (token !== null) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const queue = recordingQueue(bindings.queueOptions);
  const ctx = createExecutionContext();
  const response = await worker.fetch(new Request(`${ORIGIN}${path}`, init), { ...env, EMAIL_QUEUE: queue, ...bindings.env }, ctx);
  await waitOnExecutionContext(ctx);
  const text = await response.text();
  return { status: response.status, headers: response.headers, json: text ? JSON.parse(text) : null, queue };
}

describe("GET /health", () => {
  it("answers 200 without a token", async () => {
    const { status, json } = await call("/health", { method: "GET", token: null });

    expect(status).toBe(200);
    expect(json).toEqual({ status: "ok" });
  });
});

describe("routing", () => {
  it("answers 404 with a JSON error for an unknown path", async () => {
    const { status, json } = await call("/nope");

    expect(status).toBe(404);
    expect(json).toEqual({ error: "not found", details: { path: "/nope" } });
  });

  it.each([
    ["GET", "/send", "POST"],
    ["PUT", "/send/batch", "POST"],
    ["POST", "/health", "GET"],
  ])("answers 405 to %s %s with Allow: %s", async (method, path, allow) => {
    const { status, headers, json } = await call(path, { method, body: method === "GET" ? undefined : {} });

    expect(status).toBe(405);
    expect(headers.get("Allow")).toBe(allow);
    expect(json.error).toBe("method not allowed");
  });
});

describe("POST /send authorization", () => {
  it.each([
    ["missing", null],
    ["wrong", "not-the-token"],
    ["a prefix of the right one", TOKEN.slice(0, -1)],
  ])("refuses a %s token with 401 and enqueues nothing", async (_case, token) => {
    const { status, headers, json, queue } = await call("/send", { token, body: message() });

    expect(status).toBe(401);
    expect(headers.get("WWW-Authenticate")).toBe("Bearer");
    expect(json).toEqual({ error: "unauthorized", details: null });
    expect(queue.sent).toEqual([]);
  });

  it("accepts the right token, enqueues the message as JSON and answers 202 with its id", async () => {
    const { status, json, queue } = await call("/send", { body: message() });

    expect(status).toBe(202);
    expect(json).toEqual({ id: "order-1001-receipt" });
    expect(queue.sent).toEqual([{ body: message(), options: { contentType: "json" } }]);
  });

  it("names the missing bindings in a 500 to a caller with the token", async () => {
    const { status, json } = await call("/send", { body: message(), bindings: { env: { EMAIL_DOMAIN: "", EMAIL_RATE_LIMITER: undefined } } });

    expect(status).toBe(500);
    expect(json).toEqual({ error: "worker misconfigured: missing bindings", details: { missing: ["EMAIL_DOMAIN", "EMAIL_RATE_LIMITER"] } });
  });
});

describe("POST /send body", () => {
  it("answers 400 to a body that is not JSON", async () => {
    const { status, json, queue } = await call("/send", { body: "{not json" });

    expect(status).toBe(400);
    expect(json.error).toBe("invalid JSON");
    expect(queue.sent).toEqual([]);
  });

  const tooBig = examples.cases.filter((example) => !example.valid && JSON.stringify(example.message).length > schema["x-limits"].maxMessageBytes);
  const invalid = examples.cases.filter((example) => !example.valid && !tooBig.includes(example));

  it.each(invalid.map((example) => [example.name, example]))("answers 400 with details to the invalid vector: %s", async (_name, example) => {
    const { status, json, queue } = await call("/send", { body: example.message, bindings: { env: { EMAIL_DOMAIN: examples.domain } } });

    expect(status).toBe(400);
    expect(json.error).toBe("invalid message");
    expect(json.details.length).toBeGreaterThan(0);
    expect(queue.sent).toEqual([]);
  });

  it.each(examples.cases.filter((example) => example.valid).map((example) => [example.name, example]))(
    "accepts the valid vector: %s",
    async (_name, example) => {
      const { status, queue } = await call("/send", { body: example.message, bindings: { env: { EMAIL_DOMAIN: examples.domain } } });

      expect(status).toBe(202);
      expect(queue.sent.map((entry) => entry.body)).toEqual([example.message]);
    },
  );

  it.each(tooBig.map((example) => [example.name, example]))("answers 413 to the oversized vector: %s", async (_name, example) => {
    const { status, json } = await call("/send", { body: example.message });

    expect(status).toBe(413);
    expect(json.details.limit).toBe(schema["x-limits"].maxMessageBytes);
  });

  it("answers 413 from Content-Length alone, before reading the body", async () => {
    const { status, json } = await call("/send", { body: message(), headers: { "Content-Length": String(10 * 1024 * 1024) } });

    expect(status).toBe(413);
    expect(json.details).toEqual({ limit: schema["x-limits"].maxMessageBytes, size: 10 * 1024 * 1024 });
  });

  it("answers 413 when the body is larger than it declared (streamed, no Content-Length)", async () => {
    const big = JSON.stringify(message({ text: "a".repeat(schema["x-limits"].maxMessageBytes) }));
    const stream = new Blob([big]).stream();
    const ctx = createExecutionContext();
    const response = await worker.fetch(
      new Request(`${ORIGIN}/send`, { method: "POST", headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" }, body: stream }),
      { ...env, EMAIL_QUEUE: recordingQueue() },
      ctx,
    );

    expect(response.status).toBe(413);
    expect((await response.json()).error).toBe("body too large");
  });

  it("answers 503 with Retry-After when the queue refuses the message", async () => {
    const { status, headers, json } = await call("/send", { body: message(), bindings: { queueOptions: { fail: true } } });

    expect(status).toBe(503);
    expect(headers.get("Retry-After")).toBe("5");
    expect(json.error).toBe("could not enqueue, retry later");
  });
});

describe("POST /send/batch", () => {
  const batchOf = (count) => ({ messages: Array.from({ length: count }, (_, i) => message({ id: `batch-${i}` })) });

  it("enqueues every message with one sendBatch and answers 202 with their ids", async () => {
    const { status, json, queue } = await call("/send/batch", { body: batchOf(100) });

    expect(status).toBe(202);
    expect(json.ids).toHaveLength(100);
    expect(queue.sent.map((entry) => entry.body)).toEqual(batchOf(100).messages);
    expect(queue.sent.every((entry) => entry.options.contentType === "json")).toBe(true);
  });

  it("refuses more than 100 messages with 400", async () => {
    const { status, json, queue } = await call("/send/batch", { body: batchOf(101) });

    expect(status).toBe(400);
    expect(json.details[0].error).toContain("1 to 100 messages, but 101");
    expect(queue.sent).toEqual([]);
  });

  it("refuses the whole batch when one message is invalid, naming each bad index", async () => {
    const body = batchOf(4);
    body.messages[1] = message({ id: "bad-1", subject: undefined });
    body.messages[3] = message({ id: "bad-3", from: "ceo@evil.test" });

    const { status, json, queue } = await call("/send/batch", { body });

    expect(status).toBe(400);
    expect(json.details.map((entry) => entry.index)).toEqual([1, 3]);
    expect(json.details[1].errors[0].path).toBe("/from");
    expect(queue.sent).toEqual([]);
  });

  it.each([
    ["no messages key", { mail: [] }],
    ["an empty list", { messages: [] }],
    ["a list at the top", [message()]],
  ])("refuses %s with 400", async (_case, body) => {
    const { status, queue } = await call("/send/batch", { body });

    expect(status).toBe(400);
    expect(queue.sent).toEqual([]);
  });

  it("answers 413 when the batch would exceed a queue batch's 256 KB", async () => {
    const big = "a".repeat(100 * 1024);
    const body = { messages: [0, 1, 2].map((i) => message({ id: `big-${i}`, text: big })) };

    const { status, json, queue } = await call("/send/batch", { body });

    expect(status).toBe(413);
    expect(json.details.limit).toBe(256 * 1024);
    expect(queue.sent).toEqual([]);
  });
});

describe("through the real queue binding", () => {
  it("enqueues on the Miniflare queue producer", async () => {
    const response = await exports.default.fetch(`${ORIGIN}/send`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify(message({ id: "real-binding-1" })),
    });

    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ id: "real-binding-1" });
  });
});
