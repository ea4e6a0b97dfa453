/**
 * Course handouts from the master notebooks (docs/exercises.md): the
 * student edition (answers replaced by stubs, hidden tests removed, outputs
 * cleared, a header cell with the course, version and points), the
 * instructor edition (the master executed with outputs), HTML of both, and
 * a manifest of the exercises. The markers are nbgrader's.
 *
 * The pure functions (`parseRegions`, `analyzeNotebook`, `studentEdition`,
 * `findLeaks`) are what `tasks/grade.ts` and the tests build on; the
 * `deno task handout` entry writes everything into build/handout/:
 *
 * ```
 * build/handout/student/            a copy of the repo for students: lib/, tasks/,
 *   notebooks/NN_*.ipynb            deno.json, data subset, and the student notebooks
 * build/handout/instructor/notebooks/NN_*.ipynb   masters executed with outputs
 * build/handout/html/{student,instructor}/*.html
 * build/handout/manifest.json
 * ```
 *
 * usage: deno task handout [--quick] [--no-execute] [--no-html] [--verify]
 *          [--timeout=SECONDS] [--out=DIR] [--course=NAME] [NAME...]
 *
 * @module
 */
import {
  type Cell,
  cellSource,
  listIpynb,
  type Notebook,
  readNotebook,
  toSourceLines,
  writeNotebook,
} from "./ipynb.ts";
import { renderHtml } from "./render.ts";

const root = new URL("../", import.meta.url).pathname;

/** A malformed master: the message names the notebook file and the cell index (0-based). */
export class HandoutError extends Error {
  /** Creates the error; `cell` is the 0-based cell index, `line` 1-based within the cell. */
  constructor(
    readonly file: string,
    readonly cell: number | null,
    detail: string,
    readonly line: number | null = null,
  ) {
    super(
      `${file}${cell === null ? "" : `: cell ${cell}`}${
        line === null ? "" : ` line ${line}`
      }: ${detail}`,
    );
    this.name = "HandoutError";
  }
}

/** One marked region of a cell: lines `begin`..`end` (0-based, both marker lines included). */
export interface Region {
  kind: "solution" | "hidden";
  begin: number;
  end: number;
}

const CODE_MARKER = /^\s*\/\/\s*(BEGIN|END) (SOLUTION|HIDDEN TESTS)\s*$/;
const MARKDOWN_MARKER = /^\s*<!--\s*(BEGIN|END) (SOLUTION)\s*-->\s*$/;
// Anything that looks like a marker but is not one exactly: refused, because a
// mistyped BEGIN would otherwise hand the answer out silently.
const MARKER_LIKE = /(BEGIN|END)\s+(SOLUTIONS?|HIDDEN\s+TESTS?)\b/i;

/**
 * Finds the solution and hidden-test regions of one cell's source. Throws
 * `HandoutError` (naming `file` and `cellIndex`) for an unclosed, nested or
 * unmatched region, a hidden-test region in markdown, or a line that looks
 * like a marker but is not one exactly.
 */
