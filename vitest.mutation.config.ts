/**
 * The suites `npm run test:mutation` runs against each mutant: those whose code under test runs in this process
 * (Stryker activates a mutant in the test process; suites that spawn the library in child processes would not see
 * it). The child-process suites (multi-process, crash, CLI, examples) run in `npm test`.
 */
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: [
      "test/TaskStore.*.test.ts",
      "test/TaskRunner.test.ts",
      "test/TaskRunner.*.test.ts",
      "test/internal/*.test.ts"
    ],
    exclude: ["test/TaskStore.*.process.test.ts", "test/TaskRunner.file.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // One process, modules loaded once for all files: a mutant run pays for its tests, not for loading Effect again.
    isolate: false,
    poolOptions: { forks: { singleFork: true } }
  }
})
