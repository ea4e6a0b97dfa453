/**
 * Handouts and autograding (tasks/handout.ts, tasks/grade.ts) on the small
 * fixture notebooks in tests/fixtures/handout/, plus a leak check of the
 * student edition of every notebook in notebooks/.
 *
 * The tests that execute notebooks need Jupyter (found by tasks/setup.ts)
 * and permission to run it: `deno test ... --allow-run tests/handout.test.ts`.
 */
import { assert, assertEquals, assertThrows } from "./assert.ts";
import {
  type Cell,
  cellSource,
  type Notebook,
  readNotebook,
} from "../tasks/ipynb.ts";
import {
  analyzeNotebook,
  buildHandout,
  type CourseInfo,
  executeNotebook,
  findLeaks,
  HandoutError,
  listIpynb,
  loadMasters,
  nbgraderOf,
  parseRegions,
  studentEdition,
  verifyStudentRun,
} from "../tasks/handout.ts";
import {
  chooseMaster,
  gradeSubmission,
  outputNames,
  prepareSubmission,
} from "../tasks/grade.ts";

const root = new URL("../", import.meta.url).pathname;
const fixtures = `${root}tests/fixtures/handout`;
const mastersDir = `${fixtures}/masters`;
const out = `${root}build/test-handout`;
const course: CourseInfo = { name: "Test course", version: "9.8.7" };
const FIXTURE = "01_fixture.ipynb";

/** Every non-empty line strictly inside a BEGIN/END region of a master, found
 * here with its own scan (not the module's parser) so that a parser bug
 * cannot hide a leak. */
function answerLines(nb: Notebook): string[] {
  const lines: string[] = [];
  for (const cell of nb.cells) {
    let inside = false;
    for (const line of cellSource(cell).split("\n")) {
      if (/BEGIN (SOLUTION|HIDDEN TESTS)/.test(line)) inside = true;
      else if (/END (SOLUTION|HIDDEN TESTS)/.test(line)) inside = false;
      else if (inside && line.trim()) lines.push(line.trim());
    }
  }
  return lines;
}

/** Text of the master outside every region. */
function publicText(nb: Notebook): string {
  return nb.cells.map((cell) => {
    let inside = false;
    return cellSource(cell).split("\n").filter((line) => {
      if (/BEGIN (SOLUTION|HIDDEN TESTS)/.test(line)) inside = true;
      else if (/END (SOLUTION|HIDDEN TESTS)/.test(line)) inside = false;
      else return !inside;
      return false;
    }).join("\n");
  }).join("\n");
}

function allText(nb: Notebook): string {
  return nb.cells.map((c) => cellSource(c) + JSON.stringify(c.outputs ?? []))
    .join("\n");
}

function cellById(nb: Notebook, id: string): Cell {
  const c = nb.cells.find((c) => nbgraderOf(c)?.grade_id === id);
  assert(c !== undefined, `no cell with grade_id ${id}`);
  return c!;
}

function setSource(cell: Cell, text: string) {
  cell.source = text;
}

async function fixtureMaster() {
  const nb = await readNotebook(`${mastersDir}/${FIXTURE}`);
  return { nb, analysis: analyzeNotebook(nb, FIXTURE) };
}

let jupyterChecked = false;
async function tools(): Promise<{ jupyter: string; python: string }> {
  if (!jupyterChecked) {
    const run = await Deno.permissions.query({ name: "run" });
    assert(
      run.state === "granted",
      "these tests execute notebooks: run deno test with --allow-run",
    );
    jupyterChecked = true;
  }
  // Not setup(): the tests need Jupyter and the kernel, not the dataset.
  const { ensureDenoKernel, ensureJupyter } = await import("../tasks/setup.ts");
  const found = await ensureJupyter();
  await ensureDenoKernel(found.jupyter);
  return found;
}

async function python(): Promise<string> {
  return (await tools()).python;
}

// ---------------------------------------------------------------- regions