export function parseRegions(
  source: string,
  cellType: "code" | "markdown",
  file = "<notebook>",
  cellIndex = 0,
): Region[] {
  const lines = source.split("\n");
  const regions: Region[] = [];
  let open: { kind: Region["kind"]; begin: number } | null = null;
  lines.forEach((line, i) => {
    const fail = (detail: string): never => {
      throw new HandoutError(file, cellIndex, detail, i + 1);
    };
    const m = (cellType === "code" ? CODE_MARKER : MARKDOWN_MARKER).exec(line);
    if (!m) {
      if (MARKER_LIKE.test(line)) {
        const want = cellType === "code"
          ? "`// BEGIN SOLUTION`, `// END SOLUTION`, `// BEGIN HIDDEN TESTS` or `// END HIDDEN TESTS`"
          : "`<!-- BEGIN SOLUTION -->` or `<!-- END SOLUTION -->`";
        fail(
          `"${line.trim()}" looks like a marker but is not one; in a ${cellType} cell write ${want} alone on its line`,
        );
      }
      return;
    }
    const kind: Region["kind"] = m[2] === "SOLUTION" ? "solution" : "hidden";
    const name = kind === "solution" ? "SOLUTION" : "HIDDEN TESTS";
    if (m[1] === "BEGIN") {
      if (open) {
        fail(
          `BEGIN ${name} inside the ${
            open.kind === "solution" ? "SOLUTION" : "HIDDEN TESTS"
          } region ` +
            `opened at line ${open.begin + 1}: regions cannot be nested`,
        );
      }
      open = { kind, begin: i };
    } else {
      if (!open) fail(`END ${name} without a BEGIN ${name} before it`);
      if (open!.kind !== kind) {
        fail(
          `END ${name} closes a region opened at line ${
            open!.begin + 1
          } of another kind`,
        );
      }
      regions.push({ kind, begin: open!.begin, end: i });
      open = null;
    }
  });
  if (open !== null) {
    const o = open as { kind: Region["kind"]; begin: number };
    throw new HandoutError(
      file,
      cellIndex,
      `BEGIN ${
        o.kind === "solution" ? "SOLUTION" : "HIDDEN TESTS"
      } is never closed`,
      o.begin + 1,
    );
  }
  return regions;
}

/** The nbgrader metadata of a cell, or undefined. */
export function nbgraderOf(cell: Cell): Record<string, unknown> | undefined {
  const m = (cell.metadata ?? {}).nbgrader;
  return m && typeof m === "object" ? m as Record<string, unknown> : undefined;
}

/** One exercise of a master notebook. Cell indices are 0-based in the master. */
export interface Exercise {
  /** The solution cell's grade_id, e.g. `01-assign`. */
  id: string;
  /** `code`: autograded by its check cell; `written`: a markdown answer, graded by hand. */
  kind: "code" | "written";
  /** Points of the check cell (code); of the answer cell when it has `grade: true` (written), else 0. */
  points: number;
  solutionCell: number;
  /** The check cell (grade_id `<id>-check`); null for written answers. */
  checkCell: number | null;
}

/** A validated master notebook: its exercises and every cell's regions. */
export interface NotebookAnalysis {
  file: string;
  exercises: Exercise[];
  /** Regions per cell index (empty arrays for cells without markers). */
  regions: Region[][];
}

/**
 * Validates a master notebook against docs/exercises.md and lists its
 * exercises. Every problem is a `HandoutError` naming the file and the cell:
 * malformed regions, a solution region in a cell without nbgrader solution
 * metadata (or solution metadata without a region: the whole cell would be
 * handed out), hidden tests outside a check cell, missing or duplicate
 * grade_ids, points, a check cell without its solution cell or not calling
 * `checkExercise("<id>", ...)`.
 */
