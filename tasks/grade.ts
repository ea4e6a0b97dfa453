/**
 * Autograder for student submissions (docs/exercises.md, docs/instructors.md).
 * For each submission: find its master notebook (by the grade_ids of its
 * cells), put the master's check cells back (with the hidden tests; an
 * edited, deleted or duplicated check cell is replaced and the report says
 * so), execute it headless with a per-cell timeout and errors allowed so
 * that every exercise is graded, and score each exercise by its check cell.
 * A cell that hangs or kills the kernel is replaced by a `throw` and the
 * notebook is run again, so a hang costs one timeout and scores zero for
 * that exercise, never the grader.
 *
 * Writes build/grades/<name>.json (the report) and build/grades/<name>.ipynb
 * (the executed submission, for feedback), plus build/grades/summary.json.
 *
 * usage: deno task grade [--timeout=SECONDS] [--full] [--master=FILE] [--masters=DIR]
 *          [--out=DIR] <submission.ipynb | folder>...
 *
 * @module
 */
import {
  type Cell,
  cellSource,
  type Notebook,
  readNotebook,
  toSourceLines,
  writeNotebook,
} from "./ipynb.ts";
import {
  analyzeNotebook,
  executeNotebook,
  type ExecutionReport,
  loadMasters,
  nbgraderOf,
  type NotebookAnalysis,
  redactSource,
} from "./handout.ts";

const root = new URL("../", import.meta.url).pathname;

/** How one exercise went. */
export type ExerciseStatus =
  | "pass"
  | "fail"
  | "not implemented"
  | "timeout"
  | "crash"
  | "not run"
  | "manual";

/** The grade of one exercise. */
export interface ExerciseGrade {
  id: string;
  points: number;
  maxPoints: number;
  status: ExerciseStatus;
  /** What the check cell said (first line), or why it did not run. */
  message: string;
}

/** The report of one submission (also written as build/grades/<name>.json). */
export interface GradeReport {
  /** Output name (file name without .ipynb, made unique within one run). */
  name: string;
  submission: string;
  /** The master file name, or null when none could be matched. */
  master: string | null;
  score: number;
  maxScore: number;
  exercises: ExerciseGrade[];
  /** Everything unusual: restored check cells, timeouts, crashes, unreadable files. */
  notes: string[];
  seconds: number;
}

/** A master the grader can use. */
export interface Master {
  file: string;
  nb: Notebook;
  analysis: NotebookAnalysis;
}

function norm(s: string): string {
  return s.split("\n").map((l) => l.trimEnd()).join("\n").trim();
}

/**
 * Picks the master a submission belongs to: the one sharing the most
 * grade_ids with it; when none shares any, the one whose file name (without
 * .ipynb) occurs in the submission's file name. Null when neither works.
 */
export function chooseMaster(
  submission: Notebook,
  submissionPath: string,
  masters: Master[],
): Master | null {
  const ids = new Set(
    submission.cells.map((c) => nbgraderOf(c)?.grade_id).filter((
      x,
    ): x is string => typeof x === "string"),
  );
  let best: Master | null = null;
  let bestCount = 0;
  for (const m of masters) {
    const count = m.nb.cells.filter((c) =>
      ids.has(String(nbgraderOf(c)?.grade_id))
    ).length;
    if (count > bestCount) [best, bestCount] = [m, count];
  }
  if (best) return best;
  const base = submissionPath.split("/").at(-1) ?? "";
  return masters.find((m) => base.includes(m.file.replace(/\.ipynb$/, ""))) ??
    null;
}

/** The prepared notebook and what had to be repaired. */
export interface PreparedSubmission {
  nb: Notebook;
  notes: string[];
}

/**
 * The submission with the master's check cells (hidden tests included) in
 * place of its own, matched by grade_id. A check cell that differs from the
 * handed-out one (or from the master's) is noted as edited; a missing one is
 * inserted after the exercise's solution cell (or at the end); duplicates
 * are dropped. All outputs are cleared.
 */
