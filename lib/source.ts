/**
 * The literate part of the course: find the source of a named function,
 * class, method or constant in a file of this repository, so that a notebook
 * can show the code it is about to run, read from the file at that moment.
 *
 * ```ts
 * const { code, startLine } = sourceOf("lib/autodiff.ts", "stopGradient");
 * ```
 *
 * The scanner relies on `deno fmt`'s layout (one declaration starts a line)
 * and skips strings, template literals, comments and regular expressions
 * while it matches brackets.
 *
 * @module
 */
import { ArgumentError, checkOptions } from "./validate.ts";

/** What `sourceOf` returns: the text of one declaration and where it is. */
export interface SourceExcerpt {
  /** The file, relative to the repository root (as asked). */
  file: string;
  /** The name asked for, e.g. "VectorQuantizer.forward". */
  name: string;
  /** The declaration's text, with its JSDoc when `withDoc`, dedented. */
  code: string;
  /** 1-based first line of `code` in the file. */
  startLine: number;
  /** 1-based last line of `code` in the file. */
  endLine: number;
}

/** Options of `sourceOf` and `showSource`. */
export interface SourceOptions {
  /** Include the JSDoc comment above the declaration (default false). */
  withDoc?: boolean;
}

const ROOT = new URL("../", import.meta.url);

/** Reads a file of the repository; `file` is relative to its root. */
function readRepoFile(where: string, file: string): string {
  if (typeof file !== "string" || file === "" || file.startsWith("/")) {
    throw new ArgumentError(
      where,
      `file must be a path relative to the repository root, e.g. "lib/vq.ts", got ${
        JSON.stringify(file)
      }`,
    );
  }
  const url = new URL(file, ROOT);
  // Only the course's own source: "../x" or "lib/../../x" would read any file.
  if (!url.href.startsWith(ROOT.href)) {
    throw new ArgumentError(
      where,
      `file must stay inside the repository, got ${JSON.stringify(file)}`,
    );
  }
  try {
    return Deno.readTextFileSync(url);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ArgumentError(where, `file ${file} does not exist`);
    }
    throw e;
  }
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Line index where a top-level declaration of `name` starts, or -1. */
function findDeclaration(
  lines: string[],
  name: string,
  from = 0,
  to = lines.length,
  indent = "",
): number {
  const n = escapeRegExp(name);
  const top = new RegExp(
    `^${indent}(export\\s+)?(default\\s+)?(declare\\s+)?(abstract\\s+)?(async\\s+)?` +
      `(function\\*?\\s+${n}\\b|class\\s+${n}\\b|(const|let|var)\\s+${n}\\b|` +
      `interface\\s+${n}\\b|type\\s+${n}\\b|enum\\s+${n}\\b)`,
  );
  for (let i = from; i < to; i++) if (top.test(lines[i])) return i;
  return -1;
}

/** Line index where a member `name` of a class body (lines from..to) starts, or -1. */
function findMember(
  lines: string[],
  name: string,
  from: number,
  to: number,
): number {
  const indent = lines[from].match(/^\s*/)![0] + "  ";
  const n = escapeRegExp(name);
  const member = new RegExp(
    `^${indent}(public\\s+|private\\s+|protected\\s+)?(static\\s+)?(readonly\\s+)?(override\\s+)?` +
      `(async\\s+)?(\\*\\s*)?(get\\s+|set\\s+)?(#?${n}|\\[${n}\\])\\s*[(<:=?!;]`,
  );
  for (let i = from + 1; i < to; i++) if (member.test(lines[i])) return i;
  return -1;
}

/**
 * Offset just past the end of the declaration that starts at `start`: the
 * first `}` or `;` at bracket depth 0 that ends its line (so a type literal
 * in a signature, `): { a: number } {`, does not end it).
 */
