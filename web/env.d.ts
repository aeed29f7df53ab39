// The bundler's (Vite's) asset imports: "?url" gives a file's URL in the
// build, "?raw" its text.
/// <reference types="vite/client" />