Deno.test("parseRegions finds solution and hidden-test regions with their lines", () => {
  const src = [
    "function f() {",
    "  // BEGIN SOLUTION",
    "  return 1;",
    "  // END SOLUTION",
    "}",
    "// BEGIN HIDDEN TESTS",
    "check();",
    "// END HIDDEN TESTS",
  ].join("\n");
  assertEquals(parseRegions(src, "code"), [
    { kind: "solution", begin: 1, end: 3 },
    { kind: "hidden", begin: 5, end: 7 },
  ]);
  assertEquals(
    parseRegions(
      "a\n<!-- BEGIN SOLUTION -->\nb\n<!-- END SOLUTION -->",
      "markdown",
    ),
    [
      { kind: "solution", begin: 1, end: 3 },
    ],
  );
});

Deno.test("parseRegions rejects unclosed, nested, unmatched and look-alike markers, naming file, cell and line", () => {
  const cases: [string, "code" | "markdown", RegExp][] = [
    [
      "// BEGIN SOLUTION\nx",
      "code",
      /nb\.ipynb: cell 4 line 1: BEGIN SOLUTION is never closed/,
    ],
    [
      "// BEGIN SOLUTION\n// BEGIN HIDDEN TESTS\n// END HIDDEN TESTS\n// END SOLUTION",
      "code",
      /cell 4 line 2: .*nested/,
    ],
    [
      "x\n// END SOLUTION",
      "code",
      /cell 4 line 2: END SOLUTION without a BEGIN/,
    ],
    [
      "// BEGIN SOLUTION\n// END HIDDEN TESTS",
      "code",
      /line 2: END HIDDEN TESTS closes a region .* another kind/,
    ],
    [
      "### BEGIN SOLUTION\nx\n### END SOLUTION",
      "code",
      /line 1: .*looks like a marker/,
    ],
    ["x = 1; // BEGIN SOLUTION", "code", /looks like a marker/],
    ["// BEGIN SOLUTIONS", "code", /looks like a marker/],
    [
      "<!-- BEGIN SOLUTION -->\nanswer",
      "markdown",
      /BEGIN SOLUTION is never closed/,
    ],
    [
      "// BEGIN SOLUTION\nanswer\n// END SOLUTION",
      "markdown",
      /looks like a marker/,
    ],
    ["<!-- BEGIN HIDDEN TESTS -->", "markdown", /looks like a marker/],
  ];
  for (const [src, type, re] of cases) {
    const e = assertThrows(
      () => parseRegions(src, type, "nb.ipynb", 4),
      HandoutError,
    );
    assert(
      re.test(e.message),
      `${JSON.stringify(src)}: message "${e.message}" !~ ${re}`,
    );
  }
});

Deno.test("malformed fixture notebooks are rejected with the file and the cell named", async () => {
  const expected: Record<string, RegExp> = {
    "unclosed.ipynb":
      /^unclosed\.ipynb: cell 1 line 2: BEGIN SOLUTION is never closed/,
    "nested.ipynb": /^nested\.ipynb: cell 1 line 3: .*nested/,
    "end_without_begin.ipynb":
      /^end_without_begin\.ipynb: cell 1 line 3: END HIDDEN TESTS without a BEGIN/,
    "region_without_metadata.ipynb":
      /^region_without_metadata\.ipynb: cell 1: has a BEGIN SOLUTION region but no nbgrader/,
    "metadata_without_region.ipynb":
      /^metadata_without_region\.ipynb: cell 1: .*without a BEGIN SOLUTION region/,
    "markdown_unclosed.ipynb":
      /^markdown_unclosed\.ipynb: cell 1 line 3: BEGIN SOLUTION is never closed/,
  };
  const files = await listIpynb(`${fixtures}/malformed`);
  assertEquals(files.sort(), Object.keys(expected).sort());
  for (const file of files) {
    const nb = await readNotebook(`${fixtures}/malformed/${file}`);
    let message = "";
    try {
      analyzeNotebook(nb, file);
    } catch (e) {
      assert(
        e instanceof HandoutError,
        `${file}: expected a HandoutError, got ${e}`,
      );
      message = (e as Error).message;
    }
    assert(
      expected[file].test(message),
      `${file}: message "${message}" !~ ${expected[file]}`,
    );
  }
  // The whole folder fails at once, listing every file, before anything is written.
  let all = "";
  try {
    await loadMasters(`${fixtures}/malformed`);
  } catch (e) {
    all = (e as Error).message;
  }
  for (const file of files) {
    assert(all.includes(file), `loadMasters did not report ${file}:\n${all}`);
  }
});

