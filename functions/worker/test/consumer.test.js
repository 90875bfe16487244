import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it, vi } from "vitest";
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
async function deliver(bodies, { attempts = 1, timestamp = new Date(), sesEndpoint = STUB, dlq = recordingQueue(), queue = recordingQueue(), bindings = {}, skipWaits = false } = {}) {
  const messages = bodies.map((body, i) => ({ id: `qm-${i}`, timestamp, attempts, body }));
  const batch = createMessageBatch("email-queue", messages);
  const spy = spyOnRetries(batch);
  const ctx = createExecutionContext();
  const handle = () => worker.queue(spy.batch, { ...env, SES_ENDPOINT: sesEndpoint, EMAIL_DLQ: dlq, EMAIL_QUEUE: queue, ...bindings }, ctx);
  await (skipWaits ? skippingWaits(handle) : handle());
  const result = await getQueueResult(batch, ctx);
  // getQueueResult reports which messages were retried but not their delays: the spy does.
  result.retryMessages = result.retryMessages.map((entry) => ({ ...entry, delaySeconds: spy.delays.get(entry.msgId) }));
  result.retryBatch = { ...result.retryBatch, delaySeconds: spy.retryAllOptions?.delaySeconds };
  return { result, dlq, queue };
}

/** Await `run()` with setTimeout faked and advanced until it settles: the pacer's waits pass at once. */
async function skippingWaits(run) {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
  try {
    let settled = false;
    const pending = run().finally(() => {
      settled = true;
    });
    while (!settled) {
      await vi.advanceTimersByTimeAsync(60_000);
      await scheduler.wait(5); // real time, for the guard's and SES's I/O
    }
    return await pending;
  } finally {
    vi.useRealTimers();
  }
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

/** Collect the Worker's JSON log lines until `restore()`. */
function captureLogs() {
  const lines = [];
  const originals = { log: console.log, warn: console.warn, error: console.error };
  for (const name of Object.keys(originals)) {
    console[name] = (line) => {
      try {
        lines.push(JSON.parse(line));
      } catch {
        lines.push({ raw: String(line) });
      }
    };
  }
  return { lines, restore: () => Object.assign(console, originals) };
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

    const { result } = await deliver([body], { timestamp: new Date(1_700_000_000_123) });

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
        { Name: "queued_at", Value: "1700000000123" },
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

  it("requeues a throttled (429) message as a delayed copy with a hop count, acks the original (no retry spent), and the copy sends", async () => {
    const id = uniqueId("throttled");
    await stub("/__script", { [id]: [429, 200] });

    const first = await deliver([message({ id })], { timestamp: new Date(1_700_000_000_000) });

    expect(first.result.explicitAcks).toEqual(["qm-0"]);
    expect(first.result.retryMessages).toEqual([]);
    expect(first.dlq.sent).toEqual([]);
    expect(first.queue.sent).toHaveLength(1);
    const copy = first.queue.sent[0];
    expect(copy.body).toEqual({ serverless_mail_requeue: { hops: 1, queued_at: 1_700_000_000_000 }, message: message({ id }) });
    expect(copy.options.contentType).toBe("json");
    expect(copy.options.delaySeconds).toBeGreaterThanOrEqual(1);

    // The copy arrives as a new message: attempts start again at 1.
    const second = await deliver([copy.body]);

    expect(second.result.explicitAcks).toEqual(["qm-0"]);
    expect(second.result.retryMessages).toEqual([]);
    expect(second.queue.sent).toEqual([]);
    expect((await stub(`/__requests?id=${id}`)).map((entry) => entry.answer)).toEqual([429, 200]);
  });

  it.each([
    ["429 TooManyRequestsException", { status: 429 }],
    ["400 Throttling: Maximum sending rate exceeded", { status: 400, code: "Throttling", message: "Maximum sending rate exceeded." }],
  ])("backs a throttled message (%s) off exponentially in its hops, with jitter, up to 5 minutes", async (_name, answer) => {
    const id = uniqueId("throttle-hops");
    await stub("/__script", { [id]: [answer, answer, answer] });

    const delays = [];
    for (const hops of [0, 4, 12]) {
      const body = hops === 0 ? message({ id }) : { serverless_mail_requeue: { hops }, message: message({ id }) };
      const { queue, result } = await deliver([body], { attempts: 3 });
      expect(result.retryMessages).toEqual([]);
      expect(queue.sent[0].body.serverless_mail_requeue.hops).toBe(hops + 1);
      delays.push(queue.sent[0].options.delaySeconds);
    }

    expect(delays[0]).toBe(1);
    expect(delays[1]).toBeGreaterThanOrEqual(8);
    expect(delays[1]).toBeLessThanOrEqual(16);
    expect(delays[2]).toBeGreaterThanOrEqual(150);
    expect(delays[2]).toBeLessThanOrEqual(300);
  });

  it("dead-letters a message throttled more than 200 times, with the reason", async () => {
    const id = uniqueId("throttled-forever");
    await stub("/__script", { [id]: [429] });

    const { result, dlq, queue } = await deliver([{ serverless_mail_requeue: { hops: 200 }, message: message({ id }) }]);

    expect(result.explicitAcks).toEqual(["qm-0"]);
    expect(queue.sent).toEqual([]);
    expect(dlq.sent).toHaveLength(1);
    expect(dlq.sent[0].body).toMatchObject({ error_class: "TooManyRequestsException", message_id: id, message: message({ id }) });
    expect(dlq.sent[0].body.reason).toMatch(/^throttled 201 times: SES 429/);
  });

  it("holds a batch for the daily quota: requeued 30 to 60 minutes later, reported, never dead-lettered, the rest not sent to SES", async () => {
    const quota = { status: 400, code: "Throttling", message: "Daily message quota exceeded." };
    const ids = Array.from({ length: 8 }, () => uniqueId("quota"));
    await stub("/__script", Object.fromEntries(ids.map((id) => [id, [quota]])));
    const logged = captureLogs();

    const { result, dlq, queue } = await deliver(ids.map((id) => message({ id })), { attempts: 6 }).finally(logged.restore);

    expect([...result.explicitAcks].sort()).toEqual(ids.map((_, i) => `qm-${i}`));
    expect(result.retryMessages).toEqual([]);
    expect(dlq.sent).toEqual([]);
    expect(queue.sent.map((entry) => entry.body.message.id).sort()).toEqual([...ids].sort());
    for (const entry of queue.sent) {
      expect(entry.body.serverless_mail_requeue.hops).toBe(1);
      expect(entry.options.delaySeconds).toBeGreaterThanOrEqual(1800);
      expect(entry.options.delaySeconds).toBeLessThanOrEqual(3600);
    }
    // Six were in flight when the first refusal came back; the other two never reached SES.
    const calls = (await stub("/__requests")).filter((entry) => ids.includes(entry.id));
    expect(calls).toHaveLength(6);
    const reports = logged.lines.filter((line) => line.event === "daily_quota_exceeded");
    expect(reports).toHaveLength(6);
    expect(reports[0]).toMatchObject({ level: "error", outcome: "requeued", error_class: "Throttling", hops: 1 });
    expect(logged.lines.filter((line) => line.event === "held_for_quota")).toHaveLength(2);
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

  it("dead-letters a transient failure on its last delivery (attempts > EMAIL_MAX_RETRIES) with the reason, instead of a silent platform move", async () => {
    const id = uniqueId("last-delivery");
    await stub("/__script", { [id]: [{ status: 503, code: "ServiceUnavailable" }] });

    const { result, dlq } = await deliver([message({ id })], { attempts: 6 });

    expect(result.explicitAcks).toEqual(["qm-0"]);
    expect(result.retryMessages).toEqual([]);
    expect(dlq.sent).toHaveLength(1);
    expect(dlq.sent[0].body).toMatchObject({ error_class: "ServiceUnavailable", status: 503, attempts: 6, message_id: id });
    expect(dlq.sent[0].body.reason).toBe("SES 503 ServiceUnavailable: stubbed ServiceUnavailable (attempt 6, the last)");
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
    const late = retried((await deliver([message({ id })], { attempts: 6, bindings: { EMAIL_MAX_RETRIES: "10" } })).result)["qm-0"];

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

    const { result, dlq, queue } = await deliver(bodies);

    expect(result.ackAll).toBe(false);
    expect(result.retryBatch.retry).toBe(false);
    expect([...result.explicitAcks].sort()).toEqual(["qm-0", "qm-1", "qm-2", "qm-3", "qm-4"]);
    expect(result.retryMessages).toEqual([]);
    expect(queue.sent.map((entry) => entry.body.message.id)).toEqual([ids[1]]);
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

describe("the enqueue time as the SES tag `queued_at`", () => {
  const ORIGINAL = 1_700_000_000_000;
  const LATER = new Date(ORIGINAL + 5 * 60 * 1000);
  const DAY_MS = 24 * 60 * 60 * 1000;
  const tagOf = (request, name) => request.EmailTags.find((t) => t.Name === name)?.Value;
  const queuedAtOf = async (id) => (await stub(`/__requests?id=${id}`)).map((entry) => tagOf(entry.request, "queued_at"));

  it("tags a send with the queue message's own timestamp", async () => {
    const id = uniqueId("queued-at");

    await deliver([message({ id })], { timestamp: new Date(ORIGINAL) });

    expect(await queuedAtOf(id)).toEqual([String(ORIGINAL)]);
  });

  it.each([
    ["throttled", [429, 200]],
    ["held for the daily quota", [{ status: 400, code: "Throttling", message: "Daily message quota exceeded." }, 200]],
  ])("keeps the original's time on a copy requeued when %s, and the copy's send tags it", async (_name, answers) => {
    const id = uniqueId("queued-at-requeued");
    await stub("/__script", { [id]: answers });

    const first = await deliver([message({ id })], { timestamp: new Date(ORIGINAL) });
    const [copy] = first.queue.sent;
    await deliver([copy.body], { timestamp: LATER });

    expect(copy.body.serverless_mail_requeue.queued_at).toBe(ORIGINAL);
    expect(await queuedAtOf(id)).toEqual([String(ORIGINAL), String(ORIGINAL)]);
  });

  it("keeps the original's time on a copy paced to a later turn, and the copy's send tags it", async () => {
    // 0.01 recipients/s: the second message's turn is 100 s away, past the 30 s a send may wait.
    const ids = [uniqueId("queued-at-paced"), uniqueId("queued-at-paced")];
    const bindings = { EMAIL_MAX_SEND_RATE: "0.01" };

    const first = await deliver(
      ids.map((id) => message({ id })),
      { timestamp: new Date(ORIGINAL), bindings, skipWaits: true },
    );
    const [copy] = first.queue.sent;
    await deliver([copy.body], { timestamp: LATER, bindings, skipWaits: true });

    expect(first.queue.sent).toHaveLength(1);
    expect(copy.body.serverless_mail_requeue).toEqual({ hops: 0, queued_at: ORIGINAL });
    for (const id of ids) expect(await queuedAtOf(id)).toEqual([String(ORIGINAL)]);
  });

  it.each([
    ["later than the copy's own timestamp", LATER.getTime() + 1],
    ["older than 14 days before it", LATER.getTime() - 15 * DAY_MS],
    ["not a number", String(ORIGINAL)],
    ["a fraction", ORIGINAL + 0.5],
    ["absent", undefined],
  ])("tags a copy's own timestamp when the envelope's time is %s", async (_name, claimed) => {
    const id = uniqueId("queued-at-forged");

    await deliver([{ serverless_mail_requeue: { hops: 1, queued_at: claimed }, message: message({ id }) }], { timestamp: LATER });

    expect(await queuedAtOf(id)).toEqual([String(LATER.getTime())]);
  });

  it("believes an envelope's time up to 14 days before the copy's own", async () => {
    const id = uniqueId("queued-at-plausible");
    const claimed = LATER.getTime() - 14 * DAY_MS;

    await deliver([{ serverless_mail_requeue: { hops: 1, queued_at: claimed }, message: message({ id }) }], { timestamp: LATER });

    expect(await queuedAtOf(id)).toEqual([String(claimed)]);
  });

  it("treats a producer's retry with a later timestamp as a duplicate, not a reused id", async () => {
    const id = uniqueId("queued-at-retry");

    await deliver([message({ id })], { timestamp: new Date(ORIGINAL) });
    const retry = await deliver([message({ id })], { timestamp: LATER });

    expect(retry.result.explicitAcks).toEqual(["qm-0"]);
    expect(retry.dlq.sent).toEqual([]);
    expect(await queuedAtOf(id)).toEqual([String(ORIGINAL)]);
  });

  it.each([["message_id"], ["queued_at"]])("dead-letters a message tagged with the reserved name %s, naming it, without calling SES", async (name) => {
    const id = uniqueId("reserved-tag");

    const { dlq } = await deliver([message({ id, tags: { [name]: "1700000000000" } })]);

    expect(dlq.sent).toHaveLength(1);
    expect(dlq.sent[0].body.error_class).toBe("InvalidMessage");
    expect(dlq.sent[0].body.reason).toBe(
      `invalid message: /tags/${name}: '${name}' is a reserved tag name: the sender sets message_id and queued_at on every message itself; rename the tag [reserved-tag]`,
    );
    expect(await stub(`/__requests?id=${id}`)).toEqual([]);
  });
});
