import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import worker from "../dist/worker.js";
import examples from "../../schema/examples.json";
import { message, recordingQueue, uniqueId } from "./support/fakes.js";

const STUB = env.SES_STUB_URL;

async function stub(path, body) {
  const response = await fetch(`${STUB}${path}`, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) });
  return response.json();
}

/**
 * Deliver `bodies` as one queue batch to the Worker's `queue` handler.
 * @returns the ack/retry result, the DLQ recorder and the messages' queue ids
 */
async function deliver(bodies, { attempts = 1, sesEndpoint = STUB, dlq = recordingQueue(), bindings = {} } = {}) {
  const messages = bodies.map((body, i) => ({ id: `qm-${i}`, timestamp: new Date(), attempts, body }));
  const batch = createMessageBatch("email-queue", messages);
  const spy = spyOnRetries(batch);
  const ctx = createExecutionContext();
  await worker.queue(spy.batch, { ...env, SES_ENDPOINT: sesEndpoint, EMAIL_DLQ: dlq, ...bindings }, ctx);
  const result = await getQueueResult(batch, ctx);
  // getQueueResult reports which messages were retried but not their delays: the spy does.
  result.retryMessages = result.retryMessages.map((entry) => ({ ...entry, delaySeconds: spy.delays.get(entry.msgId) }));
  result.retryBatch = { ...result.retryBatch, delaySeconds: spy.retryAllOptions?.delaySeconds };
  return { result, dlq };
}

/** Wrap a MessageBatch so every retry's options are recorded, then passed through. */
function spyOnRetries(batch) {
  const spy = { delays: new Map(), retryAllOptions: null };
  const messages = batch.messages.map((msg) => ({
    id: msg.id,
    timestamp: msg.timestamp,
    body: msg.body,
    attempts: msg.attempts,
    ack: () => msg.ack(),
    retry: (options) => {
      spy.delays.set(msg.id, options?.delaySeconds);
      msg.retry(options);
    },
  }));
  spy.batch = {
    queue: batch.queue,
    messages,
    ackAll: () => batch.ackAll(),
    retryAll: (options) => {
      spy.retryAllOptions = options;
      batch.retryAll(options);
    },
  };
  return spy;
}

const retried = (result) => Object.fromEntries(result.retryMessages.map((entry) => [entry.msgId, entry.delaySeconds]));

beforeEach(async () => {
  await stub("/__reset", { latencyMs: 0 });
});

describe("against moto's SES v2", () => {
  it("sends a message that moto records with the right from, to and subject, and acks it", async () => {
    const id = uniqueId("moto-happy");
    const body = message({ id, to: ["ada@customer.test"], cc: "cc@customer.test", subject: `Receipt ${id}` });

    const { result, dlq } = await deliver([body], { sesEndpoint: env.MOTO_URL });

    expect(result.explicitAcks).toEqual(["qm-0"]);
    expect(result.retryMessages).toEqual([]);
    expect(dlq.sent).toEqual([]);
    const data = await (await fetch(`${env.MOTO_URL}/moto-api/data.json`)).json();
    const sent = data.ses.Message.filter((mail) => mail.subject === `Receipt ${id}`);
    expect(sent).toHaveLength(1);
    expect(sent[0].source).toBe(env.EMAIL_DEFAULT_FROM);
    expect(sent[0].destinations.ToAddresses).toEqual(["ada@customer.test"]);
    expect(sent[0].destinations.CcAddresses).toEqual(["cc@customer.test"]);
  });

  it("dead-letters a message SES rejects (sender on an unverified subdomain) with the reason, and does not retry it", async () => {
    const id = uniqueId("moto-rejected");
    const body = message({ id, from: "x@unverified.mail.example.com" });

    const { result, dlq } = await deliver([body], { sesEndpoint: env.MOTO_URL });

    expect(result.explicitAcks).toEqual(["qm-0"]);
    expect(result.retryMessages).toEqual([]);
    expect(dlq.sent).toHaveLength(1);
    const entry = dlq.sent[0].body;
    expect(entry.error_class).toBe("MessageRejected");
    expect(entry.reason).toMatch(/^SES 400 MessageRejected/);
    expect(entry.message).toEqual(body);
    expect(entry.failed_at).toMatch(/^\d{4}-\d\d-\d\dT/);
  });
});

