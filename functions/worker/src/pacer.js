// Pacing one consumer invocation to its share of the SES maximum send rate.

/**
 * Longest a message waits for its turn inside an invocation. A later turn is given
 * back to the queue as a delayed copy instead, so an invocation stays far inside the
 * consumer's 15-minute wall-clock limit
 * (https://developers.cloudflare.com/queues/platform/limits/).
 */
export const MAX_PACING_WAIT_MS = 30_000;

/**
 * A schedule of send slots at `ratePerSecond` recipients per second (SES counts each
 * recipient of a message against the maximum send rate: SES Developer Guide, "Managing
 * your Amazon SES sending quotas"). The first send starts at once; each later one
 * `recipients / rate` seconds after the previous one started. `drain()` keeps the
 * invocation until its last send's share of time has passed, so the next invocation
 * in the same concurrency slot cannot start early: with the consumer's
 * `max_concurrency` invocations each at `rate / max_concurrency`, the path stays under
 * its rate. A rate that is absent, zero or not a number means no pacing.
 */
export function createPacer(ratePerSecond, { now = () => Date.now(), sleep = defaultSleep } = {}) {
  const rate = Number(ratePerSecond);
  const paced = Number.isFinite(rate) && rate > 0;
  let next = now();
  return {
    paced,
    rate: paced ? rate : null,
    /**
     * Take `recipients` slots. Resolves `{ waitedMs }` when the send may start, or
     * `{ deferMs }` (nothing taken) when its turn is more than MAX_PACING_WAIT_MS away.
     */
    async take(recipients) {
      if (!paced) return { waitedMs: 0 };
      const start = Math.max(next, now());
      const waitMs = start - now();
      if (waitMs > MAX_PACING_WAIT_MS) return { deferMs: waitMs };
      next = start + (Math.max(1, recipients) * 1000) / rate;
      if (waitMs > 0) await sleep(waitMs);
      return { waitedMs: waitMs };
    },
    /** Wait until the slots taken so far have elapsed. */
    async drain() {
      if (!paced) return;
      const waitMs = next - now();
      if (waitMs > 0) await sleep(waitMs);
    },
  };
}

function defaultSleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
