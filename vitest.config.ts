import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Prints and kills the processes a failed or timed-out test left running (test/helpers/runs.ts).
    setupFiles: ["test/setup/processes.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests start real processes; two cores means running files in parallel only causes timeouts.
    fileParallelism: false,
  },
});
