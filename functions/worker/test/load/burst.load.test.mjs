// Issue 11's load test for the Worker path, scaled down and local: a burst of 50 seconds'
// worth of the SES stub's rate through Miniflare's queues, the Worker paced a quarter
// over that rate (as when the other path takes its share too), so the stub throttles.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { burstMessages, startLoadRig } from "../support/load-rig.mjs";

const STUB_RATE = 5; // recipients per second the stub accepts
const BURST = 50 * STUB_RATE;

describe(`a burst of ${BURST} messages at a stub rate of ${STUB_RATE}/s`, () => {
  let rig;
  let settled;
  const messages = burstMessages(BURST, "burst");
  const ids = messages.map((m) => m.id);

  beforeAll(async () => {
    rig = await startLoadRig({ stubRate: STUB_RATE, workerRate: STUB_RATE * 1.25, maxRetries: 1 });
    await rig.enqueue(messages);
    await rig.sentAll(ids, 150_000);
    // Let anything still in flight (a duplicate, a late dead letter) land before counting.
    await new Promise((r) => setTimeout(r, 2_000));
    settled = { sentById: new Map(rig.stub.state.sentById), throttled: rig.stub.state.throttled, deadLetters: await rig.deadLetters() };
    console.log(`load: ${BURST} messages, stub rate ${STUB_RATE}/s, ${settled.throttled} throttled SES calls, ${settled.deadLetters.length} dead letters`);
  }, 180_000);

  afterAll(async () => {
    await rig?.close();
  });

  it("sends every message exactly once", () => {
    expect(ids.filter((id) => settled.sentById.get(id) !== 1)).toEqual([]);
    expect([...settled.sentById.keys()].sort()).toEqual([...ids].sort());
  });

  it("puts nothing in the DLQ although max_retries is 1", () => {
    expect(settled.deadLetters).toEqual([]);
  });

  it("was throttled by the stub, and counted it", () => {
    expect(settled.throttled).toBeGreaterThan(0);
    const throttledCalls = rig.stub.state.requests.filter((entry) => entry.answer === 429).length;
    expect(throttledCalls).toBe(settled.throttled);
  });
});
