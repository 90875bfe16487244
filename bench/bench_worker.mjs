// On-demand benchmark of the Cloudflare Worker sender (functions/worker), printing ratios:
//   1. the committed bundle's size, minified and gzip (zlib, level 9), vs the 20 KB gzip target;
//   2. a consumer batch of 10 against a local SES stub answering in 50 ms, run in workerd
//      (Miniflare), vs ceil(10 / 6) = 2 round trips (Workers open at most 6 connections at
//      once; a round trip is a batch of 1, duplicate-guard calls included), target <= 1.2x;
//      and vs the sequential baseline (10 batches of 1, one after the other);
//   3. sustained throughput of a burst through Miniflare's queues, the Worker paced to the
//      SES stub's enforced rate, as a fraction of that rate (target >= 0.9), with the
//      throttled calls and the messages in the DLQ (target 0).
// Run: `npm ci --prefix functions/worker && node bench/bench_worker.mjs` (from the repo root).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const workerDir = resolve(repo, "functions/worker");
const bundlePath = resolve(workerDir, "dist/worker.js");
const config = JSON.parse(readFileSync(resolve(workerDir, "worker.json"), "utf8"));
const { Miniflare, convertV4MiniflareOptions } = createRequire(resolve(workerDir, "package.json"))("miniflare");
const { startSesStub } = await import(pathToFileURL(resolve(workerDir, "test/support/ses-stub.mjs")).href);
const { burstMessages, startLoadRig } = await import(pathToFileURL(resolve(workerDir, "test/support/load-rig.mjs")).href);

const GZIP_TARGET_BYTES = 20 * 1024;
const SES_LATENCY_MS = Number(process.env.BENCH_SES_LATENCY_MS ?? 50);
const BATCH = 10;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const CONNECTIONS = 6;
const SUSTAINED_RATE = Number(process.env.BENCH_SES_RATE ?? 20); // recipients per second
const SUSTAINED_SECONDS = Number(process.env.BENCH_SUSTAINED_SECONDS ?? 15);

function sizes() {
  const bundle = readFileSync(bundlePath);
  const gzip = gzipSync(bundle, { level: 9 }).byteLength;
  console.log(`bundle: ${bundle.byteLength} B minified, ${gzip} B gzip; gzip / 20 KB target = ${(gzip / GZIP_TARGET_BYTES).toFixed(2)}`);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

let sequence = 0;
function messages(count) {
  return Array.from({ length: count }, () => {
    sequence += 1;
    const id = `bench-${sequence}`;
    return { id, timestamp: new Date(), attempts: 1, body: { id, to: "ada@customer.test", subject: "Bench", text: "Hello" } };
  });
}

async function timed(fn) {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

async function consumer() {
  const stub = await startSesStub({ latencyMs: SES_LATENCY_MS });
  // Miniflare 5 takes a new options shape; convertV4MiniflareOptions accepts the v4 one.
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
          durableObjects: { EMAIL_ID_GUARD: { className: "MessageIdGuard", useSQLite: true } },
          bindings: {
            AWS_REGION: "eu-west-1",
            AWS_ACCESS_KEY_ID: "bench",
            AWS_SECRET_ACCESS_KEY: "bench",
            EMAIL_DOMAIN: "mail.example.com",
            EMAIL_DEFAULT_FROM: "noreply@mail.example.com",
            EMAIL_CONFIGURATION_SET: "bench",
            EMAIL_WORKER_TOKEN: "bench",
            EMAIL_MAX_RETRIES: "5",
            SES_ENDPOINT: stub.url,
          },
        },
      ],
      // The Worker's per-message JSON logs would drown the figures.
      handleStructuredLogs: () => {},
    }),
  );
  try {
    const worker = await mf.getWorker();
    const run = async (count) => {
      const result = await worker.queue("email-queue", messages(count));
      if (result.explicitAcks.length !== count) throw new Error(`expected ${count} acks, got ${JSON.stringify(result)}`);
    };
    await run(BATCH); // warm up: isolate, connections, signing-key cache
    const floor = [];
    const batch = [];
    const sequential = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      floor.push(await timed(() => run(1)));
      batch.push(await timed(() => run(BATCH)));
      sequential.push(
        await timed(async () => {
          for (let i = 0; i < BATCH; i += 1) await run(1);
        }),
      );
    }
    const [f, b, s] = [median(floor), median(batch), median(sequential)];
    console.log(`consumer, SES latency ${SES_LATENCY_MS} ms, median of ${ROUNDS}:`);
    console.log(`  one round trip (batch of 1): ${f.toFixed(1)} ms`);
    const trips = Math.ceil(BATCH / CONNECTIONS);
    console.log(`  batch of ${BATCH}: ${b.toFixed(1)} ms; batch / ${trips} round trips (ceil(${BATCH} / ${CONNECTIONS})) = ${(b / (trips * f)).toFixed(2)} (target <= 1.20)`);
    console.log(`  sequential baseline (${BATCH} batches of 1): ${s.toFixed(1)} ms; batch / sequential = ${(b / s).toFixed(2)}`);
    console.log(`  SES stub max in flight: ${stub.state.maxInFlight}`);
  } finally {
    await mf.dispose();
    await stub.close();
  }
}

async function sustained() {
  const count = SUSTAINED_RATE * SUSTAINED_SECONDS;
  // One consumer invocation at a time (as Miniflare runs them), paced to the whole rate:
  // what WorkerSender plans for max_send_rate = the stub's rate and max_concurrency = 1.
  const rig = await startLoadRig({ stubRate: SUSTAINED_RATE, workerRate: SUSTAINED_RATE, maxRetries: 1, latencyMs: SES_LATENCY_MS });
  try {
    const messages = burstMessages(count, `sustained-${Date.now()}`);
    const started = performance.now();
    await rig.enqueue(messages);
    await rig.sentAll(messages.map((m) => m.id), 10 * SUSTAINED_SECONDS * 1000);
    const elapsed = (performance.now() - started) / 1000;
    await new Promise((r) => setTimeout(r, 1000));
    const dead = (await rig.deadLetters()).length;
    const duplicates = [...rig.stub.state.sentById.values()].filter((n) => n > 1).length;
    const achieved = count / elapsed;
    console.log(`sustained: ${count} messages, stub rate ${SUSTAINED_RATE}/s, SES latency ${SES_LATENCY_MS} ms:`);
    console.log(`  ${elapsed.toFixed(1)} s, ${achieved.toFixed(2)}/s; throughput / stub rate = ${(achieved / SUSTAINED_RATE).toFixed(2)} (target >= 0.90)`);
    console.log(`  throttled calls: ${rig.stub.state.throttled}; messages in the DLQ: ${dead} (target 0); sent more than once: ${duplicates}`);
  } finally {
    await rig.close();
  }
}

sizes();
await consumer();
await sustained();