function declarationEnd(text: string, start: number): number {
  let depth = 0;
  let i = start;
  let lastSignificant = "";
  const endsLine = (j: number) => {
    let k = j + 1;
    if (text[k] === ";") k++;
    while (text[k] === " " || text[k] === "\t") k++;
    return k >= text.length || text[k] === "\n" ? k : -1;
  };
  while (i < text.length) {
    const c = text[i];
    if (c === "/" && text[i + 1] === "/") {
      i = text.indexOf("\n", i);
      if (i < 0) return text.length;
      continue;
    }
    if (c === "/" && text[i + 1] === "*") {
      i = text.indexOf("*/", i + 2) + 2;
      continue;
    }
    if (c === '"' || c === "'") {
      i++;
      while (i < text.length && text[i] !== c) i += text[i] === "\\" ? 2 : 1;
      i++;
      lastSignificant = c;
      continue;
    }
    if (c === "`") {
      i = templateEnd(text, i + 1);
      lastSignificant = c;
      continue;
    }
    if (c === "/" && /^$|[(,=:[!&|?{};+\-*%<>~^]$/.test(lastSignificant)) {
      i = regexEnd(text, i + 1);
      lastSignificant = "/";
      continue;
    }
    if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") {
      depth--;
      if (depth === 0 && c === "}") {
        const end = endsLine(i);
        if (end >= 0) return end;
      }
    } else if (c === ";" && depth === 0) return i + 1;
    if (!/\s/.test(c)) lastSignificant = c;
    i++;
  }
  return text.length;
}

/** Offset just past the closing backtick of a template literal whose body starts at `i`. */
function templateEnd(text: string, i: number): number {
  while (i < text.length) {
    const c = text[i];
    if (c === "\\") i += 2;
    else if (c === "`") return i + 1;
    else if (c === "$" && text[i + 1] === "{") {
      // The expression inside ${...} may hold strings, templates and braces.
      let depth = 1;
      i += 2;
      while (i < text.length && depth > 0) {
        const d = text[i];
        if (d === "`") {
          i = templateEnd(text, i + 1);
          continue;
        }
        if (d === '"' || d === "'") {
          i++;
          while (i < text.length && text[i] !== d) {
            i += text[i] === "\\" ? 2 : 1;
          }
        } else if (d === "{") depth++;
        else if (d === "}") depth--;
        i++;
      }
    } else i++;
  }
  return text.length;
}

/** Offset just past a regular expression literal whose body starts at `i`. */
function regexEnd(text: string, i: number): number {
  let inClass = false;
  while (i < text.length && text[i] !== "\n") {
    const c = text[i];
    if (c === "\\") i++;
    else if (c === "[") inClass = true;
    else if (c === "]") inClass = false;
    else if (c === "/" && !inClass) {
      i++;
      while (/[a-z]/.test(text[i] ?? "")) i++;
      return i;
    }
    i++;
  }
  return i;
}

/** Start line of the JSDoc block that ends just above line `i`, or `i`. */
function docStart(lines: string[], i: number): number {
  if (i === 0 || !lines[i - 1].trim().endsWith("*/")) return i;
  let j = i - 1;
  while (j > 0 && !lines[j].trim().startsWith("/**")) j--;
  return lines[j].trim().startsWith("/**") ? j : i;
}

function dedent(lines: string[]): string {
  const indents = lines.filter((l) => l.trim() !== "").map((l) =>
    l.match(/^\s*/)![0].length
  );
  const cut = Math.min(...indents);
  return lines.map((l) => l.slice(cut)).join("\n");
}

/**
 * The source of `name` in `file` (relative to the repository root): a
 * top-level function, class, constant, interface or type, or a class member
 * written `Class.member`. Read from the file now, so it is the code that runs.
 *
 * @throws ArgumentError when the file or the name does not exist
 */
export function sourceOf(
  file: string,
  name: string,
  options: SourceOptions = {},
): SourceExcerpt {
  return sourceFor("sourceOf", file, name, options);
}

/** `sourceOf` with the errors naming `where`, the function the user called (e.g. showSource). */
export function sourceFor(
  where: string,
  file: string,
  name: string,
  options: SourceOptions = {},
): SourceExcerpt {
  if (typeof name !== "string" || !/^[\w$]+(\.#?[\w$]+)?$/.test(name)) {
    throw new ArgumentError(
      where,
      `name must be a declaration name like "vectorQuantize" or "VQVAE.loss", got ${
        JSON.stringify(name)
      }`,
    );
  }
  checkOptions(where, options, ["withDoc"]);
  const text = readRepoFile(where, file);
  const lines = text.split("\n");
  const lineStarts: number[] = [];
  for (let i = 0, o = 0; i < lines.length; i++) {
    lineStarts.push(o);
    o += lines[i].length + 1;
  }
  const lineOf = (offset: number) => {
    let lo = 0, hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const [outer, member] = name.split(".");
  let first = findDeclaration(lines, outer);
  if (first < 0) {
    throw new ArgumentError(
      where,
      `${file} has no top-level declaration named ${outer}`,
    );
  }
  let last = lineOf(declarationEnd(text, lineStarts[first]) - 1);
  if (member !== undefined) {
    const m = findMember(lines, member, first, last);
    if (m < 0) {
      throw new ArgumentError(
        where,
        `class ${outer} in ${file} has no member named ${member}`,
      );
    }
    first = m;
    last = lineOf(declarationEnd(text, lineStarts[m]) - 1);
  }
  const start = options.withDoc ? docStart(lines, first) : first;
  return {
    file,
    name,
    code: dedent(lines.slice(start, last + 1)),
    startLine: start + 1,
    endLine: last + 1,
  };
}
