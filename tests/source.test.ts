import { sourceBlock } from "../lib/display.ts";
import { sourceOf } from "../lib/source.ts";
import { ArgumentError } from "../lib/validate.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";

const FIXTURE = "tests/fixtures/source_fixture.ts";

Deno.test("sourceOf: a function, from its first line to its closing brace, with the right line numbers", () => {
  const s = sourceOf(FIXTURE, "withTypeLiteral");
  const lines = Deno.readTextFileSync(FIXTURE).split("\n");
  assertEquals(s.code, lines.slice(s.startLine - 1, s.endLine).join("\n"));
  assert(s.code.startsWith("export function withTypeLiteral("), s.code);
  assert(s.code.endsWith("}"), s.code);
  // The return type's `{ a: number }` and the braces in strings, templates,
  // comments and a regex do not end the declaration early.
  assert(s.code.includes("return { a: brace.length };"), s.code);
});

Deno.test("sourceOf: JSDoc on request, arrow constants, one-liners, classes, methods and getters", () => {
  const doc = sourceOf(FIXTURE, "withTypeLiteral", { withDoc: true });
  assert(
    doc.code.startsWith(
      "/** A function whose signature holds a type literal. */",
    ),
    doc.code,
  );
  assertEquals(
    sourceOf(FIXTURE, "ONE_LINER").code,
    "export const ONE_LINER = (x: number) => x + 1;",
  );
  const arrow = sourceOf(FIXTURE, "arrow").code;
  assert(arrow.startsWith("const arrow = (") && arrow.endsWith("};"), arrow);
  const cls = sourceOf(FIXTURE, "Counter").code;
  assert(cls.startsWith("export class Counter {") && cls.endsWith("}"), cls);
  // A method is dedented to column 0 and stops at its own closing brace.
  const method = sourceOf(FIXTURE, "Counter.increment").code;
  assertEquals(method.split("\n")[0], "increment(by = 1): number {");
  assertEquals(method.split("\n").at(-1), "}");
  assert(!method.includes("get value"), method);
  assertEquals(
    sourceOf(FIXTURE, "Counter.value").code.split("\n")[0],
    "get value(): number {",
  );
});

Deno.test("sourceOf: a missing file, name or member is an ArgumentError that says which", () => {
  assertThrows(
    () => sourceOf("lib/nope.ts", "x"),
    ArgumentError,
    "file lib/nope.ts does not exist",
  );
  assertThrows(
    () => sourceOf(FIXTURE, "missing"),
    ArgumentError,
    "has no top-level declaration named missing",
  );
  assertThrows(
    () => sourceOf(FIXTURE, "Counter.nope"),
    ArgumentError,
    "class Counter in",
  );
  assertThrows(
    () => sourceOf("/etc/passwd", "x"),
    ArgumentError,
    "relative to the repository root",
  );
  for (const outside of ["../../../etc/passwd", "lib/../../x.ts"]) {
    assertThrows(
      () => sourceOf(outside, "x"),
      ArgumentError,
      "must stay inside the repository",
    );
  }
  assertThrows(
    () => sourceOf(FIXTURE, "a b"),
    ArgumentError,
    "name must be a declaration name",
  );
  assertThrows(
    () => sourceOf(FIXTURE, "arrow", { withDocs: true } as never),
    ArgumentError,
    'unknown option "withDocs"',
    'did you mean "withDoc"',
  );
});

Deno.test("sourceBlock: markdown with a TypeScript fence the code cannot close, and plain text", () => {
  const bundle = (sourceBlock(FIXTURE, "withTypeLiteral") as unknown as Record<
    symbol,
    () => Record<string, string>
  >)[
    Symbol.for("Jupyter.display")
  ]();
  const md = bundle["text/markdown"];
  assert(md.includes(FIXTURE) && md.includes("withTypeLiteral"), md);
  const fence = md.match(/^(`{3,})typescript$/m);
  assert(fence, md);
  // The fixture holds a run of three backticks inside a string: the fence is longer.
  assert(fence[1].length >= 4, `fence ${fence[1]}`);
  assert(bundle["text/plain"].includes("export function withTypeLiteral("));
});
