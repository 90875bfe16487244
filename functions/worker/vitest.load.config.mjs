// The load tests run in Node and drive their own Miniflare (test/support/load-rig.mjs):
// a real queue consumer and DLQ, which the workerd pool's per-test harness does not run.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/load/**/*.load.test.mjs"],
    testTimeout: 20_000,
    hookTimeout: 200_000,
  },
});