export function prepareSubmission(
  submission: Notebook,
  master: Master,
): PreparedSubmission {
  const notes: string[] = [];
  const checks = new Map<string, Cell>();
  for (const ex of master.analysis.exercises) {
    if (ex.checkCell !== null) {
      checks.set(`${ex.id}-check`, master.nb.cells[ex.checkCell]);
    }
  }
  const fresh = (cell: Cell): Cell => ({
    ...structuredClone(cell),
    outputs: [],
    execution_count: null,
  });
  const placed = new Set<string>();
  const cells: Cell[] = [];
  submission.cells.forEach((cell, i) => {
    const gid = nbgraderOf(cell)?.grade_id;
    const masterCheck = typeof gid === "string" ? checks.get(gid) : undefined;
    if (!masterCheck) {
      const c = structuredClone(cell);
      if (c.cell_type === "code") {
        c.outputs = [];
        c.execution_count = null;
      }
      cells.push(c);
      return;
    }
    if (placed.has(gid as string)) {
      notes.push(`cell ${i} repeats check cell ${gid}; the copy was dropped`);
      return;
    }
    placed.add(gid as string);
    const idx = master.nb.cells.indexOf(masterCheck);
    const handedOut = redactSource(
      cellSource(masterCheck),
      master.analysis.regions[idx],
      "code",
      gid as string,
    );
    const mine = norm(cellSource(cell));
    if (
      cell.cell_type !== "code" ||
      (mine !== norm(handedOut) && mine !== norm(cellSource(masterCheck)))
    ) {
      notes.push(
        `check cell ${gid} (cell ${i}) was edited; the master's check cell was used instead`,
      );
    }
    cells.push(fresh(masterCheck));
  });
  for (const ex of master.analysis.exercises) {
    const gid = `${ex.id}-check`;
    if (ex.checkCell === null || placed.has(gid)) continue;
    const after = cells.findIndex((c) => nbgraderOf(c)?.grade_id === ex.id);
    const at = after >= 0 ? after + 1 : cells.length;
    cells.splice(at, 0, fresh(master.nb.cells[ex.checkCell]));
    notes.push(
      `check cell ${gid} was missing; the master's check cell was inserted`,
    );
  }
  return {
    nb: {
      ...submission,
      cells,
      metadata: {
        ...master.nb.metadata,
        ...submission.metadata,
        kernelspec: master.nb.metadata.kernelspec,
      },
    },
    notes,
  };
}

function outputsText(cell: Cell): string {
  return (cell.outputs ?? []).map((o) => {
    const out = o as {
      text?: string | string[];
      data?: Record<string, string | string[]>;
    };
    const t = out.text ?? out.data?.["text/plain"] ?? "";
    return Array.isArray(t) ? t.join("") : t;
  }).join("");
}

function firstLine(s: string): string {
  // Kernel error values can carry ANSI colour codes.
  // deno-lint-ignore no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, "").split("\n").find((l) => l.trim())
    ?.trim() ?? "";
}

/**
 * Scores an executed prepared submission. `skipped` maps the cells the
 * grader replaced (after a timeout or a kernel crash) to the reason. A check
 * passes only when it ran, raised nothing and printed
 * `Exercise <id>: correct` (so a check whose promise was never awaited or
 * that was cut short cannot pass).
 */
