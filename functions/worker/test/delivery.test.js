// Issue 11 on the Worker path, in workerd with the planned bindings: the duplicate guard
// (a Durable Object per id), pacing to EMAIL_MAX_SEND_RATE, and the pacer's schedule.
import { createExecutionContext, createMessageBatch, getQueueResult, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import worker from "../dist/worker.js";
import { createPacer, MAX_PACING_WAIT_MS } from "../src/pacer.js";
import { canonicalJson, GUARD_SHARDS, GUARD_WINDOW_MS, guardFor } from "../src/guard.js";
import { message, recordingQueue, uniqueId } from "./support/fakes.js";

const STUB = env.SES_STUB_URL;

async function stub(path, body) {
  const response = await fetch(`${STUB}${path}`, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) });
  return response.json();
}

/** One queue batch through the bundle's `queue` handler, with recording DLQ and queue producers. */
async function deliver(bodies, { attempts = 1, bindings = {} } = {}) {
  const dlq = recordingQueue();
  const queue = recordingQueue();
  const batch = createMessageBatch(
    "email-queue",
    bodies.map((body, i) => ({ id: `qm-${i}`, timestamp: new Date(), attempts, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, EMAIL_DLQ: dlq, EMAIL_QUEUE: queue, ...bindings }, ctx);
  const result = await getQueueResult(batch, ctx);
  return { result, dlq, queue };
}

const sentTo = async (id) => (await stub(`/__requests?id=${encodeURIComponent(id)}`)).filter((entry) => entry.answer === 200);

beforeEach(async () => {
  await stub("/__reset", { latencyMs: 0 });
});

describe("the duplicate guard on `id` (a Durable Object per id)", () => {
  it("sends a message delivered twice, in two batches, once: the second delivery is acked without a send", async () => {
    const id = uniqueId("dup-batches");

    const first = await deliver([message({ id })]);
    const second = await deliver([message({ id })], { attempts: 2 });

    expect(first.result.explicitAcks).toEqual(["qm-0"]);
    expect(second.result.explicitAcks).toEqual(["qm-0"]);
    expect(second.dlq.sent).toEqual([]);
    expect(await sentTo(id)).toHaveLength(1);
  });

  it("sends the same message enqueued twice into one batch once: the second waits out the first's claim, then is a duplicate", async () => {
    const id = uniqueId("dup-same-batch");
    await stub("/__reset", { latencyMs: 50 });

    const { result } = await deliver([message({ id }), message({ id })]);

    expect(result.explicitAcks).toHaveLength(1);
    expect(result.retryMessages).toHaveLength(1);
    expect(result.retryMessages[0].msgId).toBe(result.explicitAcks[0] === "qm-0" ? "qm-1" : "qm-0");
    const again = await deliver([message({ id })], { attempts: 2 });
    expect(again.result.explicitAcks).toEqual(["qm-0"]);
    expect(await sentTo(id)).toHaveLength(1);
  });

  it("dead-letters an id reused for a different message (another recipient) with the reason, and sends only the first", async () => {
    const id = uniqueId("reused");

    await deliver([message({ id, to: "ada@customer.test" })]);
    const { result, dlq } = await deliver([message({ id, to: "eve@customer.test" })]);

    expect(result.explicitAcks).toEqual(["qm-0"]);
    expect(dlq.sent).toHaveLength(1);
    expect(dlq.sent[0].body).toMatchObject({ error_class: "IdempotencyKeyReused", message_id: id, message: message({ id, to: "eve@customer.test" }) });
    expect(dlq.sent[0].body.reason).toMatch(/^id reused for a different message: /);
    const sent = await sentTo(id);
    expect(sent).toHaveLength(1);
    expect(sent[0].request.Destination.ToAddresses).toEqual(["ada@customer.test"]);
  });

  it("treats the same message with its keys in another order as the same message", async () => {
    const id = uniqueId("reordered");
    const reordered = { text: "Thanks!", subject: "Your receipt", to: "ada@customer.test", id };

    await deliver([message({ id })]);
    const { result, dlq } = await deliver([reordered]);

    expect(result.explicitAcks).toEqual(["qm-0"]);
    expect(dlq.sent).toEqual([]);
    expect(await sentTo(id)).toHaveLength(1);
    expect(canonicalJson(reordered)).toBe(canonicalJson(message({ id })));
  });

  it("frees the id when the send failed permanently, so the corrected message can use it", async () => {
    const id = uniqueId("freed");
    await stub("/__script", { [id]: [{ status: 400, code: "MessageRejected" }] });

    const failed = await deliver([message({ id, subject: "first try" })]);
    const fixed = await deliver([message({ id, subject: "fixed" })]);

    expect(failed.dlq.sent[0].body.error_class).toBe("MessageRejected");
    expect(fixed.dlq.sent).toEqual([]);
    expect((await sentTo(id)).map((entry) => entry.request.Content.Simple.Subject.Data)).toEqual(["fixed"]);
  });

  it("a throttled copy and a redelivered original of one id send once between them", async () => {
    const id = uniqueId("copy-and-original");
    await stub("/__script", { [id]: [429] });

    const first = await deliver([message({ id })]);
    const copy = first.queue.sent[0].body;
    // The original comes back as well (its ack was lost), beside the copy.
    const { result } = await deliver([copy, message({ id })], { attempts: 2 });

    expect(result.explicitAcks.length + result.retryMessages.length).toBe(2);
    await deliver([message({ id })], { attempts: 3 });
    expect(await sentTo(id)).toHaveLength(1);
  });
});

describe("requeued copies", () => {
  it("retries the original instead of acking it when the throttled copy cannot be enqueued", async () => {
    const id = uniqueId("requeue-down");
    await stub("/__script", { [id]: [429] });

    const { result, dlq } = await deliver([message({ id })], { bindings: { EMAIL_QUEUE: recordingQueue({ fail: true }) } });

    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages.map((entry) => entry.msgId)).toEqual(["qm-0"]);
    expect(dlq.sent).toEqual([]);
  });

  it("dead-letters an invalid message inside a requeue envelope with the message itself, not the envelope", async () => {
    const body = { serverless_mail_requeue: { hops: 2 }, message: { id: uniqueId("bad-copy"), to: "ada@customer.test" } };

    const { result, dlq } = await deliver([body]);

    expect(result.explicitAcks).toEqual(["qm-0"]);
    expect(dlq.sent[0].body).toMatchObject({ error_class: "InvalidMessage", message: body.message, message_id: body.message.id });
  });
});

describe("the guard's shards and window", () => {
  it("keeps an id in one of 32 shards, named by the FNV-1a hash of the id", () => {
    const named = [];
    const namespace = { idFromName: (name) => (named.push(name), name), get: (id) => id };
    const ids = Array.from({ length: 400 }, (_, i) => `order-${i}`);
    for (const id of ids) guardFor({ EMAIL_ID_GUARD: namespace }, id);

    expect(GUARD_SHARDS).toBe(32);
    expect(new Set(named).size).toBe(32);
    // FNV-1a 32 of "a" is 0xe40c292c: shard 0xe40c292c % 32 = 12. Pinned: moving ids
    // between shards would forget the last 24 hours.
    guardFor({ EMAIL_ID_GUARD: namespace }, "a");
    expect(named.at(-1)).toBe("ids-12");
  });

  it("sweeps records older than the window with its alarm, keeps the rest and wakes for the earliest", async () => {
    const keep = uniqueId("kept");
    await deliver([message({ id: keep })]);
    const stub = guardFor(env, keep);
    const now = Date.now();
    await runInDurableObject(stub, async (_instance, state) => {
      await state.storage.put("expired-id", { fingerprint: "x", state: "sent", sentAt: now - GUARD_WINDOW_MS - 1000, leaseUntil: 0, expiresAt: now - 1000 });
    });

    expect(await runDurableObjectAlarm(stub)).toBe(true);

    await runInDurableObject(stub, async (_instance, state) => {
      expect(await state.storage.get("expired-id")).toBeUndefined();
      const kept = await state.storage.get(keep);
      expect(kept.state).toBe("sent");
      expect(kept.expiresAt).toBeGreaterThan(now + GUARD_WINDOW_MS - 60_000);
      expect(await state.storage.getAlarm()).toBeLessThanOrEqual(kept.expiresAt);
      expect(await state.storage.getAlarm()).toBeGreaterThan(now);
    });
  });
});

describe("pacing to EMAIL_MAX_SEND_RATE (recipients per second, per invocation)", () => {
  it("spaces the sends of a batch by their recipients and keeps the invocation until its share has passed", async () => {
    const rate = 40; // recipients per second: 25 ms each
    const bodies = [
      message({ id: uniqueId("paced") }),
      message({ id: uniqueId("paced"), to: ["a@customer.test", "b@customer.test"], cc: "c@customer.test", bcc: "d@customer.test" }),
      ...Array.from({ length: 6 }, () => message({ id: uniqueId("paced") })),
    ];
    const recipients = new Map(bodies.map((body, i) => [body.id, i === 1 ? 4 : 1]));

    const started = Date.now();
    const { result } = await deliver(bodies, { bindings: { EMAIL_MAX_SEND_RATE: String(rate) } });
    const finished = Date.now();

    expect(result.explicitAcks).toHaveLength(8);
    const ids = bodies.map((body) => body.id);
    const calls = (await stub("/__requests")).filter((entry) => ids.includes(entry.id)).sort((a, b) => a.at - b.at);
    expect(calls.map((entry) => entry.id).sort()).toEqual([...ids].sort());
    // Turns go in the order the guard's claims come back, not the batch's. Each send may
    // not start before the recipients ahead of it have had their 1/rate each (the stub
    // stamps arrival; 10 ms of slack for the loopback hop).
    let ahead = 0;
    for (const call of calls) {
      expect(call.at - calls[0].at).toBeGreaterThanOrEqual((ahead * 1000) / rate - 10);
      ahead += recipients.get(call.id);
    }
    expect(ahead).toBe(11);
    expect(finished - started).toBeGreaterThanOrEqual((ahead * 1000) / rate - 10);
  });

  it("sends without pacing when the binding is absent", async () => {
    await stub("/__reset", { latencyMs: 100 });
    const bodies = Array.from({ length: 12 }, () => message({ id: uniqueId("unpaced") }));

    await deliver(bodies);

    expect((await stub("/__stats")).maxInFlight).toBe(6);
  });
});

describe("the pacer's schedule (a fake clock)", () => {
  function clock() {
    const state = { now: 1_000_000, slept: [] };
    return {
      state,
      now: () => state.now,
      sleep: async (ms) => {
        state.slept.push(ms);
        state.now += ms;
      },
    };
  }

  it("starts the first send at once and each next one recipients / rate later", async () => {
    const c = clock();
    const pacer = createPacer("2", c);

    expect(await pacer.take(1)).toEqual({ waitedMs: 0 });
    expect(await pacer.take(3)).toEqual({ waitedMs: 500 });
    expect(await pacer.take(1)).toEqual({ waitedMs: 1500 });
    await pacer.drain();
    expect(c.state.slept).toEqual([500, 1500, 500]);
  });

  it("gives back a turn more than MAX_PACING_WAIT_MS away, taking nothing", async () => {
    const c = clock();
    const pacer = createPacer("1", c);

    await pacer.take(50);
    expect(await pacer.take(1)).toEqual({ deferMs: 50_000 });
    c.state.now += 50_000 - MAX_PACING_WAIT_MS;
    expect(await pacer.take(1)).toEqual({ waitedMs: MAX_PACING_WAIT_MS });
  });

  it.each([[undefined], [""], ["0"], ["-3"], ["fast"]])("does not pace for a rate of %j", async (rate) => {
    const c = clock();
    const pacer = createPacer(rate, c);

    for (let i = 0; i < 5; i += 1) expect(await pacer.take(50)).toEqual({ waitedMs: 0 });
    await pacer.drain();
    expect(pacer.paced).toBe(false);
    expect(c.state.slept).toEqual([]);
  });
});