export function analyzeNotebook(nb: Notebook, file: string): NotebookAnalysis {
  const regions: Region[][] = [];
  const exercises: Exercise[] = [];
  const seen = new Map<string, number>();
  nb.cells.forEach((cell, index) => {
    const fail = (detail: string): never => {
      throw new HandoutError(file, index, detail);
    };
    const type = cell.cell_type === "code" ? "code" : "markdown";
    const rs = cell.cell_type === "raw"
      ? []
      : parseRegions(cellSource(cell), type, file, index);
    regions.push(rs);
    const meta = nbgraderOf(cell);
    const hasSolution = rs.some((r) => r.kind === "solution");
    const hasHidden = rs.some((r) => r.kind === "hidden");
    const isSolution = meta?.solution === true;
    const isGrade = meta?.grade === true;
    if (hasSolution && !isSolution) {
      fail(
        "has a BEGIN SOLUTION region but no nbgrader solution metadata " +
          '({"nbgrader": {"solution": true, "grade_id": ...}}); refusing to guess whether it is an answer',
      );
    }
    if (hasHidden && !(isGrade && type === "code")) {
      fail(
        "has a HIDDEN TESTS region but is not a check cell (code cell with nbgrader grade: true)",
      );
    }
    if (!isSolution && !isGrade) return;
    const id = meta?.grade_id;
    if (typeof id !== "string" || !/^[A-Za-z0-9][\w.-]*$/.test(id)) {
      fail(
        `nbgrader grade_id must be a non-empty id (letters, digits, - _ .), got ${
          JSON.stringify(id)
        }`,
      );
    }
    const gid = id as string;
    if (seen.has(gid)) {
      fail(`grade_id "${gid}" is also used by cell ${seen.get(gid)}`);
    }
    seen.set(gid, index);
    if (isSolution && isGrade && type === "code") {
      fail(
        `is both a solution and a check cell; put the checks of "${gid}" in the next cell`,
      );
    }
    const points = meta?.points;
    if (isSolution) {
      if (!hasSolution) {
        fail(
          `is an nbgrader solution cell ("${gid}") without a BEGIN SOLUTION region; ` +
            "mark the answer so that only it is removed",
        );
      }
      let pts = 0;
      if (isGrade) {
        if (typeof points !== "number" || !(points >= 0)) {
          fail(`points must be a number >= 0, got ${points}`);
        }
        pts = points as number;
      }
      exercises.push({
        id: gid,
        kind: type === "code" ? "code" : "written",
        points: pts,
        solutionCell: index,
        checkCell: null,
      });
      return;
    }
    // A check cell.
    if (type !== "code") fail(`check cell "${gid}" must be a code cell`);
    if (!gid.endsWith("-check")) {
      fail(
        `a check cell's grade_id must be "<exercise id>-check", got "${gid}"`,
      );
    }
    if (
      typeof points !== "number" || !(points >= 0) || !Number.isFinite(points)
    ) {
      fail(
        `check cell "${gid}" needs nbgrader points (a number >= 0), got ${
          JSON.stringify(points)
        }`,
      );
    }
    const exId = gid.slice(0, -"-check".length);
    const ex = exercises.find((e) => e.id === exId);
    if (!ex || ex.kind !== "code") {
      fail(
        `check cell "${gid}" has no code solution cell with grade_id "${exId}" before it`,
      );
    }
    if (ex!.checkCell !== null) {
      fail(
        `exercise "${exId}" already has a check cell (cell ${ex!.checkCell})`,
      );
    }
    const call = new RegExp(
      `checkExercise\\(\\s*["'\`]${exId.replace(/[.]/g, "\\.")}["'\`]`,
    );
    if (!call.test(cellSource(cell))) {
      fail(
        `check cell "${gid}" must call checkExercise("${exId}", ...) so that its result can be read`,
      );
    }
    ex!.checkCell = index;
    ex!.points = points as number;
  });
  for (const ex of exercises) {
    if (ex.kind === "code" && ex.checkCell === null) {
      throw new HandoutError(
        file,
        ex.solutionCell,
        `exercise "${ex.id}" has no check cell (a code cell with grade_id "${ex.id}-check" and points)`,
      );
    }
  }
  return { file, exercises, regions };
}

/** The stub that replaces a code solution region (indented like the BEGIN marker). */
export function codeStub(id: string, indent = ""): string[] {
  return [
    `${indent}// YOUR CODE HERE`,
    `${indent}throw new Error(${
      JSON.stringify(`Exercise ${id}: not implemented`)
    });`,
  ];
}

/** The prompt that replaces a written answer. */
export function answerPrompt(id: string): string {
  return `**Your answer (exercise \`${id}\`):** _write it here._`;
}

/**
 * A cell's source with its regions replaced: solution regions by the stub
 * (code) or the prompt (markdown), hidden-test regions removed.
 */
