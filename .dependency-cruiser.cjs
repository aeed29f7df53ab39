// The dependency rules of lockstep, checked by dependency-cruiser
// (`npm run lint:deps`, and in `npm test` by tests/architecture.test.ts).
// docs/architecture.md explains the picture; this file is its source of truth.
//
// The layers are written once, as data (LAYERS, top to bottom); every
// forbidden rule about folders is derived from it:
//   - a folder may import its own files and any folder in a LOWER layer;
//     never one in its own layer (siblings are independent) or above it;
//   - a folder in NARROWER may import only the folders listed for it;
//   - only the Node shell (NODE_ONLY) may import Node's built-in modules, so
//     everything else can run in a browser, and only host/cli may import
//     host/node (tests, bench and scripts are not cruised: they may);
//   - nothing we ship imports tests/, bench/ or scripts/; no cycles under
//     host/; every import resolves (an unresolved one would hide an edge).
//
// Parser: the project's TypeScript (7.x) has no JavaScript compiler API, which
// dependency-cruiser's "tsc" parser needs, and its default (acorn) cannot
// read TypeScript; so it uses its "swc" parser with @swc/core (a devDependency).
// That keeps the project's own compiler as it is. swc does not mark
// `import type` as type-only: type imports count as dependencies, as they
// should (an upward type import is still an upward dependency).
// dependency-cruiser is pinned at 17.4.x: 18.x declares node >=22 and its
// command refuses to start on Node 20, the project's Node.

/** Top to bottom. Each entry is one layer: the folders in it. */
const LAYERS = [
  ["host/cli", "web"], // the shells: the command, the browser page (docs/web.md)
  ["host/node"], // Node-only adapters: files, UDP, core modules from build/, the real-time driver
  ["host/ft"], // primary, backup, logging channel, output gate
  ["host/snapshot", "host/replay"], // state transfer; the log, live and replay gates
  ["host/machine", "host/kv", "host/conformance"], // the PC; the kv client; the CPU test runner
  ["host/devices", "host/engine"], // device models; the Engine interface and its loading
  ["host/net"], // the FrameTransport interface
  ["host/common", "host/types"], // leaf helpers and ambient types
  ["assembly"], // the CPU core
];

/** Folders whose imports of ours are narrower than their layer allows. */
const NARROWER = {
  "assembly": [], // the core knows nothing of the host
  "host/common": [],
  "host/types": [],
  "host/conformance": ["host/engine"],
  "host/kv": ["host/net", "host/common"],
};

/** The core's source is reached only through the Engine interface. */
const CORE_USERS = ["host/engine"];

/** Folders that may import Node built-ins (node:fs, node:dgram, ...). */
const NODE_ONLY = ["host/cli", "host/node"];

/** Folders that may import host/node. */
const NODE_ADAPTER_USERS = ["host/cli"];

/** What is cruised and must follow the rules: everything except tests, bench, scripts. */
const SHIPPED = ["host", "assembly", "web"];

// A regular expression matching files under any of the folders.
const under = (folders) => `^(${folders.join("|")})/`;

const layerRules = LAYERS.flatMap((layer, index) => {
  const notBelow = LAYERS.slice(0, index + 1).flat();
  return layer.map((folder) => ({
    name: "layer-order",
    comment: `${folder} may import only layers below its own (${LAYERS.slice(index + 1).flat().join(", ") || "none"})`,
    severity: "error",
    from: { path: under([folder]) },
    to: { path: under(notBelow.filter((other) => other !== folder)) },
  }));
});

const narrowerRules = Object.entries(NARROWER).map(([folder, allowed]) => ({
  name: "narrower-than-layer",
  comment: `${folder} may import only ${allowed.length ? allowed.join(", ") : "itself"} of ours`,
  severity: "error",
  from: { path: under([folder]) },
  to: { path: under(SHIPPED), pathNot: under([folder, ...allowed]) },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    ...narrowerRules,
    {
      name: "core-through-engine",
      comment: `only ${CORE_USERS.join(", ")} imports assembly/; the rest uses the Engine interface`,
      severity: "error",
      from: { path: under(SHIPPED), pathNot: under(["assembly", ...CORE_USERS]) },
      to: { path: under(["assembly"]) },
    },
    {
      name: "node-builtins-only-in-node-shell",
      comment: `only ${NODE_ONLY.join(", ")} import Node built-ins, so the rest runs in a browser`,
      severity: "error",
      from: { path: under(SHIPPED), pathNot: under(NODE_ONLY) },
      to: { dependencyTypes: ["core"] },
    },
    {
      name: "node-adapters-only-from-cli",
      comment: `only ${NODE_ADAPTER_USERS.join(", ")} imports host/node`,
      severity: "error",
      from: { path: under(SHIPPED), pathNot: under(["host/node", ...NODE_ADAPTER_USERS]) },
      to: { path: under(["host/node"]) },
    },
    {
      name: "no-test-code-in-product",
      comment: "nothing we ship imports tests/, bench/ or scripts/",
      severity: "error",
      from: { path: under(SHIPPED) },
      to: { path: under(["tests", "bench", "scripts"]) },
    },
    {
      name: "no-circular",
      comment: "no import cycles under host/",
      severity: "error",
      from: { path: "^host/" },
      to: { circular: true },
    },
    {
      name: "not-to-unresolvable",
      comment: "every import resolves; an unresolved one would hide a dependency",
      severity: "error",
      from: { path: under(SHIPPED) },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    parser: "swc",
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^build/" },
    moduleSystems: ["es6", "cjs"],
    // Resolve packages' "exports" maps as Node does for an ES module import
    // (tsx/esm/api is only reachable that way).
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "node", "default"] },
  },
};
