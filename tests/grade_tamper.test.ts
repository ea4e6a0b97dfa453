/**
 * Grading cannot be gamed (issue 18): submissions in
 * tests/fixtures/grading/tamper/ that redefine checkExercise or
 * expectClose, patch the built-ins and tf functions the checks use (before
 * the checks or while they run), edit the check cells or forge check records
 * score nothing, while an honest submission scores full. Also the pure
 * parts: comparing records, reading the master's imports, the grading
 * edition.
 *
 * Needs Jupyter and the Deno kernel (`deno test --allow-run ...`).
 */
import { assert, assertEquals } from "./assert.ts";
import { cellSource, type Notebook } from "../tasks/ipynb.ts";
import { loadMasters } from "../tasks/handout.ts";
import {
  type CheckRecord,
  type GradeReport,
  gradeSubmission,
  gradingEdition,
  inParallel,
  judgeRecords,
  masterImports,
} from "../tasks/grade.ts";

const root = new URL("../", import.meta.url).pathname;
const fixtures = `${root}tests/fixtures/grading`;
const out = `${root}build/test-grading/tamper`;

async function python(): Promise<string> {
  const { ensureDenoKernel, ensureJupyter } = await import("../tasks/setup.ts");
  const found = await ensureJupyter();
  await ensureDenoKernel(found.jupyter);
  return found.python;
}

const close = (
  fields: Partial<CheckRecord>,
): CheckRecord => ({
  exercise: "x",
  seq: 0,
  kind: "close",
  what: "f(1)",
  ...fields,
});

Deno.test("judgeRecords: expectClose's rule, shapes, sizes, counts and kinds", () => {
  const want = [
    close({ expected: [1, 2], expectedShape: [2], rtol: 0, atol: 0.1 }),
    { ...close({ what: "holds" }), kind: "expect" as const },
  ];
  const ok = [
    close({ actual: [1.05, 2], actualShape: [2] }),
    { ...close({}), kind: "expect" as const, value: true },
  ];
  assertEquals(judgeRecords("x", want, ok), null);
  assertEquals(
    judgeRecords("x", want, [close({ actual: [1.2, 2] }), ok[1]]),
    "f(1): expected [1, 2], got [1.2, 2] (first difference at index 0: 1.2 vs 1)",
  );
  assertEquals(
    judgeRecords("x", want, [
      close({ actual: [1, 2], actualShape: [2, 1] }),
      ok[1],
    ]),
    "f(1): expected shape [2], got [2,1]",
  );
  assertEquals(
    judgeRecords("x", want, [close({ actual: [1] }), ok[1]]),
    "f(1): expected 2 values, got 1",
  );
  assertEquals(
    judgeRecords("x", want, [ok[0], { ...ok[1], value: false }]),
    "holds",
  );
  // NaN is never close, not even to NaN; infinities travel as strings.
  assert(
    judgeRecords("x", [close({ expected: ["NaN"] })], [
      close({ actual: ["NaN"] }),
    ])!
      .includes("expected NaN, got NaN"),
  );
  assert(
    judgeRecords("x", want, [...ok, ok[1]])!.startsWith(
      "the check gave 3 results where the master's gives 2",
    ),
  );
  assertEquals(
    judgeRecords("x", want, [ok[1], ok[0]]),
    "result 1 of the check is an expect, the master's a close",
  );
  assert(
    judgeRecords("x", want, [{ ...ok[0], exercise: "y" }, ok[1]])!.includes(
      'recorded for "y"',
    ),
  );
  assertEquals(
    judgeRecords("x", want, [close({ actual: ["1"] }), ok[1]]),
    "f(1): unreadable record",
  );
});

Deno.test("masterImports and gradingEdition: the checks run with the master's names", async () => {
  const [m] = await loadMasters(`${fixtures}/masters`);
  assertEquals(
    masterImports(m.nb).map((b) => [b.name, b.specifier, b.imported]),
    [
      ["tf", "@tensorflow/tfjs", "*"],
      ["checkExercise", "../lib/mod.ts", "checkExercise"],
      ["expect", "../lib/mod.ts", "expect"],
      ["expectClose", "../lib/mod.ts", "expectClose"],
      ["initBackend", "../lib/mod.ts", "initBackend"],
    ],
  );
  const odd: Notebook = {
    ...m.nb,
    cells: [{
      cell_type: "code",
      metadata: {},
      source:
        'import D, { a, b as c, type T } from "x";\nimport type { U } from "y";\nimport * as ns from "z";',
    }],
  };
  assertEquals(
    masterImports(odd).map((b) => `${b.name}=${b.specifier}:${b.imported}`),
    ["D=x:default", "a=x:a", "c=x:b", "ns=z:*"],
  );
  const edition = gradingEdition(m.nb, m, "/course");
  assertEquals(edition.cells.length, m.nb.cells.length + 1);
  const setup = cellSource(edition.cells[0]);
  assert(setup.includes('await import("file:///course/lib/exercise.ts")'));
  assert(setup.includes('"tf": m0, "initBackend": m1["initBackend"]'), setup);
  const check = cellSource(
    edition.cells[m.analysis.exercises[0].checkCell! + 1],
  );
  assert(
    check.includes(
      'const { tf, initBackend, checkExercise, expect, expectClose } = __courseGrading__.check("g-add");',
    ),
    check,
  );
  assert(check.trimEnd().endsWith("}}"), check);
});