export function redactSource(
  source: string,
  regions: Region[],
  cellType: "code" | "markdown",
  id: string,
): string {
  if (regions.length === 0) return source;
  const lines = source.split("\n");
  const out: string[] = [];
  let next = 0;
  for (const r of regions) {
    out.push(...lines.slice(next, r.begin));
    if (r.kind === "solution") {
      const indent = /^\s*/.exec(lines[r.begin])![0];
      out.push(
        ...(cellType === "code" ? codeStub(id, indent) : [answerPrompt(id)]),
      );
    }
    next = r.end + 1;
  }
  out.push(...lines.slice(next));
  return out.join("\n");
}

/** Course name and version for the header cell. */
export interface CourseInfo {
  name: string;
  version: string;
}

/** Reads the course name and version from deno.json. */
export async function courseInfo(
  denoJson = `${root}deno.json`,
): Promise<CourseInfo> {
  const cfg = JSON.parse(await Deno.readTextFile(denoJson));
  return {
    name: String(cfg.name ?? "course"),
    version: String(cfg.version ?? "0.0.0"),
  };
}

/** The markdown header of a student notebook: course, version, exercises and points. */
export function headerCell(
  file: string,
  analysis: NotebookAnalysis,
  course: CourseInfo,
): Cell {
  const rows = analysis.exercises.map((e) =>
    `| \`${e.id}\` | ${e.kind === "code" ? "code" : "written answer"} | ${
      e.kind === "code" || e.points > 0 ? e.points : "not scored"
    } |`
  );
  const total = analysis.exercises.reduce((s, e) => s + e.points, 0);
  const text = [
    `# Student edition: \`${file}\``,
    "",
    `Course **${course.name}**, version **${course.version}**.`,
    "",
    analysis.exercises.length === 0 ? "This notebook has no exercises." : [
      `Exercises (${total} point${total === 1 ? "" : "s"} in total):`,
      "",
      "| exercise | kind | points |",
      "| --- | --- | --- |",
      ...rows,
      "",
      "Replace each `// YOUR CODE HERE` and the `throw` below it with your code, then run the check",
      "cell that follows: it says in plain words what is right or wrong. Do not edit the check cells:",
      "the grader uses its own copy (with more tests). Write the written answers where it says",
      "_write it here_. Hand in this notebook file.",
    ].join("\n"),
  ].join("\n");
  return {
    cell_type: "markdown",
    id: "handout-header",
    metadata: { handout: { header: true } },
    source: toSourceLines(text),
  };
}

/**
 * The student edition of a validated master: a header cell first, then every
 * cell with solution regions stubbed, written answers replaced by a prompt,
 * hidden tests removed and outputs cleared. Throws `HandoutError` if the
 * result would still contain a line of an answer (`findLeaks`).
 */
export function studentEdition(
  nb: Notebook,
  analysis: NotebookAnalysis,
  course: CourseInfo,
): Notebook {
  const idOf = (i: number) => String(nbgraderOf(nb.cells[i])?.grade_id ?? "");
  const cells: Cell[] = nb.cells.map((cell, i) => {
    const type = cell.cell_type === "code" ? "code" : "markdown";
    const source = cell.cell_type === "raw"
      ? cellSource(cell)
      : redactSource(cellSource(cell), analysis.regions[i], type, idOf(i));
    const metadata = { ...cell.metadata };
    delete metadata.execution;
    const out: Cell = { ...cell, metadata, source: toSourceLines(source) };
    if (cell.cell_type === "code") {
      out.outputs = [];
      out.execution_count = null;
    }
    return out;
  });
  const student: Notebook = {
    ...nb,
    cells: [headerCell(analysis.file, analysis, course), ...cells],
  };
  const leaks = findLeaks(nb, analysis, student);
  if (leaks.length) {
    throw new HandoutError(
      analysis.file,
      leaks[0].cell,
      `the student edition would contain answer text: ${
        JSON.stringify(leaks[0].line)
      }`,
    );
  }
  return student;
}

/** A line of an answer or hidden test found in a student edition. */
export interface Leak {
  /** The master cell the line comes from. */
  cell: number;
  line: string;
}