Deno.test("analyzeNotebook rejects missing points, a check without its solution and duplicate ids", async () => {
  const { nb } = await fixtureMaster();
  const broken = (edit: (nb: Notebook) => void) => {
    const copy = structuredClone(nb);
    edit(copy);
    return () => analyzeNotebook(copy, "x.ipynb");
  };
  assertThrows(
    broken((c) => delete nbgraderOf(cellById(c, "f1-add-check"))!.points),
    HandoutError,
    "needs nbgrader points",
  );
  assertThrows(
    broken((c) => nbgraderOf(cellById(c, "f1-add"))!.grade_id = "f1-other"),
    HandoutError,
    'no code solution cell with grade_id "f1-add"',
  );
  assertThrows(
    broken((c) => nbgraderOf(cellById(c, "f1-square"))!.grade_id = "f1-add"),
    HandoutError,
    "is also used by cell",
  );
  assertThrows(
    broken((c) =>
      setSource(
        cellById(c, "f1-add-check"),
        'await checkExercise("f1-typo", () => {});',
      )
    ),
    HandoutError,
    'must call checkExercise("f1-add"',
  );
  assertThrows(
    broken((c) =>
      c.cells.splice(c.cells.indexOf(cellById(c, "f1-add-check")), 1)
    ),
    HandoutError,
    'exercise "f1-add" has no check cell',
  );
});

// ---------------------------------------------------------------- student edition

Deno.test("student edition: no answer or hidden-test line, stubs with the id, outputs cleared, header", async () => {
  const { nb, analysis } = await fixtureMaster();
  assertEquals(analysis.exercises.map((e) => [e.id, e.kind, e.points]), [
    ["f1-add", "code", 2],
    ["f1-square", "code", 3],
    ["f1-why", "written", 0],
  ]);
  // Outputs in the master must not survive either.
  const withOutputs = structuredClone(nb);
  withOutputs.cells[1].outputs = [{
    output_type: "stream",
    name: "stdout",
    text: "fixture-secret-output",
  }];
  withOutputs.cells[1].execution_count = 3;
  const student = studentEdition(withOutputs, analysis, course);
  const text = allText(student);
  const secrets = answerLines(nb);
  assert(
    secrets.length >= 6,
    `expected the fixture's answer lines, found ${secrets.length}`,
  );
  for (const line of secrets) {
    assert(
      !text.includes(line),
      `student edition contains answer line ${line}`,
    );
  }
  for (
    const marker of [
      "fixture-secret",
      "fixture-hidden",
      "BEGIN",
      "END SOLUTION",
    ]
  ) {
    assert(!text.includes(marker), `student edition contains "${marker}"`);
  }
  for (const c of student.cells) {
    if (c.cell_type === "code") {
      assertEquals(c.outputs, []);
      assertEquals(c.execution_count, null);
    }
  }
  assertEquals(
    cellSource(cellById(student, "f1-add")),
    'function addTwo(a: number, b: number): number {\n  // YOUR CODE HERE\n  throw new Error("Exercise f1-add: not implemented");\n}',
  );
  assert(
    cellSource(cellById(student, "f1-why")).includes("write it here"),
    "written answer prompt missing",
  );
  // The visible tests stay, so students can check themselves.
  assert(
    cellSource(cellById(student, "f1-add-check")).includes(
      "expectClose(addTwo(2, 3), 5",
    ),
    "visible test removed",
  );
  const header = cellSource(student.cells[0]);
  for (
    const s of [
      "Test course",
      "9.8.7",
      "`f1-add` | code | 2",
      "`f1-square` | code | 3",
      "5 points",
    ]
  ) {
    assert(header.includes(s), `header lacks "${s}":\n${header}`);
  }
  assertEquals(student.cells.length, nb.cells.length + 1);
});

