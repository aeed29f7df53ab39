// The page's dev server and static build (npm run web, npm run build:web).
// The root is web/; the build goes to dist-web/ with relative URLs (base
// "./"), so it works from any static server and any path, offline. The
// workers are ES modules. The core's builds (build/) and the guests
// (guests/bin/) are imported as assets; the dev server may serve them from
// the repository above web/. See docs/web.md.

import { defineConfig } from "vite";
import { fileURLToPath } from "node:url";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: here("web"),
  base: "./",
  publicDir: false,
  worker: { format: "es" },
  server: { fs: { allow: [here(".")] } },
  build: {
    outDir: here("dist-web"),
    emptyOutDir: true,
    target: "es2022",
    // The guests and the core are assets (fetched), never inlined as data: URLs.
    assetsInlineLimit: 0,
    rollupOptions: {
      input: { index: here("web/index.html"), single: here("web/examples/single.html"), speed: here("web/examples/speed.html") },
    },
  },
});