/**
 * Every line (trimmed, non-empty, not a marker) inside a solution or hidden
 * region of the master that occurs anywhere in `student` although it occurs
 * nowhere in the master's public text (the text outside all regions): such a
 * line can only have come from an answer.
 */
export function findLeaks(
  master: Notebook,
  analysis: NotebookAnalysis,
  student: Notebook,
): Leak[] {
  const publicParts: string[] = [];
  const secret: Leak[] = [];
  master.cells.forEach((cell, i) => {
    const lines = cellSource(cell).split("\n");
    const inside = new Set<number>();
    for (const r of analysis.regions[i] ?? []) {
      for (let k = r.begin; k <= r.end; k++) inside.add(k);
      for (let k = r.begin + 1; k < r.end; k++) {
        const t = lines[k].trim();
        if (t) secret.push({ cell: i, line: t });
      }
    }
    publicParts.push(lines.filter((_, k) => !inside.has(k)).join("\n"));
  });
  const publicText = publicParts.join("\n");
  const studentText = student.cells.map(cellSource).join("\n");
  return secret.filter((s) =>
    !publicText.includes(s.line) && studentText.includes(s.line)
  );
}

/** One notebook's entry in the manifest. */
export interface ManifestNotebook {
  file: string;
  totalPoints: number;
  /** Cell indices: `solutionCell`/`checkCell` in the master, `studentSolutionCell`/`studentCheckCell` in the student edition. */
  exercises: (Exercise & {
    studentSolutionCell: number;
    studentCheckCell: number | null;
  })[];
}

/** The manifest written to build/handout/manifest.json. */
export interface Manifest {
  course: string;
  version: string;
  generated: string;
  totalPoints: number;
  notebooks: ManifestNotebook[];
}

/** The manifest for validated notebooks (the header cell shifts student indices by one). */
export function makeManifest(
  analyses: NotebookAnalysis[],
  course: CourseInfo,
): Manifest {
  const notebooks = analyses.map((a) => ({
    file: a.file,
    totalPoints: a.exercises.reduce((s, e) => s + e.points, 0),
    exercises: a.exercises.map((e) => ({
      ...e,
      studentSolutionCell: e.solutionCell + 1,
      studentCheckCell: e.checkCell === null ? null : e.checkCell + 1,
    })),
  }));
  return {
    course: course.name,
    version: course.version,
    generated: new Date().toISOString(),
    totalPoints: notebooks.reduce((s, n) => s + n.totalPoints, 0),
    notebooks,
  };
}

export { listIpynb };

/**
 * Reads and validates every master in `dir` (all of them, so that one run
 * reports every problem) and checks that exercise ids are unique across
 * the course. Throws one Error listing every `HandoutError`.
 */
export async function loadMasters(
  dir: string,
  names: string[] = [],
): Promise<{ file: string; nb: Notebook; analysis: NotebookAnalysis }[]> {
  const out: { file: string; nb: Notebook; analysis: NotebookAnalysis }[] = [];
  const problems: string[] = [];
  const owner = new Map<string, string>();
  for (const file of await listIpynb(dir, names)) {
    try {
      const nb = await readNotebook(`${dir}/${file}`);
      const analysis = analyzeNotebook(nb, file);
      for (const e of analysis.exercises) {
        if (owner.has(e.id)) {
          throw new HandoutError(
            file,
            e.solutionCell,
            `exercise id "${e.id}" is also used in ${owner.get(e.id)}`,
          );
        }
        owner.set(e.id, file);
      }
      out.push({ file, nb, analysis });
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (problems.length) {
    const err = new Error(
      `${problems.length} master notebook(s) are malformed:\n  ${
        problems.join("\n  ")
      }`,
    );
    err.name = "HandoutError";
    throw err;
  }
  return out;
}

/** What the student copy of the repo contains besides the notebooks (missing ones are skipped). */
export const STUDENT_RUNTIME = [
  "deno.json",
  "deno.lock",
  ".gitignore",
  "README.md",
  "lib",
  "packages",
  "tasks",
  "docs",
  "data/fashion-mnist-subset",
];

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function copyTree(from: string, to: string): Promise<void> {
  const info = await Deno.stat(from);
  if (info.isFile) {
    await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(from, to);
    return;
  }
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isFile || e.isDirectory) {
      await copyTree(`${from}/${e.name}`, `${to}/${e.name}`);
    }
  }
}