Deno.test("findLeaks reports an answer line that reaches the student edition", async () => {
  const { nb, analysis } = await fixtureMaster();
  const student = studentEdition(nb, analysis, course);
  assertEquals(findLeaks(nb, analysis, student), []);
  const leaky = structuredClone(student);
  leaky.cells.push({
    cell_type: "markdown",
    metadata: {},
    source: "hint: return tf.mul(x, x); // fixture-secret-square",
  });
  const leaks = findLeaks(nb, analysis, leaky);
  assertEquals(leaks.map((l) => l.cell), [analysis.exercises[1].solutionCell]);
});

Deno.test("student edition of every notebook in notebooks/ contains no answer text", async () => {
  const files = await listIpynb(`${root}notebooks`);
  const masters = await loadMasters(`${root}notebooks`);
  assertEquals(masters.map((m) => m.file), files);
  for (const m of masters) {
    const student = studentEdition(m.nb, m.analysis, course);
    const text = allText(student);
    const shared = publicText(m.nb);
    for (const line of answerLines(m.nb)) {
      // A line that the master also shows outside every region (e.g. `}`) is not an answer.
      if (shared.includes(line)) continue;
      assert(
        !text.includes(line),
        `${m.file}: student edition contains answer line ${
          JSON.stringify(line)
        }`,
      );
    }
    for (const c of student.cells) {
      assertEquals(
        c.outputs ?? [],
        [],
        `${m.file}: outputs left in the student edition`,
      );
    }
  }
});

// ---------------------------------------------------------------- execution (Jupyter)

Deno.test("handout: the student edition runs from its own folder; only checks fail, as not implemented", async () => {
  const result = await buildHandout({
    mastersDir,
    outDir: `${out}/edition`,
    course,
    execute: true,
    html: true,
    verify: true,
    quick: true,
    tools: await tools(),
    timeout: 60,
    log: () => {},
  });
  assertEquals(result.problems, []);
  // Independently of verifyStudentRun: run it again and look at every error.
  const student = `${out}/edition/student/notebooks/${FIXTURE}`;
  const executed = `${out}/edition/student-run.ipynb`;
  const report = await executeNotebook(await python(), student, executed, {
    cwd: `${out}/edition/student/notebooks`,
    timeout: 60,
    quick: true,
    allowErrors: true,
  });
  assertEquals(report.stopped, null);
  const nb = await readNotebook(executed);
  const checks = [cellById(nb, "f1-add-check"), cellById(nb, "f1-square-check")]
    .map((c) => nb.cells.indexOf(c));
  assertEquals((report.errors ?? []).map((e) => e.cell), checks);
  for (const e of report.errors ?? []) {
    assert(/not implemented yet/.test(e.evalue), e.evalue);
  }
  assertEquals(verifyStudentRun(FIXTURE, nb, report), []);
  // The last cell ran after the failed checks.
  assert(
    JSON.stringify(nb.cells.at(-1)!.outputs).includes("sum of xs"),
    "the cell after the exercises did not run",
  );
  // Instructor edition: executed master with outputs; HTML of both editions; manifest.
  const instructor = await readNotebook(
    `${out}/edition/instructor/notebooks/${FIXTURE}`,
  );
  assert(
    JSON.stringify(instructor.cells).includes("Exercise f1-square: correct"),
    "instructor edition lacks outputs",
  );
  for (const ed of ["student", "instructor"]) {
    const html = await Deno.readTextFile(
      `${out}/edition/html/${ed}/${FIXTURE.replace(".ipynb", ".html")}`,
    );
    assert(html.includes("addTwo"), `${ed} HTML lacks the notebook text`);
    assertEquals(html.includes("fixture-secret-add"), ed === "instructor");
  }
  const manifest = JSON.parse(
    await Deno.readTextFile(`${out}/edition/manifest.json`),
  );
  assertEquals(manifest.totalPoints, 5);
  const studentNb = await readNotebook(student);
  for (const e of manifest.notebooks[0].exercises) {
    assertEquals(
      nbgraderOf(studentNb.cells[e.studentSolutionCell])?.grade_id,
      e.id,
    );
    if (e.studentCheckCell !== null) {
      assertEquals(
        nbgraderOf(studentNb.cells[e.studentCheckCell])?.grade_id,
        `${e.id}-check`,
      );
    }
  }
});