export function scoreExecuted(
  executed: Notebook,
  master: Master,
  skipped: Map<number, { status: "timeout" | "crash"; reason: string }>,
): ExerciseGrade[] {
  const where = new Map<string, number>();
  executed.cells.forEach((c, i) => {
    const gid = nbgraderOf(c)?.grade_id;
    if (typeof gid === "string" && !where.has(gid)) where.set(gid, i);
  });
  return master.analysis.exercises.map((ex): ExerciseGrade => {
    if (ex.kind === "written") {
      return {
        id: ex.id,
        points: 0,
        maxPoints: ex.points,
        status: "manual",
        message: "written answer: grade by hand",
      };
    }
    const grade = (status: ExerciseStatus, message: string): ExerciseGrade => ({
      id: ex.id,
      points: status === "pass" ? ex.points : 0,
      maxPoints: ex.points,
      status,
      message,
    });
    const solIdx = where.get(ex.id);
    if (solIdx !== undefined && skipped.has(solIdx)) {
      const s = skipped.get(solIdx)!;
      return grade(s.status, `the solution cell ${s.reason}`);
    }
    const idx = where.get(`${ex.id}-check`);
    if (idx === undefined) return grade("not run", "check cell missing");
    if (skipped.has(idx)) {
      const s = skipped.get(idx)!;
      return grade(s.status, `the check ${s.reason}`);
    }
    const cell = executed.cells[idx];
    const error = (cell.outputs ?? []).find((o) =>
      (o as { output_type?: string }).output_type === "error"
    ) as
      | { ename?: string; evalue?: string }
      | undefined;
    if (error) {
      const msg = firstLine(error.evalue ?? "").replace(/^(❌|✅)\s*/u, "") ||
        String(error.ename);
      return grade(
        /not implemented/i.test(msg) ? "not implemented" : "fail",
        msg,
      );
    }
    if (cell.execution_count === null || cell.execution_count === undefined) {
      return grade("not run", "the check cell did not run");
    }
    if (!outputsText(cell).includes(`Exercise ${ex.id}: correct`)) {
      return grade(
        "fail",
        `the check did not report "Exercise ${ex.id}: correct"`,
      );
    }
    return grade("pass", "correct");
  });
}

/** Options of `gradeSubmission`. */
export interface GradeOptions {
  /** Masters to match against (default: every notebook in notebooks/, validated). */
  masters?: Master[];
  /** Force this master file (a path) instead of matching. */
  masterPath?: string;
  /** Output folder (default build/grades). */
  outDir?: string;
  /** Output name (default: the submission's file name without .ipynb). */
  name?: string;
  /** Per-cell timeout in seconds (default 120). */
  timeout?: number;
  /** Quick mode for the notebook's own cells (default true: checks do not depend on it). */
  quick?: boolean;
  /** Kernel working directory (default notebooks/, so `../lib/mod.ts` resolves). */
  cwd?: string;
  /** The python with nbclient (default: from setup()). */
  python?: string;
}

/**
 * Grades one submission and writes `<outDir>/<name>.json` and
 * `<outDir>/<name>.ipynb`. Never throws for a bad submission (unreadable,
 * unmatched, hanging, crashing): the report says what happened and scores
 * what could not be graded as zero.
 */
