// A small typed flag parser for the lockstep commands. A command declares its
// flags once (type, default, help text); parseArgs() turns argv into typed
// values and positionals, and formatFlags() renders the help table.
// Accepted spellings: --flag value, --flag=value, and for booleans --flag
// (or --flag=true|false). "--" ends the flags; -h/--help is always known.

export interface StringFlag { type: "string"; help: string; default?: string; arg?: string }
export interface IntFlag { type: "int"; help: string; default?: number; min?: number; max?: number; arg?: string }
export interface SizeFlag { type: "size"; help: string; default?: number; arg?: string }
export interface EnumFlag<V extends string = string> { type: "enum"; help: string; values: readonly V[]; default?: V }
export interface BooleanFlag { type: "boolean"; help: string; default?: boolean }
export type FlagSpec = StringFlag | IntFlag | SizeFlag | EnumFlag | BooleanFlag;
/** Flags by their command-line name without the dashes, e.g. "max-failures". */
export type FlagSpecs = Record<string, FlagSpec>;

type BaseValue<F> = F extends EnumFlag<infer V> ? V : F extends BooleanFlag ? boolean : F extends StringFlag ? string : number;
type FlagValue<F> = F extends BooleanFlag ? boolean : F extends { default: unknown } ? BaseValue<F> : BaseValue<F> | undefined;
/** The parsed values: a flag with a default (and every boolean) is always set. */
export type Flags<S extends FlagSpecs> = { -readonly [K in keyof S]: FlagValue<S[K]> };

export interface Parsed<S extends FlagSpecs> {
  flags: Flags<S>;
  positionals: string[];
  /** -h or --help was given (the other arguments are still checked). */
  help: boolean;
}

/** A mistake in how the command was invoked: the CLI reports it and exits with status 2. */
export class UsageError extends Error {}

const SIZE_UNITS: Record<string, number> = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** "4096", "64K", "16M", "1G" (also "16MiB", "16MB": binary units) → bytes; undefined if malformed. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)([kmgt]?)(i?b)?$/i.exec(text.trim());
  if (!m || (m[3] && !m[2] && m[3].toLowerCase() !== "b")) return undefined;
  const n = Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()];
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Decimal or 0x-hex integer; undefined if malformed. */
export function parseInteger(text: string): number | undefined {
  const t = text.trim();
  if (!/^-?(\d+|0x[0-9a-f]+)$/i.test(t)) return undefined;
  const neg = t.startsWith("-");
  const n = Number(neg ? t.slice(1) : t);
  return Number.isSafeInteger(n) ? (neg ? -n : n) : undefined;
}

function convert(name: string, spec: FlagSpec, raw: string): string | number | boolean {
  const flag = `--${name}`;
  switch (spec.type) {
    case "string":
      return raw;
    case "int": {
      const n = parseInteger(raw);
      if (n === undefined) throw new UsageError(`${flag} must be an integer, got ${raw}`);
      if (spec.min !== undefined && n < spec.min) throw new UsageError(`${flag} must be at least ${spec.min}, got ${raw}`);
      if (spec.max !== undefined && n > spec.max) throw new UsageError(`${flag} must be at most ${spec.max}, got ${raw}`);
      return n;
    }
    case "size": {
      const n = parseSize(raw);
      if (n === undefined) throw new UsageError(`${flag} must be a size like 4096, 64K, 16M or 1G, got ${raw}`);
      return n;
    }
    case "enum":
      if (!spec.values.includes(raw)) throw new UsageError(`${flag} must be one of ${spec.values.join(", ")}, got ${raw}`);
      return raw;
    case "boolean":
      if (raw === "true") return true;
      if (raw === "false") return false;
      throw new UsageError(`${flag} takes no value (or =true / =false), got ${raw}`);
  }
}

export function parseArgs<S extends FlagSpecs>(argv: readonly string[], specs: S): Parsed<S> {
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    values[name] = spec.type === "boolean" ? (spec.default ?? false) : spec.default;
  }
  const positionals: string[] = [];
  let help = false;
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    if (a === "--") {
      positionals.push(...argv.slice(k + 1));
      break;
    }
    if (a === "-h" || a === "--help") {
      help = true;
      continue;
    }
    if (!a.startsWith("-") || a === "-" || /^-\d/.test(a)) {
      positionals.push(a);
      continue;
    }
    if (!a.startsWith("--")) throw new UsageError(`unknown flag ${a}`);
    const eq = a.indexOf("=");
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (!spec) throw new UsageError(`unknown flag --${name}`);
    let raw: string;
    if (eq >= 0) raw = a.slice(eq + 1);
    else if (spec.type === "boolean") raw = "true";
    else {
      const next = argv[k + 1];
      if (next === undefined || next.startsWith("--")) throw new UsageError(`missing value for --${name}`);
      raw = next;
      k++;
    }
    if (raw === "" && spec.type !== "string") throw new UsageError(`missing value for --${name}`);
    values[name] = convert(name, spec, raw);
  }
  return { flags: values as Flags<S>, positionals, help };
}

function argName(spec: FlagSpec): string {
  switch (spec.type) {
    case "boolean": return "";
    case "enum": return spec.values.join("|");
    case "size": return spec.arg ?? "SIZE";
    case "int": return spec.arg ?? "N";
    case "string": return spec.arg ?? "VALUE";
  }
}

/** Bytes in the largest binary unit that divides them: 16777216 → "16M". */
export function formatSize(n: number): string {
  for (const u of ["T", "G", "M", "K"]) {
    const b = SIZE_UNITS[u.toLowerCase()];
    if (n !== 0 && n % b === 0) return `${n / b}${u}`;
  }
  return String(n);
}

function showDefault(spec: FlagSpec): string {
  if (spec.default === undefined || spec.type === "boolean") return "";
  return ` (default: ${spec.type === "size" ? formatSize(spec.default) : spec.default})`;
}

/** The flag table for --help, one flag per line, help texts aligned. */
export function formatFlags(specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const arg = argName(spec);
    return [`--${name}${arg ? " " + arg : ""}`, spec.help + showDefault(spec)];
  });
  rows.push(["-h, --help", "show this help"]);
  const width = Math.max(...rows.map(([l]) => l.length));
  return rows.map(([l, r]) => `  ${l.padEnd(width)}  ${r}`).join("\n");
}