/** Options of `buildHandout`. */
export interface HandoutOptions {
  /** The master notebooks (default notebooks/). */
  mastersDir?: string;
  /** Output folder (default build/handout). Its student/, instructor/ and html/ are regenerated. */
  outDir?: string;
  /** Notebook name filters (prefix or substring). */
  names?: string[];
  /** Execute the masters into the instructor edition (default true). */
  execute?: boolean;
  /** HTML of both editions with nbconvert (default true). */
  html?: boolean;
  /** Run the student edition headless and check that only "not implemented" checks fail. */
  verify?: boolean;
  /** Quick mode (QUICK=1) for the executions. */
  quick?: boolean;
  /** Per-cell timeout in seconds (default 900). */
  timeout?: number;
  /** Course name/version for the header; default from deno.json. */
  course?: CourseInfo;
  /** Copy the runtime (lib/, deno.json, ...) next to the student notebooks (default true). */
  copyRuntime?: boolean;
  /** Jupyter and its python (default: from setup(), which also ensures the kernel and data). */
  tools?: { jupyter: string; python: string };
  /** Progress lines (default console.log). */
  log?: (line: string) => void;
}

/** What `buildHandout` did; `problems` is empty when everything worked. */
export interface HandoutResult {
  manifest: Manifest;
  studentDir: string;
  problems: string[];
}

/**
 * Runs tasks/execute_notebook.py on one notebook; returns its JSON report.
 * The executed notebook is signed (opens trusted) unless `sign` is false.
 */
