import { defineConfig } from "vitest/config";

// Two projects: `unit` needs only Node and npm (npm test); `system` needs
// Debian packages (a compiler, QEMU, Unicorn...) and runs under npm run test:system.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["tests/**/*.test.ts"],
          exclude: ["tests/system/**"],
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
    ],
  },
});