Deno.test("grade: redefinitions, patched built-ins, edited checks and forged records score nothing; honest work scores full", async () => {
  const py = await python();
  const masters = await loadMasters(`${fixtures}/masters`);
  const names = [
    "honest",
    "redefine_check",
    "wrapper",
    "patch_builtins",
    "patch_inside",
    "edited_check",
    "forged",
    "restart_check",
  ];
  const started = performance.now();
  const reports = await inParallel(
    names,
    2,
    (n) =>
      gradeSubmission(`${fixtures}/tamper/${n}.ipynb`, {
        masters,
        outDir: out,
        timeout: 60,
        python: py,
      }),
  );
  const by: Record<string, GradeReport> = {};
  reports.forEach((r) => by[r.name] = r);
  const statuses = (n: string) => by[n].exercises.map((e) => e.status);
  const messages = (n: string) => by[n].exercises.map((e) => e.message);
  const summary = reports.map((r) => `${r.name} ${r.score}/${r.maxScore}`);
  console.log(
    `  ${summary.join(", ")} (${
      ((performance.now() - started) / 1000).toFixed(0)
    } s)`,
  );

  assertEquals([by.honest.score, by.honest.maxScore], [8, 8]);
  assertEquals(statuses("honest"), ["pass", "pass", "pass"]);
  assertEquals(by.honest.notes, []);
  for (const n of names.slice(1, -1)) {
    assertEquals(by[n].score, 0, `${n}: ${JSON.stringify(by[n], null, 1)}`);
    assertEquals(by[n].maxScore, 8);
  }
  // The attack of issue 18: 8/8 before; the checks now run the real checkExercise.
  assertEquals(statuses("redefine_check"), Array(3).fill("not implemented"));
  // expectClose(expected, expected): the check cells get the course's own.
  assertEquals(messages("wrapper"), [
    "addTwo(2, 3): expected 5, got 0 (first difference at index 0: 0 vs 5)",
    "squareAll([1, -2, 3]): expected [1, 4, 9], got [0, 0, 0] (first difference at index 0: 0 vs 1)",
    "no negative values",
  ]);
  // Math.abs, Array.prototype.every and Tensor.prototype.dataSync patched
  // before the checks: put back when each check starts, and said so.
  assertEquals(statuses("patch_builtins"), Array(3).fill("fail"));
  assert(
    by.patch_builtins.notes.some((n) =>
      n.startsWith("before check g-add the grader put back") &&
      ["Math.abs", "Array.prototype.every", "tf.Tensor.prototype.dataSync"]
        .every((b) => n.includes(b))
    ),
    by.patch_builtins.notes.join("\n"),
  );
  // The same patches made while the check runs: the values are compared
  // here, not in the kernel (the patched `every` does fake the expect of
  // g-relu, but its values fail).
  assertEquals(messages("patch_inside"), [
    "addTwo(2, 3): expected 5, got 0 (first difference at index 0: 0 vs 5)",
    "squareAll([1, -2, 3]): expected [1, 4, 9], got [0, 0, 0] (first difference at index 0: 0 vs 1)",
    "myRelu([-1, 2, -3, 4]): expected [0, 2, 0, 4], got [-1, 2, -3, 4] (first difference at index 0: -1 vs 0)",
  ]);
  // Check cells printing "correct": replaced by the master's, reported.
  assertEquals(statuses("edited_check"), Array(3).fill("not implemented"));
  assertEquals(
    by.edited_check.notes.filter((n) => /was edited/.test(n)).length,
    3,
  );
  // A record without the run's token is ignored; one made by calling the real
  // expectClose is genuine but one too many (g-relu's answer is right; it is
  // called twice).
  assertEquals(statuses("forged"), ["fail", "fail", "fail"]);
  assert(
    by.forged.notes.some((n) => n.includes("without this run's token")),
    by.forged.notes.join("\n"),
  );
  assert(
    messages("forged")[2].startsWith(
      "the check gave 5 results where the master's gives 3",
    ),
    messages("forged")[2],
  );
  // Restarting the check from the answer: that check's results are dropped.
  assertEquals(statuses("restart_check"), ["fail", "pass", "pass"]);
  assert(messages("restart_check")[0].includes("started again"));
  // The reports on disk say the same.
  const saved = JSON.parse(
    await Deno.readTextFile(`${out}/redefine_check.json`),
  );
  assertEquals([saved.score, saved.maxScore], [0, 8]);
  assertEquals("seconds" in saved, false);
});
