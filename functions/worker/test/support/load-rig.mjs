// A burst rig run in Node: the committed bundle in workerd (Miniflare) with the planned
// bindings (queues, DLQ queue, duplicate guard, rate limiter), its real queue consumer,
// a DLQ reader, and the SES stub enforcing a send rate. Used by the load test and by
// bench/bench_worker.mjs.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startSesStub } from "./ses-stub.mjs";

const workerDir = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bundlePath = resolve(workerDir, "dist/worker.js");
const config = JSON.parse(readFileSync(resolve(workerDir, "worker.json"), "utf8"));
const { Miniflare, convertV4MiniflareOptions } = createRequire(resolve(workerDir, "package.json"))("miniflare");

const TOKEN = "load-token-0123456789abcdef0123";
// Keeps every dead letter (the consumer's own entries and the platform's moves) for the test to read.
const DLQ_READER = `
const letters = [];
export default {
  async queue(batch) { for (const m of batch.messages) { letters.push(m.body); m.ack(); } },
  async fetch() { return Response.json(letters); },
};`;

/**
 * @param {{ stubRate: number, workerRate: number | null, maxRetries?: number, latencyMs?: number, maxBatchSize?: number }} options
 *   `stubRate`: recipients/s the SES stub accepts; `workerRate`: EMAIL_MAX_SEND_RATE (one
 *   consumer invocation at a time, as Miniflare runs them, so the path's whole rate).
 */
export async function startLoadRig({ stubRate, workerRate, maxRetries = 1, latencyMs = 20, maxBatchSize = 10 }) {
  const stub = await startSesStub({ latencyMs, ratePerSecond: stubRate });
  const bindings = {
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "load",
    AWS_SECRET_ACCESS_KEY: "load",
    EMAIL_DOMAIN: "mail.example.com",
    EMAIL_DEFAULT_FROM: "noreply@mail.example.com",
    EMAIL_CONFIGURATION_SET: "load",
    EMAIL_WORKER_TOKEN: TOKEN,
    EMAIL_MAX_RETRIES: String(maxRetries),
    SES_ENDPOINT: stub.url,
  };
  if (workerRate) bindings.EMAIL_MAX_SEND_RATE = String(workerRate);
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      workers: [
        {
          name: "serverless-mail-worker",
          modules: [{ type: "ESModule", path: bundlePath }],
          modulesRoot: dirname(bundlePath),
          compatibilityDate: config.compatibility_date,
          compatibilityFlags: config.compatibility_flags,
          queueProducers: { EMAIL_QUEUE: "email-queue", EMAIL_DLQ: "email-dlq" },
          // max_retries is small on purpose: a throttle that spent a retry would show up in the DLQ.
          queueConsumers: { "email-queue": { maxBatchSize, maxBatchTimeout: 0, maxRetries, retryDelay: 1, deadLetterQueue: "email-dlq" } },
          durableObjects: { EMAIL_ID_GUARD: { className: "MessageIdGuard", useSQLite: true } },
          ratelimits: { EMAIL_RATE_LIMITER: { namespace_id: "1001", simple: { limit: 100_000, period: 60 } } },
          bindings,
        },
        { name: "dlq-reader", modules: true, script: DLQ_READER, queueConsumers: { "email-dlq": { maxBatchSize: 100, maxBatchTimeout: 0 } } },
      ],
      // The Worker's per-message JSON logs would drown the output.
      handleStructuredLogs: () => {},
    }),
  );
  await mf.ready;
  const dlqReader = await mf.getWorker("dlq-reader");

  return {
    stub,
    /** Enqueue `messages` through the Worker's `/send/batch`, 100 per request (the Queues limit). */
    async enqueue(messages) {
      for (let i = 0; i < messages.length; i += 100) {
        const response = await mf.dispatchFetch("http://localhost/send/batch", {
          method: "POST",
          headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
          body: JSON.stringify({ messages: messages.slice(i, i + 100) }),
        });
        const text = await response.text();
        if (response.status !== 202) throw new Error(`enqueue: ${response.status} ${text}`);
      }
    },
    async deadLetters() {
      return (await dlqReader.fetch("http://dlq/")).json();
    },
    /** Resolve when every id in `ids` has been sent once, or reject after `timeoutMs`. */
    async sentAll(ids, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (ids.every((id) => (stub.state.sentById.get(id) ?? 0) > 0)) return Date.now();
        await new Promise((r) => setTimeout(r, 50));
      }
      const missing = ids.filter((id) => !stub.state.sentById.has(id));
      throw new Error(`${missing.length} of ${ids.length} messages not sent after ${timeoutMs} ms`);
    },
    async close() {
      await mf.dispose();
      await stub.close();
    },
  };
}

/** `count` one-recipient messages with fresh ids. */
export function burstMessages(count, prefix) {
  return Array.from({ length: count }, (_, i) => ({ id: `${prefix}-${i}`, to: `user${i}@customer.test`, subject: "Load", text: "Hello" }));
}