describe("against the scriptable SES stub", () => {
  it("builds the SES v2 request from the message, signed for ses in the stack's region", async () => {
    const id = uniqueId("shape");
    const body = message({ id, cc: ["c@customer.test"], bcc: "b@customer.test", reply_to: "r@mail.example.com", html: "<p>Hi</p>", headers: { "X-Ref": "1" }, tags: { category: "receipt" } });

    const { result } = await deliver([body]);

    expect(result.explicitAcks).toEqual(["qm-0"]);
    const [recorded] = await stub(`/__requests?id=${id}`);
    expect(recorded.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=testing\/\d{8}\/eu-west-1\/ses\/aws4_request, SignedHeaders=host;x-amz-date, Signature=[0-9a-f]{64}$/);
    expect(recorded.request).toEqual({
      FromEmailAddress: env.EMAIL_DEFAULT_FROM,
      Destination: { ToAddresses: ["ada@customer.test"], CcAddresses: ["c@customer.test"], BccAddresses: ["b@customer.test"] },
      ReplyToAddresses: ["r@mail.example.com"],
      Content: {
        Simple: {
          Subject: { Data: "Your receipt", Charset: "UTF-8" },
          Body: { Text: { Data: "Thanks!", Charset: "UTF-8" }, Html: { Data: "<p>Hi</p>", Charset: "UTF-8" } },
          Headers: [{ Name: "X-Ref", Value: "1" }],
        },
      },
      EmailTags: [
        { Name: "category", Value: "receipt" },
        { Name: "message_id", Value: id },
      ],
      ConfigurationSetName: env.EMAIL_CONFIGURATION_SET,
    });
  });

  it("tags an id outside SES's tag alphabet reversibly (`_` + base64url)", async () => {
    const id = `odd:id/${uniqueId("x")}`;
    await deliver([message({ id })]);

    const all = await stub("/__requests");
    const tag = all.at(-1).request.EmailTags.find((t) => t.Name === "message_id").Value;
    expect(tag).toMatch(/^_[A-Za-z0-9_-]+$/);
    expect(new TextDecoder().decode(Uint8Array.from(atob(tag.slice(1).replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0)))).toBe(id);
  });

  it("retries a throttled (429) message with a delay, then sends and acks it on the next delivery", async () => {
    const id = uniqueId("throttled");
    await stub("/__script", { [id]: [429, 200] });

    const first = await deliver([message({ id })]);

    expect(first.result.explicitAcks).toEqual([]);
    expect(retried(first.result)["qm-0"]).toBeGreaterThan(0);
    expect(first.dlq.sent).toEqual([]);

    const second = await deliver([message({ id })], { attempts: 2 });

    expect(second.result.explicitAcks).toEqual(["qm-0"]);
    expect(second.result.retryMessages).toEqual([]);
    expect((await stub(`/__requests?id=${id}`)).map((entry) => entry.answer)).toEqual([429, 200]);
  });

  it.each([
    [500, "InternalFailure"],
    [503, "ServiceUnavailable"],
    [400, "LimitExceededException"],
  ])("retries a %s %s", async (status, code) => {
    const id = uniqueId(`transient-${status}`);
    await stub("/__script", { [id]: [{ status, code }] });

    const { result, dlq } = await deliver([message({ id })]);

    expect(result.explicitAcks).toEqual([]);
    expect(retried(result)["qm-0"]).toBeGreaterThan(0);
    expect(dlq.sent).toEqual([]);
  });

  it("retries a message whose connection dropped (network error)", async () => {
    const id = uniqueId("network");
    await stub("/__script", { [id]: ["network"] });

    const { result, dlq } = await deliver([message({ id })]);

    expect(result.explicitAcks).toEqual([]);
    expect(retried(result)["qm-0"]).toBeGreaterThan(0);
    expect(dlq.sent).toEqual([]);
  });

  it("backs off exponentially with the attempt count", async () => {
    const id = uniqueId("backoff");
    await stub("/__script", { [id]: [500, 500] });

    const early = retried((await deliver([message({ id })], { attempts: 1 })).result)["qm-0"];
    const late = retried((await deliver([message({ id })], { attempts: 6 })).result)["qm-0"];

    expect(early).toBeGreaterThanOrEqual(3);
    expect(early).toBeLessThanOrEqual(5);
    expect(late).toBeGreaterThanOrEqual(80);
    expect(late).toBeLessThanOrEqual(160);
  });

  it.each([
    [400, "MessageRejected"],
    [400, "MailFromDomainNotVerifiedException"],
    [400, "BadRequestException"],
    [404, "NotFoundException"],
    [400, "AccountSuspendedException"],
    [400, "SendingPausedException"],
    [403, "AccessDeniedException"],
  ])("dead-letters a permanent %s %s with its reason and acks it", async (status, code) => {
    const id = uniqueId(`permanent-${code}`);
    await stub("/__script", { [id]: [{ status, code }] });

    const { result, dlq } = await deliver([message({ id })]);

    expect(result.explicitAcks).toEqual(["qm-0"]);
    expect(result.retryMessages).toEqual([]);
    expect(dlq.sent).toHaveLength(1);
    expect(dlq.sent[0].options).toEqual({ contentType: "json" });
    expect(dlq.sent[0].body).toMatchObject({ error_class: code, status, reason: `SES ${status} ${code}: stubbed ${code}`, message_id: id, message: message({ id }) });
  });

  it.each([
    ["a body that is not an object", "just a string"],
    ["an invalid vector (CR LF in subject)", examples.cases.find((c) => c.name === "CR LF in subject").message],
    ["a sender on another domain", message({ from: "ceo@evil.test" })],
  ])("dead-letters %s without calling SES", async (_case, body) => {
    const before = (await stub("/__stats")).requests;

    const { result, dlq } = await deliver([body]);

    expect(result.explicitAcks).toEqual(["qm-0"]);
    expect(dlq.sent).toHaveLength(1);
    expect(dlq.sent[0].body.error_class).toBe("InvalidMessage");
    expect(dlq.sent[0].body.reason).toMatch(/^invalid message: /);
    expect(dlq.sent[0].body.message).toEqual(body);
    expect((await stub("/__stats")).requests).toBe(before);
  });

  it("retries instead of acking when the DLQ itself refuses the entry", async () => {
    const id = uniqueId("dlq-down");
    await stub("/__script", { [id]: [{ status: 400, code: "MessageRejected" }] });

    const { result } = await deliver([message({ id })], { dlq: recordingQueue({ fail: true }) });

    expect(result.explicitAcks).toEqual([]);
    expect(retried(result)["qm-0"]).toBeGreaterThan(0);
  });

  it("settles each message of a mixed batch on its own: batch-mates still send", async () => {
    const ids = ["ok-a", "throttled", "rejected", "ok-b"].map((name) => uniqueId(name));
    await stub("/__script", { [ids[1]]: [429], [ids[2]]: [{ status: 400, code: "MessageRejected" }] });
    const bodies = [message({ id: ids[0] }), message({ id: ids[1] }), message({ id: ids[2] }), { id: "malformed" }, message({ id: ids[3] })];

    const { result, dlq } = await deliver(bodies);

    expect(result.ackAll).toBe(false);
    expect(result.retryBatch.retry).toBe(false);
    expect([...result.explicitAcks].sort()).toEqual(["qm-0", "qm-2", "qm-3", "qm-4"]);
    expect(Object.keys(retried(result))).toEqual(["qm-1"]);
    expect(dlq.sent.map((entry) => entry.body.error_class).sort()).toEqual(["InvalidMessage", "MessageRejected"]);
    const sent = (await stub("/__requests")).filter((entry) => entry.answer === 200).map((entry) => entry.id);
    expect(sent).toEqual(expect.arrayContaining([ids[0], ids[3]]));
  });

  it("sends a batch concurrently, never more than 6 at once", async () => {
    await stub("/__reset", { latencyMs: 100 });
    const bodies = Array.from({ length: 14 }, () => message({ id: uniqueId("concurrent") }));

    const started = Date.now();
    const { result } = await deliver(bodies);
    const elapsed = Date.now() - started;

    expect(result.explicitAcks).toHaveLength(14);
    const { maxInFlight } = await stub("/__stats");
    expect(maxInFlight).toBe(6);
    expect(elapsed).toBeLessThan(14 * 100);
  });

  it("retries the whole batch, naming what is missing, when the Worker lacks bindings", async () => {
    const { result, dlq } = await deliver([message({ id: uniqueId("unconfigured") })], { bindings: { AWS_SECRET_ACCESS_KEY: undefined } });

    expect(result.retryBatch.retry).toBe(true);
    expect(result.retryBatch.delaySeconds).toBeGreaterThan(0);
    expect(result.explicitAcks).toEqual([]);
    expect(dlq.sent).toEqual([]);
  });
});
