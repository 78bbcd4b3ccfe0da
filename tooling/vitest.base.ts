import { defineConfig } from "vitest/config";

/**
 * Tests resolve workspace packages to their sources through the `@llmq/source` export condition, so a test run
 * never depends on a stale dist. Each package also writes a JSON report that tooling/test-summary.mjs totals.
 */
export const baseVitest = defineConfig({
  resolve: { conditions: ["@llmq/source"] },
  ssr: { resolve: { conditions: ["@llmq/source"] } },
  test: {
    include: ["src/**/*.test.ts"],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: "forks",
    reporters: ["default", ["json", { outputFile: "test-results.json" }]],
  },
});
