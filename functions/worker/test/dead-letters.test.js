// The DLQ queue's consumer: every dead letter forwarded to the SQS dead-letter queue (moto),
// acked only once SQS accepted it, retried (or re-enqueued) otherwise.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { AwsClient } from "aws4fetch";
import { beforeEach, describe, expect, it } from "vitest";
import worker from "../dist/worker.js";
import { message, recordingQueue, uniqueId } from "./support/fakes.js";

const STUB = env.SES_STUB_URL;
const SQS_DLQ = env.EMAIL_DEAD_LETTER_QUEUE_URL;
// The stub answers SQS's JSON protocol on any path; the URL only has to look like a queue's.
const STUB_DLQ = `${STUB}/123456789012/stub-dlq`;
const sqs = new AwsClient({ accessKeyId: "testing", secretAccessKey: "testing", region: "eu-west-1", service: "sqs", retries: 0 });

async function stub(path, body) {
  const response = await fetch(`${STUB}${path}`, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) });
  return response.json();
}

async function sqsCall(action, request) {
  const response = await sqs.fetch(`${new URL(SQS_DLQ).origin}/`, {
    method: "POST",
    headers: { "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": `AmazonSQS.${action}` },
    body: JSON.stringify({ QueueUrl: SQS_DLQ, ...request }),
  });
  const answer = new TextDecoder().decode(await response.arrayBuffer());
  if (!response.ok) throw new Error(`moto ${action}: ${response.status} ${answer}`);
  return JSON.parse(answer);
}

/** Every message read from moto's SQS DLQ so far (read once, then deleted). */
const received = [];
async function forwarded(emailId) {
  for (;;) {
    const { Messages = [] } = await sqsCall("ReceiveMessage", { MaxNumberOfMessages: 10, MessageAttributeNames: ["All"], WaitTimeSeconds: 0 });
    if (Messages.length === 0) break;
    for (const msg of Messages) {
      received.push(msg);
      await sqsCall("DeleteMessage", { ReceiptHandle: msg.ReceiptHandle });
    }
  }
  return received.filter((msg) => msg.MessageAttributes?.email_id?.StringValue === emailId);
}

const attributes = (msg) => Object.fromEntries(Object.entries(msg.MessageAttributes).map(([name, value]) => [name, value.StringValue]));

/** What consumer.js writes to the DLQ queue for a message it gave up on. */
function entry(body, overrides = {}) {
  return {
    reason: "SES 400 MessageRejected: Email address is not verified.",
    error_class: "MessageRejected",
    status: 400,
    details: null,
    message: body,
    message_id: body.id,
    queue_message_id: `orig-${body.id}`,
    attempts: 2,
    failed_at: "2026-11-23T04:00:00.000Z",
    ...overrides,
  };
}

/** Deliver `bodies` as one batch of the DLQ queue to the Worker's `queue` handler. */
async function deliver(bodies, { attempts = 1, queueUrl = SQS_DLQ, dlq = recordingQueue(), bindings = {} } = {}) {
  const messages = bodies.map((body, i) => ({ id: `dq-${i}`, timestamp: new Date(), attempts, body }));
  const batch = createMessageBatch(env.EMAIL_DLQ_NAME, messages);
  const delays = new Map();
  let retryAllOptions = null;
  const spied = {
    queue: batch.queue,
    messages: batch.messages.map((msg) => ({
      id: msg.id,
      timestamp: msg.timestamp,
      body: msg.body,
      attempts: msg.attempts,
      ack: () => msg.ack(),
      retry: (options) => {
        delays.set(msg.id, options?.delaySeconds);
        msg.retry(options);
      },
    })),
    ackAll: () => batch.ackAll(),
    retryAll: (options) => {
      retryAllOptions = options;
      batch.retryAll(options);
    },
  };
  const ctx = createExecutionContext();
  await worker.queue(spied, { ...env, EMAIL_DEAD_LETTER_QUEUE_URL: queueUrl, EMAIL_DLQ: dlq, ...bindings }, ctx);
  const result = await getQueueResult(batch, ctx);
  return { result, delays: Object.fromEntries(delays), retryAllOptions, dlq };
}

beforeEach(async () => {
  await stub("/__reset", { latencyMs: 0 });
});

