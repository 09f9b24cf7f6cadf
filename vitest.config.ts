import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Each file gets its own database; PGlite start-up and 100k-member writes need room.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
  },
});