export async function executeNotebook(
  python: string,
  input: string,
  output: string,
  opts: {
    cwd: string;
    timeout: number;
    quick: boolean;
    allowErrors?: boolean;
    sign?: boolean;
  },
): Promise<ExecutionReport> {
  const res = await new Deno.Command(python, {
    args: [
      `${root}tasks/execute_notebook.py`,
      input,
      output,
      "--cwd",
      opts.cwd,
      "--timeout",
      String(opts.timeout),
      ...(opts.allowErrors ? ["--allow-errors"] : []),
      ...(opts.sign === false ? ["--no-sign"] : []),
    ],
    env: { QUICK: opts.quick ? "1" : "0" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const last = new TextDecoder().decode(res.stdout).trim().split("\n").at(-1) ??
    "";
  try {
    return JSON.parse(last);
  } catch {
    const err = new TextDecoder().decode(res.stderr).trim().split("\n").slice(
      -15,
    ).join("\n");
    return {
      ok: false,
      cell: null,
      ename: "ExecutorError",
      evalue: err,
      seconds: 0,
      errors: [],
      stopped: null,
    };
  }
}

/** The JSON line of tasks/execute_notebook.py. */
export interface ExecutionReport {
  ok: boolean;
  cell: number | null;
  ename: string | null;
  evalue: string | null;
  seconds: number;
  /** With --allow-errors: every cell with an error output. */
  errors?: { cell: number; ename: string; evalue: string }[];
  /** With --allow-errors: the cell a timeout or dead kernel stopped the run at. */
  stopped?: { cell: number | null; ename: string; evalue: string } | null;
}

/** Renders one notebook into `outDir` with its charts; null, or what went wrong. */
async function toHtml(
  python: string,
  input: string,
  outDir: string,
): Promise<string | null> {
  const name = input.split("/").at(-1)!.replace(/\.ipynb$/, ".html");
  const r = await renderHtml(python, input, `${outDir}/${name}`);
  return r.ok ? null : r.problems.join("; ");
}

/**
 * Checks an executed student edition: every check cell failed with "not
 * implemented" and no other cell failed. Returns the problems (empty = ok).
 */
export function verifyStudentRun(
  file: string,
  executed: Notebook,
  report: ExecutionReport,
): string[] {
  const problems: string[] = [];
  if (report.stopped) {
    problems.push(
      `${file}: stopped at cell ${report.stopped.cell}: ${report.stopped.ename}`,
    );
  }
  if (report.ename === "ExecutorError") {
    problems.push(`${file}: ${report.evalue}`);
  }
  const failed = new Map((report.errors ?? []).map((e) => [e.cell, e]));
  executed.cells.forEach((cell, i) => {
    const meta = nbgraderOf(cell);
    const err = failed.get(i);
    if (cell.cell_type === "code" && meta?.grade === true) {
      if (!err || !/not implemented/i.test(err.evalue)) {
        problems.push(
          `${file}: check cell ${i} (${meta.grade_id}) should fail as "not implemented", got ${
            err ? `${err.ename}: ${err.evalue.split("\n")[0]}` : "no error"
          }`,
        );
      }
    } else if (err) {
      problems.push(
        `${file}: cell ${i} failed: ${err.ename}: ${err.evalue.split("\n")[0]}`,
      );
    }
  });
  return problems;
}

/**
 * Builds the handouts (see the module doc). Malformed masters throw before
 * anything is written; execution and HTML problems are collected in
 * `problems` so that one failing notebook does not hide the others.
 */
export async function buildHandout(
  options: HandoutOptions = {},
): Promise<HandoutResult> {
  const mastersDir = options.mastersDir ?? `${root}notebooks`;
  const outDir = options.outDir ?? `${root}build/handout`;
  const log = options.log ?? console.log;
  const timeout = options.timeout ?? 900;
  const quick = options.quick ?? false;
  const course = options.course ?? await courseInfo();
  const masters = await loadMasters(mastersDir, options.names ?? []);
  const studentRoot = `${outDir}/student`;
  const studentDir = `${studentRoot}/notebooks`;
  const instructorDir = `${outDir}/instructor/notebooks`;
  const problems: string[] = [];
  // Generated output only: stale editions of removed notebooks must not linger.
  for (const d of [studentRoot, `${outDir}/instructor`, `${outDir}/html`]) {
    await Deno.remove(d, { recursive: true }).catch(() => {});
  }
  await Deno.mkdir(studentDir, { recursive: true });
  if (options.copyRuntime ?? true) {
    for (const p of STUDENT_RUNTIME) {
      if (await exists(`${root}${p}`)) {
        await copyTree(`${root}${p}`, `${studentRoot}/${p}`);
      }
    }
  }
  for (const m of masters) {
    await writeNotebook(
      `${studentDir}/${m.file}`,
      studentEdition(m.nb, m.analysis, course),
    );
  }
  const manifest = makeManifest(masters.map((m) => m.analysis), course);
  await Deno.writeTextFile(
    `${outDir}/manifest.json`,
    JSON.stringify(manifest, null, 2) + "\n",
  );
  log(
    `student edition of ${masters.length} notebook(s) in ${studentDir} ` +
      `(${
        manifest.notebooks.reduce((s, n) => s + n.exercises.length, 0)
      } exercises, ${manifest.totalPoints} points)`,
  );
  const needJupyter = (options.execute ?? true) || (options.html ?? true) ||
    options.verify;
  if (!needJupyter) return { manifest, studentDir, problems };
  const { python } = options.tools ??
    await (await import("./setup.ts")).setup();
  if (options.execute ?? true) {
    await Deno.mkdir(instructorDir, { recursive: true });
  }
  for (const m of masters) {
    if (options.execute ?? true) {
      const out = `${instructorDir}/${m.file}`;
      const r = await executeNotebook(python, `${mastersDir}/${m.file}`, out, {
        cwd: `${root}notebooks`,
        timeout,
        quick,
      });
      log(
        `instructor ${m.file.padEnd(36)} ${
          r.seconds.toFixed(1).padStart(7)
        }s  ${r.ok ? "ok" : "FAILED"}`,
      );
      if (!r.ok) {
        problems.push(
          `${m.file}: the master failed at cell ${r.cell}: ${r.ename}: ${
            r.evalue?.split("\n")[0]
          }`,
        );
      }
    }
    if (options.verify) {
      // Inside outDir, not /tmp: the test task may only write under build/.
      const tmp = `${outDir}/.verify`;
      await Deno.mkdir(tmp, { recursive: true });
      try {
        const out = `${tmp}/${m.file}`;
        const r = await executeNotebook(
          python,
          `${studentDir}/${m.file}`,
          out,
          {
            cwd: studentDir,
            timeout,
            quick,
            allowErrors: true,
          },
        );
        const bad = verifyStudentRun(m.file, await readNotebook(out), r);
        log(
          `student    ${m.file.padEnd(36)} ${
            r.seconds.toFixed(1).padStart(7)
          }s  ${bad.length ? "FAILED" : "ok"}`,
        );
        problems.push(...bad);
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    }
  }
  if (options.html ?? true) {
    const editions: [string, string][] = [[
      studentDir,
      `${outDir}/html/student`,
    ]];
    if (options.execute ?? true) {
      editions.push([instructorDir, `${outDir}/html/instructor`]);
    }
    for (const [from, to] of editions) {
      await Deno.mkdir(to, { recursive: true });
      for (const m of masters) {
        if (!(await exists(`${from}/${m.file}`))) continue;
        const err = await toHtml(python, `${from}/${m.file}`, to);
        if (err) {
          problems.push(`${m.file}: HTML rendering into ${to} failed: ${err}`);
        }
      }
    }
  }
  return { manifest, studentDir, problems };
}

function parseArgs(argv: string[]): HandoutOptions {
  const o: HandoutOptions = { names: [] };
  for (const a of argv) {
    if (a === "--quick") o.quick = true;
    else if (a === "--full") o.quick = false;
    else if (a === "--no-execute") o.execute = false;
    else if (a === "--no-html") o.html = false;
    else if (a === "--verify") o.verify = true;
    else if (a.startsWith("--timeout=")) {
      o.timeout = Number(a.slice(10));
      if (!Number.isInteger(o.timeout) || o.timeout <= 0) {
        throw new Error(
          `--timeout must be a positive whole number of seconds, got ${a}`,
        );
      }
    } else if (a.startsWith("--out=")) o.outDir = a.slice(6);
    else if (a.startsWith("--masters=")) o.mastersDir = a.slice(10);
    else if (a.startsWith("--course=")) {
      o.course = { name: a.slice(9), version: "" };
    } else if (a === "-h" || a === "--help") {
      console.log(
        "usage: deno task handout [--quick|--full] [--no-execute] [--no-html] [--verify]\n" +
          "         [--timeout=SECONDS] [--out=DIR] [--masters=DIR] [--course=NAME] [NAME...]",
      );
      Deno.exit(0);
    } else if (a.startsWith("-")) {
      throw new Error(`unknown option ${a} (try --help)`);
    } else o.names!.push(a);
  }
  return o;
}

if (import.meta.main) {
  try {
    const opts = parseArgs(Deno.args);
    if (opts.course) opts.course.version = (await courseInfo()).version;
    if (opts.quick === undefined) {
      opts.quick = ["1", "true", "yes"].includes(
        (Deno.env.get("QUICK") ?? "").toLowerCase(),
      );
    }
    const r = await buildHandout(opts);
    console.log(
      `manifest: ${(opts.outDir ?? `${root}build/handout`)}/manifest.json`,
    );
    if (r.problems.length) {
      console.log(
        `\n${r.problems.length} problem(s):\n  ${r.problems.join("\n  ")}`,
      );
      Deno.exit(1);
    }
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(1);
  }
}