Deno.test("grade: master scores full points, untouched student edition zero, one solved exercise exactly its points", async () => {
  const py = await python();
  const { nb, analysis } = await fixtureMaster();
  const masters = [{ file: FIXTURE, nb, analysis }];
  const dir = `${out}/grade`;
  await Deno.mkdir(dir, { recursive: true });
  const student = studentEdition(nb, analysis, course);
  const oneSolved = structuredClone(student);
  setSource(
    cellById(oneSolved, "f1-square"),
    "function squareAll(x: tf.Tensor): tf.Tensor {\n  return x.square();\n}",
  );
  const subs: Record<string, Notebook> = { student, oneSolved };
  for (const [name, s] of Object.entries(subs)) {
    await Deno.writeTextFile(`${dir}/${name}.ipynb`, JSON.stringify(s));
  }
  const opts = { masters, outDir: `${dir}/reports`, timeout: 60, python: py };
  const master = await gradeSubmission(`${mastersDir}/${FIXTURE}`, {
    ...opts,
    name: "master",
  });
  assertEquals([master.score, master.maxScore], [5, 5]);
  assertEquals(master.notes, []);
  assertEquals(master.exercises.map((e) => e.status), [
    "pass",
    "pass",
    "manual",
  ]);
  const zero = await gradeSubmission(`${dir}/student.ipynb`, opts);
  assertEquals([zero.score, zero.maxScore], [0, 5]);
  assertEquals(zero.exercises.map((e) => e.status), [
    "not implemented",
    "not implemented",
    "manual",
  ]);
  const one = await gradeSubmission(`${dir}/oneSolved.ipynb`, opts);
  assertEquals(one.score, 3);
  assertEquals(one.exercises.map((e) => [e.id, e.points]), [["f1-add", 0], [
    "f1-square",
    3,
  ], ["f1-why", 0]]);
  // The JSON report is on disk.
  const saved = JSON.parse(
    await Deno.readTextFile(`${dir}/reports/oneSolved.json`),
  );
  assertEquals([saved.score, saved.master], [3, FIXTURE]);
});

