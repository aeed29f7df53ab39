// Finding the repository paths that comments and documents cite, and
// checking that each names something a reader can open
// (tests/doc-references.test.ts). Pure functions over text, so the finder's
// own cases are tested without the file system.

/** Top-level folders a root-relative reference can start with. */
// Not bin/: in guests/ and its make commands, bin/NAME.elf means guests/bin/.
export const CITABLE_ROOTS = [".ci", "assembly", "bench", "docs", "guests", "host", "scripts", "tests", "web"];

/**
 * Folders the architecture names before they exist (docs/architecture.md;
 * .dependency-cruiser.cjs already places them): citing them, or a file in
 * them, is not a broken reference yet.
 */
export const PLANNED = ["host/ft", "host/snapshot", "web"];

export interface Reference {
  line: number;
  path: string;
}

const URL_PATTERN = /[a-z][a-z0-9+.-]*:\/\/[^\s)>\]"'`]*/gi;
// A root-relative path: a citable root at a word start (not inside a longer
// path, a URL or a relative ../ path), then path characters; <...> is a
// placeholder (bench/results/cpu-<date>.json).
const PATH_PATTERN = new RegExp(
  `(?<![\\w./@-])(?:${CITABLE_ROOTS.map((r) => r.replace(".", "\\.")).join("|")})/(?:[\\w.*/-]|<[\\w -]*>)*`,
  "g",
);

/** Root-relative paths cited in `text`, with 1-based line numbers; `firstLine` numbers the text's first line. */
export function findPaths(text: string, firstLine = 1): Reference[] {
  const found: Reference[] = [];
  text.split("\n").forEach((line, i) => {
    const withoutUrls = line.replace(URL_PATTERN, " ");
    for (const match of withoutUrls.matchAll(PATH_PATTERN)) {
      // Sentence punctuation and an ellipsis ("tests/...") are not part of the path.
      const path = match[0].replace(/<[^>]*>/g, "*").replace(/\.+$/, "");
      found.push({ line: firstLine + i, path });
    }
  });
  return found;
}

/** Relative link targets of a Markdown text ([text](target)), resolved against `dir`; URLs and anchors skipped. */
export function findMarkdownLinks(text: string, dir: string): Reference[] {
  const found: Reference[] = [];
  text.split("\n").forEach((line, i) => {
    for (const match of line.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1].replace(/#.*$/, "");
      if (target === "" || /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("/")) continue;
      found.push({ line: i + 1, path: normalise(dir === "" ? target : `${dir}/${target}`) });
    }
  });
  return found;
}

function normalise(path: string): string {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "..") parts.pop();
    else if (part !== "." && part !== "") parts.push(part);
  }
  return parts.join("/");
}

/** A piece of comment text and the line of the file it starts on. */
export interface CommentText {
  line: number;
  text: string;
}

/**
 * The comments of a C-like source (TypeScript, JavaScript, C, assembly with
 * the C preprocessor, linker scripts): // and /* *\/ comments, skipping
 * string and template literals so a "//" in a string is not one.
 */
export function cLikeComments(source: string): CommentText[] {
  const comments: CommentText[] = [];
  let line = 1;
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      const end = source.indexOf("\n", i);
      const stop = end < 0 ? source.length : end;
      comments.push({ line, text: source.slice(i + 2, stop) });
      i = stop;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end < 0 ? source.length : end;
      const text = source.slice(i + 2, stop);
      comments.push({ line, text });
      line += text.split("\n").length - 1;
      i = stop + 2;
    } else if (c === '"' || c === "'" || c === "`") {
      i++;
      while (i < source.length && source[i] !== c) {
        if (source[i] === "\\") i++;
        else if (source[i] === "\n") {
          line++;
          if (c !== "`") break; // an unterminated quote (an apostrophe in assembly): stop at the line's end
        }
        i++;
      }
      i++;
    } else {
      if (c === "\n") line++;
      i++;
    }
  }
  return comments;
}

/** The comments of a source whose comments start with # (Python, Makefiles), and Python's triple-quoted strings. */
export function hashComments(source: string): CommentText[] {
  const comments: CommentText[] = [];
  const lines = source.split("\n");
  let docstringFrom = -1;
  let docstring: string[] = [];
  lines.forEach((text, i) => {
    if (docstringFrom >= 0) {
      docstring.push(text);
      if (text.includes('"""')) {
        comments.push({ line: docstringFrom + 1, text: docstring.join("\n") });
        docstringFrom = -1;
      }
      return;
    }
    const quotes = text.split('"""').length - 1;
    if (quotes > 0) {
      if (quotes === 1) {
        docstringFrom = i;
        docstring = [text];
      } else comments.push({ line: i + 1, text });
      return;
    }
    const hash = text.indexOf("#");
    if (hash >= 0) comments.push({ line: i + 1, text: text.slice(hash + 1) });
  });
  return comments;
}

/** Turns a glob (*, **, ?) into a regular expression over repository paths. */
export function globPattern(glob: string): RegExp {
  let pattern = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      pattern += ".*";
      i++;
      if (glob[i + 1] === "/") i++;
    } else if (c === "*") pattern += "[^/]*";
    else if (c === "?") pattern += "[^/]";
    else pattern += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${pattern}$`);
}

/**
 * Whether `path` names something in the repository, given its files (paths
 * relative to the root): a file, a folder (with or without its trailing
 * slash), a glob matching at least one file, a TypeScript file cited by the
 * .js name its importers use, or something in a planned folder. A word in
 * capitals that names nothing as it stands is a placeholder (guests/bin/NAME.elf)
 * and must fit at least one file.
 */
export function exists(path: string, files: ReadonlySet<string>): boolean {
  const bare = path.replace(/\/+$/, "");
  if (PLANNED.some((folder) => bare === folder || bare.startsWith(`${folder}/`))) return true;
  if (matches(bare, files)) return true;
  const placeheld = bare.replace(/(?<![A-Za-z])[A-Z][A-Z0-9_]+(?![a-z])/g, "*");
  return placeheld !== bare && matches(placeheld, files);
}

function matches(path: string, files: ReadonlySet<string>): boolean {
  if (/[*?]/.test(path)) {
    const pattern = globPattern(path);
    for (const file of files) if (pattern.test(file)) return true;
    return false;
  }
  if (files.has(path)) return true;
  if (path.endsWith(".js") && files.has(path.replace(/\.js$/, ".ts"))) return true;
  for (const file of files) if (file.startsWith(`${path}/`)) return true;
  return false;
}
