import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { readFileSync } from "node:fs";
import { defineConfig } from "vitest/config";

const worker = JSON.parse(readFileSync(new URL("./worker.json", import.meta.url), "utf8"));

export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => ({
      // The tests drive the committed bundle: what the component uploads is what is tested.
      main: "./dist/worker.js",
      miniflare: {
        compatibilityDate: worker.compatibility_date,
        compatibilityFlags: worker.compatibility_flags,
        queueProducers: { EMAIL_QUEUE: "email-queue", EMAIL_DLQ: "email-dlq" },
        // As planned: the duplicate guard, a SQLite-backed Durable Object class the bundle exports.
        durableObjects: { EMAIL_ID_GUARD: { className: "MessageIdGuard", useSQLite: true } },
        // As planned: the Worker consumes its DLQ queue and forwards to the SQS DLQ (moto).
        queueConsumers: { "email-dlq": { maxBatchSize: 10, maxBatchTimeout: 0, maxRetries: 100, retryDelay: 3600 } },
        // The real Workers Rate Limiting binding, simulated by Miniflare: a roomy one as
        // deployed, and a tight one the 429 tests swap in.
        ratelimits: {
          EMAIL_RATE_LIMITER: { namespace_id: "1001", simple: { limit: 1000, period: 60 } },
          TIGHT_RATE_LIMITER: { namespace_id: "1002", simple: { limit: 3, period: 60 } },
        },
        bindings: {
          AWS_REGION: "eu-west-1",
          AWS_ACCESS_KEY_ID: "testing",
          AWS_SECRET_ACCESS_KEY: "testing",
          EMAIL_DOMAIN: "mail.example.com",
          EMAIL_DEFAULT_FROM: "Acme <noreply@mail.example.com>",
          EMAIL_CONFIGURATION_SET: "serverless-mail-test",
          EMAIL_WORKER_TOKEN: "test-token-0123456789",
          EMAIL_MAX_RETRIES: "5",
          EMAIL_DLQ_NAME: "email-dlq",
          EMAIL_DEAD_LETTER_QUEUE_URL: inject("sqsDlqUrl"),
          SES_ENDPOINT: inject("sesStubUrl"),
          SES_STUB_URL: inject("sesStubUrl"),
          MOTO_URL: inject("motoUrl"),
        },
      },
    })),
  ],
  test: {
    globalSetup: ["./test/global-setup.mjs"],
    include: ["test/**/*.test.js"],
    // The suites share one SES stub whose in-flight counter must see one file at a time.
    fileParallelism: false,
    testTimeout: 20_000,
    hookTimeout: 60_000,
  },
});