Deno.test("grade: hidden tests are re-inserted and decide the score", async () => {
  const py = await python();
  const { nb, analysis } = await fixtureMaster();
  const student = studentEdition(nb, analysis, course);
  // Passes the visible test addTwo(2, 3) = 5 but not the hidden addTwo(-7, 7) = 0.
  setSource(
    cellById(student, "f1-add"),
    "function addTwo(a: number, b: number): number {\n  return Math.abs(a) + Math.abs(b);\n}",
  );
  const dir = `${out}/hidden`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/cheat.ipynb`, JSON.stringify(student));
  const r = await gradeSubmission(`${dir}/cheat.ipynb`, {
    masters: [{ file: FIXTURE, nb, analysis }],
    outDir: dir,
    timeout: 60,
    python: py,
  });
  assertEquals(r.exercises[0].status, "fail");
  assert(
    r.exercises[0].message.includes("addTwo(-7, 7) should be 0"),
    r.exercises[0].message,
  );
  assertEquals(r.notes, []);
});

Deno.test("grade: edited and deleted check cells are restored from the master and reported", async () => {
  const py = await python();
  const masters = await loadMasters(mastersDir);
  const r = await gradeSubmission(
    `${fixtures}/submissions/01_fixture_edited_check.ipynb`,
    {
      masters,
      outDir: `${out}/edited`,
      timeout: 60,
      python: py,
    },
  );
  assertEquals(r.master, FIXTURE);
  // f1-add is solved (2 points); f1-square returns x unsquared: its restored check fails.
  assertEquals(r.exercises.map((e) => e.status), ["pass", "fail", "manual"]);
  assertEquals(r.score, 2);
  assert(
    r.notes.some((n) => /f1-add-check .*was edited/.test(n)),
    r.notes.join("\n"),
  );
  assert(
    r.notes.some((n) => /f1-square-check was missing/.test(n)),
    r.notes.join("\n"),
  );
});

Deno.test("grade: an infinite loop is stopped by the timeout and scores zero; a kernel crash too", async () => {
  const py = await python();
  const { nb, analysis } = await fixtureMaster();
  const masters = [{ file: FIXTURE, nb, analysis }];
  const loop = await gradeSubmission(
    `${fixtures}/submissions/01_fixture_infinite_loop.ipynb`,
    {
      masters,
      outDir: `${out}/loop`,
      timeout: 5,
      python: py,
    },
  );
  assertEquals(loop.exercises.map((e) => e.status), [
    "timeout",
    "not implemented",
    "manual",
  ]);
  assertEquals(loop.score, 0);
  assertEquals(loop.notes.length, 1, loop.notes.join("\n"));
  assert(
    loop.notes.some((n) => n.includes("f1-add-check") && n.includes("5s")),
    loop.notes.join("\n"),
  );

  const student = studentEdition(nb, analysis, course);
  setSource(
    cellById(student, "f1-square"),
    "function squareAll(x: tf.Tensor): tf.Tensor {\n  return x.square();\n}",
  );
  setSource(
    cellById(student, "f1-add"),
    "function addTwo(a: number, b: number): number {\n  Deno.exit(3);\n}",
  );
  await Deno.mkdir(`${out}/crash`, { recursive: true });
  await Deno.writeTextFile(`${out}/crash/crash.ipynb`, JSON.stringify(student));
  const crash = await gradeSubmission(`${out}/crash/crash.ipynb`, {
    masters,
    outDir: `${out}/crash`,
    timeout: 30,
    python: py,
  });
  assertEquals(crash.exercises.map((e) => e.status), [
    "crash",
    "pass",
    "manual",
  ]);
  assertEquals(crash.score, 3);
});

Deno.test("grade: unreadable and unmatched submissions are reported, not thrown", async () => {
  const { nb, analysis } = await fixtureMaster();
  const masters = [{ file: FIXTURE, nb, analysis }];
  const dir = `${out}/bad`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/garbage.ipynb`, "{not json");
  const r = await gradeSubmission(`${dir}/garbage.ipynb`, {
    masters,
    outDir: dir,
    python: "unused",
  });
  assertEquals(r.score, 0);
  assert(r.notes[0].includes("could not read the submission"), r.notes[0]);
  const empty: Notebook = {
    cells: [],
    metadata: {},
    nbformat: 4,
    nbformat_minor: 5,
  };
  await Deno.writeTextFile(`${dir}/other.ipynb`, JSON.stringify(empty));
  const u = await gradeSubmission(`${dir}/other.ipynb`, {
    masters,
    outDir: dir,
    python: "unused",
  });
  assertEquals(u.master, null);
  assert(u.notes[0].includes("no master notebook matches"), u.notes[0]);
});

Deno.test("chooseMaster, prepareSubmission and outputNames", async () => {
  const { nb, analysis } = await fixtureMaster();
  const m = { file: FIXTURE, nb, analysis };
  const other = {
    file: "02_other.ipynb",
    nb: { ...nb, cells: [] },
    analysis: { file: "02_other.ipynb", exercises: [], regions: [] },
  };
  const student = studentEdition(nb, analysis, course);
  assertEquals(chooseMaster(student, "alice.ipynb", [other, m])?.file, FIXTURE);
  assertEquals(
    chooseMaster({ ...student, cells: [] }, "x/bob_01_fixture.ipynb", [
      other,
      m,
    ])?.file,
    FIXTURE,
  );
  // An untouched student edition needs no repair; its check cells get the hidden tests back.
  const p = prepareSubmission(student, m);
  assertEquals(p.notes, []);
  assert(
    cellSource(cellById(p.nb, "f1-add-check")).includes("fixture-hidden-add"),
    "hidden test not re-inserted",
  );
  // A duplicated check cell is dropped.
  const dup = structuredClone(student);
  dup.cells.push(structuredClone(cellById(dup, "f1-add-check")));
  const d = prepareSubmission(dup, m);
  assertEquals(
    d.nb.cells.filter((c) => nbgraderOf(c)?.grade_id === "f1-add-check").length,
    1,
  );
  assert(d.notes.some((n) => n.includes("repeats")), d.notes.join("\n"));
  assertEquals(outputNames(["a/x.ipynb", "b/x.ipynb", "c/y.ipynb"]), [
    "a_x",
    "b_x",
    "y",
  ]);
});
