// Build-time inlining for the JavaScript build of the core.
//
// asc inlines the core's one-line accessors (`@inline`); V8 inlines only as
// far as its budget goes, and the run loop calls hundreds of them. This pass
// rewrites calls to the listed one-expression functions of the bundle into
// their bodies, with arguments parenthesized. A call is left alone when a
// parameter used more than once would receive an argument that is not a plain
// name or number (it would be evaluated twice).

const DEF = /^function ([A-Za-z_$][\w$]*)\(([^)]*)\) \{\n  (return (.+);|(.+?) = (.+);)\n\}$/gm;

/** Index of the parenthesis closing the one at `open`. */
function closeParen(src, open) {
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    const c = src[i];
    if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") { if (--depth === 0) return i; }
    else if (c === '"' || c === "'" || c === "`") throw new Error(`inline-js: string literal in a call at ${i}`);
  }
  throw new Error(`inline-js: unbalanced call at ${open}`);
}
function splitArgs(s) {
  const out = [];
  let depth = 0, from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") depth--;
    else if (c === "," && depth === 0) { out.push(s.slice(from, i).trim()); from = i + 1; }
  }
  if (s.trim() !== "") out.push(s.slice(from).trim());
  return out;
}

export function inlineAccessors(src, names) {
  const defs = new Map();
  for (const m of src.matchAll(DEF)) {
    if (!names.includes(m[1])) continue;
    const params = m[2].split(",").map((p) => p.trim()).filter(Boolean);
    const body = m[4] !== undefined ? m[4] : `void (${m[5]} = ${m[6]})`;
    const uses = params.map((p) => (body.match(new RegExp(`(?<![\\w$.])${p}(?![\\w$])`, "g")) ?? []).length);
    defs.set(m[1], { params, body, uses });
  }
  const missing = names.filter((n) => !defs.has(n));
  if (missing.length) throw new Error(`inline-js: no one-expression definition for ${missing.join(", ")}`);
  const callRe = new RegExp(`(?<![\\w$.])(${[...defs.keys()].join("|")})\\(`, "g");
  for (let pass = 0; pass < 6; pass++) {
    let changed = false;
    let out = "";
    let last = 0;
    callRe.lastIndex = 0;
    for (let m; (m = callRe.exec(src)); ) {
      const start = m.index;
      if (src.slice(Math.max(0, start - 9), start) === "function ") continue;
      const open = start + m[1].length;
      const close = closeParen(src, open);
      const args = splitArgs(src.slice(open + 1, close));
      const d = defs.get(m[1]);
      if (args.length !== d.params.length) continue;
      if (d.params.some((_, k) => d.uses[k] > 1 && !/^[\w$.]+$/.test(args[k]))) continue;
      // All parameters in one pass: an argument may contain another parameter's name.
      const body = d.params.length === 0 ? d.body : d.body.replace(
        new RegExp(`(?<![\\w$.])(${d.params.join("|")})(?![\\w$])`, "g"),
        (p) => `(${args[d.params.indexOf(p)]})`,
      );
      out += src.slice(last, start) + `(${body})`;
      last = close + 1;
      callRe.lastIndex = close + 1;
      changed = true;
    }
    src = out + src.slice(last);
    if (!changed) break;
  }
  return src;
}
