// The page's static build (npm run build:web) made once per test run, into
// dist-web/, through Vite's API with the repository's vite.config.ts.

import { fileURLToPath } from "node:url";
import { build } from "vite";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const DIST = fileURLToPath(new URL("../../dist-web/", import.meta.url));

export async function buildWeb(): Promise<string> {
  await build({ configFile: fileURLToPath(new URL("../../vite.config.ts", import.meta.url)), logLevel: "warn" });
  return DIST;
}