describe("forwarding to the SQS dead-letter queue (moto)", () => {
  it("sends the original message with its reason as attributes, then acks", async () => {
    const body = message({ id: uniqueId("rejected") });

    const { result } = await deliver([entry(body)]);

    expect(result.explicitAcks).toEqual(["dq-0"]);
    expect(result.retryMessages).toEqual([]);
    const [sqsMessage] = await forwarded(body.id);
    expect(JSON.parse(sqsMessage.Body)).toEqual(body);
    expect(attributes(sqsMessage)).toEqual({
      error_class: "MessageRejected",
      error_reason: "SES 400 MessageRejected: Email address is not verified.",
      source: "cloudflare-dlq",
      source_message_id: `orig-${body.id}`,
      email_id: body.id,
      attempts: "2",
      failed_at: "2026-11-23T04:00:00.000Z",
    });
    expect(sqsMessage.MessageAttributes.attempts.DataType).toBe("Number");
  });

  it("sends to SQS_ENDPOINT when set, keeping the planned queue URL (and its region) in the request", async () => {
    const body = message({ id: uniqueId("endpoint") });
    const planned = `https://sqs.eu-west-1.amazonaws.com/123456789012/${new URL(SQS_DLQ).pathname.split("/").pop()}`;

    const { result } = await deliver([entry(body)], { queueUrl: planned, bindings: { SQS_ENDPOINT: new URL(SQS_DLQ).origin } });

    expect(result.explicitAcks).toEqual(["dq-0"]);
    const [sqsMessage] = await forwarded(body.id);
    expect(JSON.parse(sqsMessage.Body)).toEqual(body);
  });

  it("sends a raw message the platform moved after max_retries as it is, as RetriesExhausted", async () => {
    const body = message({ id: uniqueId("exhausted") });

    const { result } = await deliver([body]);

    expect(result.explicitAcks).toEqual(["dq-0"]);
    const [sqsMessage] = await forwarded(body.id);
    expect(JSON.parse(sqsMessage.Body)).toEqual(body);
    expect(attributes(sqsMessage)).toMatchObject({ error_class: "RetriesExhausted", source: "cloudflare-dlq", source_message_id: "dq-0", email_id: body.id });
    expect(attributes(sqsMessage).error_reason).toMatch(/max_retries/);
  });

  it("keeps characters SQS refuses out of the body and the attributes, losing nothing of the message", async () => {
    const body = message({ id: uniqueId("odd-chars"), subject: "a\uFFFEb\uFFFFc\u0001d" });

    const { result } = await deliver([entry(body, { reason: "bad \u0000 reason \uD800" })]);

    expect(result.explicitAcks).toEqual(["dq-0"]);
    const [sqsMessage] = await forwarded(body.id);
    expect(JSON.parse(sqsMessage.Body)).toEqual(body);
    expect(attributes(sqsMessage).error_reason).toBe("bad \uFFFD reason \uFFFD");
  });

  it("forwards a body JSON cannot hold as it is (a BigInt as digits, a cycle as text) instead of retrying it forever", async () => {
    const big = { id: uniqueId("bigint"), amount: 12345678901234567890n };
    const cyclic = { id: uniqueId("cyclic") };
    cyclic.self = cyclic;

    const { result } = await deliver([big, cyclic]);

    expect([...result.explicitAcks].sort()).toEqual(["dq-0", "dq-1"]);
    expect(JSON.parse((await forwarded(big.id))[0].Body)).toEqual({ id: big.id, amount: "12345678901234567890" });
    expect(JSON.parse((await forwarded(cyclic.id))[0].Body)).toBe("[object Object]");
  });

  it("ends in the SQS DLQ through the real queues: SES refuses, the sender dead-letters, the DLQ consumer forwards", async () => {
    const body = message({ id: uniqueId("end-to-end"), from: "x@unverified.mail.example.com" });
    const batch = createMessageBatch("email-queue", [{ id: "eq-0", timestamp: new Date(), attempts: 1, body }]);
    const ctx = createExecutionContext();

    // The real EMAIL_DLQ producer: Miniflare delivers the entry to the Worker's consumer.
    await worker.queue(batch, { ...env, SES_ENDPOINT: env.MOTO_URL }, ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual(["eq-0"]);

    let found = [];
    for (let i = 0; i < 100 && found.length === 0; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      found = await forwarded(body.id);
    }
    expect(found).toHaveLength(1);
    expect(JSON.parse(found[0].Body)).toEqual(body);
    expect(attributes(found[0])).toMatchObject({ error_class: "MessageRejected", source: "cloudflare-dlq", source_message_id: "eq-0", attempts: "1" });
    expect(attributes(found[0]).error_reason).toMatch(/^SES 400 MessageRejected/);
  });
});

describe("when SQS does not take it", () => {
  it("signs SendMessage for sqs with the Worker's key, in the queue URL's region", async () => {
    const body = message({ id: uniqueId("signed") });

    await deliver([entry(body)], { queueUrl: STUB_DLQ });

    const [recorded] = await stub(`/__requests?id=${body.id}`);
    expect(recorded.service).toBe("sqs");
    expect(recorded.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=testing\/\d{8}\/eu-west-1\/sqs\/aws4_request, /);
    expect(recorded.request.QueueUrl).toBe(STUB_DLQ);
  });

  it("retries with a delay, never acks, when the connection to SQS drops", async () => {
    const body = message({ id: uniqueId("unreachable") });
    await stub("/__script", { [body.id]: ["network"] });

    const { result, delays } = await deliver([entry(body)], { queueUrl: STUB_DLQ });

    expect(result.explicitAcks).toEqual([]);
    expect(delays["dq-0"]).toBeGreaterThanOrEqual(30);
    expect(delays["dq-0"]).toBeLessThanOrEqual(60);
  });

  it.each([
    [500, "InternalError"],
    [403, "AccessDenied"],
    [400, "QueueDoesNotExist"],
  ])("retries on SQS %s %s (a fix in AWS must find the letter still there)", async (status, code) => {
    const body = message({ id: uniqueId(`sqs-${status}`) });
    await stub("/__script", { [body.id]: [{ status, code }] });

    const { result, delays } = await deliver([entry(body)], { queueUrl: STUB_DLQ });

    expect(result.explicitAcks).toEqual([]);
    expect(delays["dq-0"]).toBeGreaterThan(0);
  });

  it("backs off from a minute to an hour with the attempt count", async () => {
    const body = message({ id: uniqueId("backoff") });
    await stub("/__script", { [body.id]: [503, 503] });

    const early = (await deliver([entry(body)], { queueUrl: STUB_DLQ, attempts: 1 })).delays["dq-0"];
    const late = (await deliver([entry(body)], { queueUrl: STUB_DLQ, attempts: 9 })).delays["dq-0"];

    expect(early).toBeLessThanOrEqual(60);
    expect(late).toBeGreaterThanOrEqual(1800);
    expect(late).toBeLessThanOrEqual(3600);
  });

  it("acks only what SQS accepted in a batch with mixed outcomes", async () => {
    const bodies = ["ok-a", "throttled", "ok-b", "down"].map((name) => message({ id: uniqueId(name) }));
    await stub("/__script", { [bodies[1].id]: [{ status: 400, code: "RequestThrottled" }], [bodies[3].id]: ["network"] });

    const { result, delays } = await deliver(bodies.map((body) => entry(body)), { queueUrl: STUB_DLQ });

    expect([...result.explicitAcks].sort()).toEqual(["dq-0", "dq-2"]);
    expect(Object.keys(delays).sort()).toEqual(["dq-1", "dq-3"]);
    const answered = await stub("/__requests");
    expect(answered.filter((r) => r.answer === 200).map((r) => r.id).sort()).toEqual([bodies[0].id, bodies[2].id].sort());
  });

  it("re-enqueues a letter on the DLQ queue after 10 failed deliveries, so max_retries never deletes it", async () => {
    const body = message({ id: uniqueId("requeued") });
    const letter = entry(body);
    await stub("/__script", { [body.id]: [503] });

    const { result, delays, dlq } = await deliver([letter], { queueUrl: STUB_DLQ, attempts: 10 });

    expect(result.explicitAcks).toEqual(["dq-0"]);
    expect(delays).toEqual({});
    expect(dlq.sent).toEqual([{ body: letter, options: { contentType: "json", delaySeconds: 3600 } }]);
  });

  it("re-enqueues a body JSON cannot hold as a structured clone, unchanged", async () => {
    const body = { id: uniqueId("requeued-bigint"), amount: 7n };
    await stub("/__script", { [body.id]: [503] });

    const { result, dlq } = await deliver([body], { queueUrl: STUB_DLQ, attempts: 10 });

    expect(result.explicitAcks).toEqual(["dq-0"]);
    expect(dlq.sent).toEqual([{ body, options: { contentType: "v8", delaySeconds: 3600 } }]);
  });

  it("retries instead when re-enqueueing fails too", async () => {
    const body = message({ id: uniqueId("requeue-fails") });
    await stub("/__script", { [body.id]: [503] });

    const { result, delays } = await deliver([entry(body)], { queueUrl: STUB_DLQ, attempts: 10, dlq: recordingQueue({ fail: true }) });

    expect(result.explicitAcks).toEqual([]);
    expect(delays["dq-0"]).toBeGreaterThan(0);
  });

  it("retries the whole batch, for an hour, when a binding is missing", async () => {
    const body = message({ id: uniqueId("unconfigured") });

    const { result, retryAllOptions } = await deliver([entry(body)], { bindings: { EMAIL_DEAD_LETTER_QUEUE_URL: "" } });

    expect(result.retryBatch.retry).toBe(true);
    expect(retryAllOptions).toEqual({ delaySeconds: 3600 });
    expect(result.explicitAcks).toEqual([]);
  });
});