export async function gradeSubmission(
  path: string,
  options: GradeOptions = {},
): Promise<GradeReport> {
  const started = performance.now();
  const outDir = options.outDir ?? `${root}build/grades`;
  const name = options.name ??
    (path.split("/").at(-1) ?? "submission").replace(/\.ipynb$/, "");
  const timeout = options.timeout ?? 120;
  await Deno.mkdir(outDir, { recursive: true });
  const report: GradeReport = {
    name,
    submission: path,
    master: null,
    score: 0,
    maxScore: 0,
    exercises: [],
    notes: [],
    seconds: 0,
  };
  const finish = async () => {
    report.score = report.exercises.reduce((s, e) => s + e.points, 0);
    report.maxScore = report.exercises.filter((e) => e.status !== "manual")
      .reduce((s, e) => s + e.maxPoints, 0);
    report.seconds = Math.round((performance.now() - started) / 100) / 10;
    await Deno.writeTextFile(
      `${outDir}/${name}.json`,
      JSON.stringify(report, null, 2) + "\n",
    );
    return report;
  };
  let masters = options.masters;
  if (options.masterPath) {
    const nb = await readNotebook(options.masterPath);
    const file = options.masterPath.split("/").at(-1)!;
    masters = [{ file, nb, analysis: analyzeNotebook(nb, file) }];
  }
  masters ??= await loadMasters(`${root}notebooks`);
  let submission: Notebook;
  try {
    submission = await readNotebook(path);
  } catch (e) {
    report.notes.push(`could not read the submission: ${(e as Error).message}`);
    return await finish();
  }
  const master = options.masterPath
    ? masters[0]
    : chooseMaster(submission, path, masters);
  if (!master) {
    report.notes.push(
      `no master notebook matches this submission (no shared grade_ids, no master name in the file name); ` +
        `pass --master=notebooks/NN_name.ipynb`,
    );
    return await finish();
  }
  report.master = master.file;
  const prepared = prepareSubmission(submission, master);
  report.notes.push(...prepared.notes);
  const python = options.python ??
    (await (await import("./setup.ts")).setup()).python;
  // Inside outDir, not /tmp: the test task may only write under build/.
  const work = `${outDir}/.work-${name}`;
  await Deno.mkdir(work, { recursive: true });
  const skipped = new Map<
    number,
    { status: "timeout" | "crash"; reason: string }
  >();
  const nb = prepared.nb;
  const executedPath = `${outDir}/${name}.ipynb`;
  try {
    // Each hang or crash neutralises one cell, so this ends after at most
    // (number of code cells + 1) runs.
    for (let run = 0; run <= nb.cells.length; run++) {
      await writeNotebook(`${work}/in.ipynb`, nb);
      const r: ExecutionReport = await executeNotebook(
        python,
        `${work}/in.ipynb`,
        executedPath,
        {
          cwd: options.cwd ?? `${root}notebooks`,
          timeout,
          quick: options.quick ?? true,
          allowErrors: true,
          // Students' outputs must not open trusted (their HTML could run).
          sign: false,
        },
      );
      if (r.ename === "ExecutorError") {
        report.notes.push(`the executor failed: ${firstLine(r.evalue ?? "")}`);
        break;
      }
      const stop = r.stopped;
      if (!stop) break;
      const cell = stop.cell;
      if (cell === null || cell === undefined || skipped.has(cell)) {
        report.notes.push(
          `execution stopped (${stop.ename}) and could not be resumed`,
        );
        break;
      }
      const status = stop.ename === "CellTimeoutError" ? "timeout" : "crash";
      const reason = status === "timeout"
        ? `did not finish within ${timeout}s (an infinite loop?) and was stopped`
        : `crashed the kernel (${stop.ename})`;
      skipped.set(cell, { status, reason });
      const gid = nbgraderOf(nb.cells[cell])?.grade_id;
      report.notes.push(
        `cell ${cell}${
          gid ? ` (${gid})` : ""
        } ${reason}; it was skipped and the notebook run again`,
      );
      nb.cells[cell] = {
        ...nb.cells[cell],
        source: toSourceLines(
          `throw new Error(${JSON.stringify(`grader: this cell ${reason}`)});`,
        ),
      };
    }
    const executed = await readNotebook(executedPath).catch(() => null);
    if (executed) report.exercises = scoreExecuted(executed, master, skipped);
    else report.notes.push("no executed notebook was produced");
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  if (report.exercises.length === 0) {
    report.exercises = master.analysis.exercises.map((e) => ({
      id: e.id,
      points: 0,
      maxPoints: e.points,
      status: e.kind === "written" ? "manual" : "not run",
      message: e.kind === "written"
        ? "written answer: grade by hand"
        : "the notebook could not be executed",
    }));
  }
  return await finish();
}

/** The report as a text table. */
export function formatReport(r: GradeReport): string {
  const lines = [
    `${r.submission}  (master ${
      r.master ?? "?"
    })  ${r.score}/${r.maxScore} points  [${r.seconds}s]`,
  ];
  if (r.exercises.length) {
    const w = Math.max(8, ...r.exercises.map((e) => e.id.length));
    lines.push(`  ${"exercise".padEnd(w)}  ${"points".padStart(7)}  result`);
    for (const e of r.exercises) {
      const pts = e.status === "manual" ? "-" : `${e.points}/${e.maxPoints}`;
      const detail = e.status === "pass" ? "" : `: ${e.message}`;
      lines.push(
        `  ${e.id.padEnd(w)}  ${pts.padStart(7)}  ${e.status}${
          detail.slice(0, 160)
        }`,
      );
    }
  }
  for (const n of r.notes) lines.push(`  note: ${n}`);
  return lines.join("\n");
}

async function collect(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (p: string) => {
    const info = await Deno.stat(p);
    if (info.isFile) {
      out.push(p);
      return;
    }
    const names: string[] = [];
    for await (const e of Deno.readDir(p)) names.push(e.name);
    for (const n of names.sort()) {
      if (n.startsWith(".")) continue; // .ipynb_checkpoints and the like
      const full = `${p.replace(/\/$/, "")}/${n}`;
      if ((await Deno.stat(full)).isDirectory || n.endsWith(".ipynb")) {
        await walk(full);
      }
    }
  };
  for (const p of paths) await walk(p);
  return out;
}

/**
 * Unique output names: the file name without .ipynb; submissions sharing it
 * get as many of their folders as it takes (`alice_01_vq`), then a number.
 */
export function outputNames(paths: string[]): string[] {
  const parts = paths.map((p) =>
    p.replace(/\.ipynb$/, "").split("/").filter((s) =>
      s && s !== "." && s !== ".."
    )
  );
  const names = parts.map((p) => p.at(-1) ?? "submission");
  const clash = (i: number) => names.some((n, j) => j !== i && n === names[i]);
  for (let depth = 2; names.some((_, i) => clash(i)); depth++) {
    const grow = names.map((_, i) => clash(i));
    let changed = false;
    names.forEach((_, i) => {
      if (grow[i] && parts[i].length >= depth) {
        names[i] = parts[i].slice(-depth).join("_");
        changed = true;
      }
    });
    if (!changed) break;
  }
  const seen = new Map<string, number>();
  return names.map((n) => {
    const k = (seen.get(n) ?? 0) + 1;
    seen.set(n, k);
    return k === 1 ? n : `${n}_${k}`;
  });
}

if (import.meta.main) {
  const opts: GradeOptions = {};
  let mastersDir = `${root}notebooks`;
  const inputs: string[] = [];
  for (const a of Deno.args) {
    if (a.startsWith("--timeout=")) {
      opts.timeout = Number(a.slice(10));
      if (!Number.isInteger(opts.timeout) || opts.timeout <= 0) {
        console.error(
          `--timeout must be a positive whole number of seconds, got ${a}`,
        );
        Deno.exit(2);
      }
    } else if (a === "--full") opts.quick = false;
    else if (a === "--quick") opts.quick = true;
    else if (a.startsWith("--master=")) opts.masterPath = a.slice(9);
    else if (a.startsWith("--masters=")) mastersDir = a.slice(10);
    else if (a.startsWith("--out=")) opts.outDir = a.slice(6);
    else if (a === "-h" || a === "--help") {
      console.log(
        "usage: deno task grade [--timeout=SECONDS] [--full] [--master=FILE] [--masters=DIR] [--out=DIR] " +
          "<submission.ipynb | folder>...",
      );
      Deno.exit(0);
    } else if (a.startsWith("-")) {
      console.error(`unknown option ${a} (try --help)`);
      Deno.exit(2);
    } else inputs.push(a);
  }
  if (inputs.length === 0) {
    console.error(
      "usage: deno task grade <submission.ipynb | folder>... (try --help)",
    );
    Deno.exit(2);
  }
  let files: string[];
  try {
    files = await collect(inputs);
    if (!opts.masterPath) opts.masters = await loadMasters(mastersDir);
    opts.python = (await (await import("./setup.ts")).setup()).python;
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(2);
  }
  const names = outputNames(files);
  const outDir = opts.outDir ?? `${root}build/grades`;
  const reports: GradeReport[] = [];
  for (let i = 0; i < files.length; i++) {
    const r = await gradeSubmission(files[i], { ...opts, name: names[i] });
    reports.push(r);
    console.log(formatReport(r) + "\n");
  }
  await Deno.writeTextFile(
    `${outDir}/summary.json`,
    JSON.stringify(
      reports.map(({ name, submission, master, score, maxScore }) => ({
        name,
        submission,
        master,
        score,
        maxScore,
      })),
      null,
      2,
    ) + "\n",
  );
  if (reports.length > 1) {
    console.log("summary");
    for (const r of reports) {
      console.log(
        `  ${r.name.padEnd(40)} ${
          (r.master ?? "?").padEnd(28)
        } ${r.score}/${r.maxScore}`,
      );
    }
  }
  console.log(
    `reports in ${outDir}/ (<name>.json, executed <name>.ipynb, summary.json)`,
  );
}
