import { defineConfig } from "vitest/config";

// Three projects: `unit` needs only Node and npm (npm test); `system` needs
// Debian packages (a compiler, QEMU, Unicorn...) and runs under npm run
// test:system; `browser` needs Debian's Chromium and runs the page in it
// (npm run test:browser).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["tests/**/*.test.ts"],
          exclude: ["tests/system/**", "tests/browser/**"],
          testTimeout: 120_000,
        },
      },
      {
        test: {
          name: "system",
          include: ["tests/system/**/*.test.ts"],
          testTimeout: 900_000,
          hookTimeout: 900_000,
        },
      },
      {
        test: {
          name: "browser",
          include: ["tests/browser/**/*.test.ts"],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // One browser at a time: the page's workers want the cores.
          fileParallelism: false,
        },
      },
    ],
  },
});
