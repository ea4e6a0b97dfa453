/**
 * Autograder for student submissions (docs/exercises.md, docs/instructors.md).
 *
 * The score comes from the grader's own process, never from what a
 * submission's kernel prints:
 *
 * 1. each master is run once, in a clean kernel, in recording mode
 *    (lib/exercise.ts): every `expect`/`expectClose` of a check cell records
 *    the expected values, the tolerances and the message;
 * 2. each submission is run with the master's check cells in place of its
 *    own (hidden tests included; an edited, deleted or duplicated check cell
 *    is replaced and the report says so), in the same mode, where the
 *    records carry only the submission's actual values;
 * 3. the grader compares them here, with expectClose's rule: an exercise
 *    scores when its check cell ran without an error and produced exactly
 *    the master's records, in order, each within tolerance.
 *
 * Before any submitted code runs, a setup cell added by the grader imports
 * lib/exercise.ts (which takes the run's token and keeps its own copies of
 * the built-ins it uses) and the master's imports; each check cell then runs
 * with those, not with the notebook's names, so redefining `checkExercise`
 * or `expectClose` changes nothing. Each run happens in its own kernel in
 * the sandbox of tasks/sandbox.ts (no network, nothing of the machine
 * writable, the masters invisible) when bubblewrap works here. Submissions
 * are graded in parallel (`--jobs`, default one per core) with one thread
 * each, so the results do not depend on the machine's load.
 *
 * A cell that hangs or kills the kernel is replaced by a `throw` and the
 * notebook is run again, so a hang costs one timeout and scores zero for
 * that exercise, never the grader.
 *
 * Writes build/grades/<name>.json (the report), build/grades/<name>.ipynb
 * (the executed submission, for feedback), build/grades/summary.json and
 * build/grades/masters/<master>.records.json (what each master recorded).
 *
 * usage: deno task grade [--timeout=SECONDS] [--full] [--jobs=N]
 *          [--sandbox=auto|bubblewrap|none] [--master=FILE] [--masters=DIR]
 *          [--out=DIR] <submission.ipynb | folder>...
 *
 * @module
 */
import { inInputOrder, inParallel } from "./parallel.ts";

export { inParallel };
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
  type ExecutionReport,
  loadMasters,
  nbgraderOf,
  type NotebookAnalysis,
  redactSource,
} from "./handout.ts";
import {
  bwrapArgs,
  INSIDE,
  npmCache,
  pythonFolders,
  type SandboxKind,
  type SandboxMode,
  type SandboxStatus,
  sandboxStatus,
} from "./sandbox.ts";

const root = new URL("../", import.meta.url).pathname;

/** The display type of a check record (lib/exercise.ts writes it). */
export const CHECK_MIME = "application/vnd.course.check+json";

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
  /** What the check found (first line), or why it did not run. */
  message: string;
}

/** The report of one submission (also written as build/grades/<name>.json, without `seconds`). */
export interface GradeReport {
  /** Output name (file name without .ipynb, made unique within one run). */
  name: string;
  submission: string;
  /** The master file name, or null when none could be matched. */
  master: string | null;
  score: number;
  maxScore: number;
  exercises: ExerciseGrade[];
  /** Everything unusual: restored check cells and built-ins, timeouts, crashes, unreadable files. */
  notes: string[];
  /** The sandbox the submission ran in ("none": with the grader's permissions). */
  sandbox: SandboxKind;
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

function firstLine(s: string): string {
  // Kernel error values can carry ANSI colour codes.
  // deno-lint-ignore no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, "").split("\n").find((l) => l.trim())
    ?.trim() ?? "";
}

// ---------------------------------------------------------------- the runs

/** One name a master imports, e.g. `tf` (`* as tf`) or `Rng` from "../lib/mod.ts". */
export interface ImportBinding {
  name: string;
  specifier: string;
  /** "*" for a namespace import, "default", or the exported name. */
  imported: string;
}

const IMPORT =
  /^[ \t]*import\s+(?!type\s)([\w$\s{},*]+?)\s+from\s+(["'])([^"'\n]+)\2[ \t]*;?[ \t]*$/gm;

/**
 * The names the master's code cells import (type-only imports left out); a
 * later import of the same name wins, as in the notebook.
 */
export function masterImports(nb: Notebook): ImportBinding[] {
  const found = new Map<string, ImportBinding>();
  for (const cell of nb.cells) {
    if (cell.cell_type !== "code") continue;
    for (const m of cellSource(cell).matchAll(IMPORT)) {
      for (const b of importClause(m[1], m[3])) found.set(b.name, b);
    }
  }
  return [...found.values()];
}

function importClause(clause: string, specifier: string): ImportBinding[] {
  const out: ImportBinding[] = [];
  let rest = clause.trim();
  const def = /^([\w$]+)\s*(?:,\s*|$)/.exec(rest);
  if (def && !rest.startsWith("{") && !rest.startsWith("*")) {
    out.push({ name: def[1], specifier, imported: "default" });
    rest = rest.slice(def[0].length).trim();
  }
  const ns = /^\*\s*as\s+([\w$]+)$/.exec(rest);
  if (ns) out.push({ name: ns[1], specifier, imported: "*" });
  const named = /^\{([^}]*)\}$/.exec(rest);
  for (const item of named ? named[1].split(",") : []) {
    const m = /^([\w$]+)(?:\s+as\s+([\w$]+))?$/.exec(item.trim());
    if (m && m[1] !== "type") {
      out.push({ name: m[2] ?? m[1], specifier, imported: m[1] });
    }
  }
  return out;
}

const CHECK_NAMES = ["checkExercise", "expect", "expectClose"];

/**
 * The notebook the grader runs: a setup cell first (it imports
 * lib/exercise.ts, which takes the run's token, and the master's imports,
 * before any submitted code), and every check cell of `master` wrapped so
 * that it runs with the course's own checkExercise/expect/expectClose and
 * the master's imports instead of the notebook's names.
 */
export function gradingEdition(
  nb: Notebook,
  master: Master,
  courseRoot: string,
): Notebook {
  const bindings = masterImports(master.nb).filter((b) =>
    !CHECK_NAMES.includes(b.name)
  );
  const specifiers = [...new Set(bindings.map((b) => b.specifier))];
  const value = (b: ImportBinding) => {
    const m = `m${specifiers.indexOf(b.specifier)}`;
    return b.imported === "*" ? m : `${m}[${JSON.stringify(b.imported)}]`;
  };
  const setup: Cell = {
    cell_type: "code",
    id: "grader-setup",
    metadata: { grader: { setup: true } },
    execution_count: null,
    outputs: [],
    source: toSourceLines([
      "// Added by the grader (tasks/grade.ts) before any submitted code: the checks",
      "// (lib/exercise.ts takes this run's token) and the master's imports, which the",
      "// check cells are given in place of the notebook's own names.",
      "{",
      `  await import(${
        JSON.stringify(`file://${courseRoot}/lib/exercise.ts`)
      });`,
      ...specifiers.map((s, i) =>
        `  const m${i} = await import(${JSON.stringify(s)});`
      ),
      `  __courseGrading__.prepare({ ${
        bindings.map((b) => `${JSON.stringify(b.name)}: ${value(b)}`).join(
          ", ",
        )
      } });`,
      "}",
    ].join("\n")),
  };
  const names = [...bindings.map((b) => b.name), ...CHECK_NAMES];
  const checkIds = new Set(
    master.analysis.exercises.filter((e) => e.checkCell !== null).map((e) =>
      `${e.id}-check`
    ),
  );
  const cells = nb.cells.map((cell): Cell => {
    const gid = nbgraderOf(cell)?.grade_id;
    if (cell.cell_type !== "code" || !checkIds.has(String(gid))) return cell;
    const id = String(gid).slice(0, -"-check".length);
    const source = cellSource(cell);
    // Import declarations are not allowed inside a block: they stay in front.
    const imports = [...source.matchAll(IMPORT)].map((m) => m[0].trim());
    const body = source.replace(IMPORT, "");
    return {
      ...cell,
      source: toSourceLines([
        ...imports,
        "// Run by the grader (tasks/grade.ts) with the course's own checks and the master's imports.",
        `{ const { ${names.join(", ")} } = __courseGrading__.check(${
          JSON.stringify(id)
        });`,
        "{",
        body,
        "}}",
      ].join("\n")),
    };
  });
  return { ...nb, cells: [setup, ...cells] };
}

/**
 * One check record (lib/exercise.ts, "Grading mode"). A check cell sends
 * its records as one output: `{ token, exercise, records: [...] }`.
 */
export interface CheckRecord {
  /** The exercise of the check cell that recorded it. */
  exercise: string | null;
  seq: number;
  kind: "close" | "expect" | "restored";
  what?: string;
  /** expect: whether the condition held. */
  value?: boolean;
  /** expect: how many consecutive passing calls with this message it stands for. */
  count?: number;
  /** close, in a submission's run. */
  actual?: (number | string)[];
  actualShape?: number[] | null;
  /** close, in the master's run. */
  expected?: (number | string)[];
  expectedShape?: number[] | null;
  rtol?: number;
  atol?: number;
  /** restored: the built-ins put back before the check. */
  names?: string[];
}

/** The check records of one executed cell. */
export interface CellRecords {
  /** Records sent with the run's token, in order. */
  records: CheckRecord[];
  /** Outputs of the check type without the run's token (made by hand). */
  forged: number;
  /** The check was restarted while it ran (by submitted code). */
  spoiled: boolean;
}

/** The check records of one executed cell (lib/exercise.ts sends them). */
export function recordsOf(cell: Cell, token: string): CellRecords {
  const found: CellRecords = { records: [], forged: 0, spoiled: false };
  for (const o of cell.outputs ?? []) {
    const data = (o as { data?: Record<string, unknown> }).data;
    if (!data || !(CHECK_MIME in data)) continue;
    const batch = data[CHECK_MIME] as {
      token?: unknown;
      exercise?: unknown;
      records?: unknown;
      spoiled?: unknown;
    } | null;
    if (
      typeof batch !== "object" || batch === null || batch.token !== token ||
      !Array.isArray(batch.records)
    ) {
      found.forged++;
      continue;
    }
    if (batch.spoiled === true) found.spoiled = true;
    for (const r of batch.records) {
      if (typeof r === "object" && r !== null) {
        found.records.push({
          ...(r as CheckRecord),
          exercise: typeof batch.exercise === "string" ? batch.exercise : null,
        });
      }
    }
  }
  return found;
}

function decode(values: unknown): number[] | null {
  if (!Array.isArray(values)) return null;
  const out: number[] = [];
  for (const v of values) {
    if (typeof v === "number") out.push(v);
    else if (v === "NaN" || v === "Infinity" || v === "-Infinity") {
      out.push(Number(v));
    } else return null;
  }
  return out;
}

function showValues(values: number[]): string {
  const head = values.slice(0, 6).map((v) => Number(v.toPrecision(5))).join(
    ", ",
  );
  return values.length === 1
    ? head
    : `[${head}${values.length > 6 ? ", ..." : ""}]`;
}

function isShape(s: unknown): s is number[] {
  return Array.isArray(s) && s.every((n) => Number.isInteger(n));
}

/**
 * Compares a submission's records of one check with the master's. Null when
 * they agree (same number, same kinds in order, every expect held, every
 * close within atol + rtol * |expected| with expectClose's shape and size
 * rules); otherwise what is wrong, in expectClose's words.
 */
export function judgeRecords(
  id: string,
  want: CheckRecord[],
  got: CheckRecord[],
): string | null {
  if (got.length !== want.length) {
    return `the check gave ${got.length} result${
      got.length === 1 ? "" : "s"
    } where the master's gives ${want.length}` +
      (got.length > want.length
        ? " (expect or expectClose was also called by other code)"
        : " (the check stopped early)");
  }
  for (let i = 0; i < want.length; i++) {
    const m = want[i];
    const s = got[i];
    const what = String(m.what ?? `check ${i + 1}`);
    if (s.exercise !== id) {
      return `result ${i + 1} of the check was recorded for ${
        JSON.stringify(s.exercise)
      }, not for this exercise`;
    }
    if (s.kind !== m.kind) {
      return `result ${i + 1} of the check is a${
        s.kind === "expect" ? "n" : ""
      } ${s.kind}, the master's a${m.kind === "expect" ? "n" : ""} ${m.kind}`;
    }
    if (m.kind === "expect") {
      if (s.value !== true) return what;
      continue;
    }
    const a = decode(s.actual);
    const e = decode(m.expected);
    if (a === null || e === null) return `${what}: unreadable record`;
    if (isShape(m.expectedShape) && isShape(s.actualShape)) {
      const same = m.expectedShape.length === s.actualShape.length &&
        m.expectedShape.every((n, k) => n === s.actualShape![k]);
      if (!same) {
        return `${what}: expected shape [${m.expectedShape}], got [${s.actualShape}]`;
      }
    }
    if (a.length !== e.length) {
      return `${what}: expected ${e.length} values, got ${a.length}`;
    }
    const rtol = Number(m.rtol ?? 1e-4);
    const atol = Number(m.atol ?? 1e-5);
    for (let k = 0; k < a.length; k++) {
      if (!(Math.abs(a[k] - e[k]) <= atol + rtol * Math.abs(e[k]))) {
        return `${what}: expected ${showValues(e)}, got ${
          showValues(a)
        } (first difference at index ${k}: ${a[k]} vs ${e[k]})`;
      }
    }
  }
  return null;
}

/** What the master's run recorded: per exercise id, its check records in order. */
export interface MasterRecording {
  file: string;
  checks: Record<string, CheckRecord[]>;
  /** Why exercises cannot be graded (a master check that failed or did not run), per id. */
  problems: Record<string, string>;
  /** Built-ins the master's own cells changed (lib/exercise.ts put them back). */
  notes: string[];
  seconds: number;
}

/** How the grader runs notebooks. */
interface RunSettings {
  python: string;
  timeout: number;
  quick: boolean;
  /** The course whose lib/ the notebooks import (the parent of the kernel's cwd). */
  courseRoot: string;
  sandbox: SandboxStatus;
  /** The grader's own folder for this run's staged files (a sandboxed run does not see it). */
  work: string;
}

/** Settings of the backend that a run takes from the grader's environment. */
const BACKEND_ENV = ["TFJS_BACKEND", "TFJS_BLAS", "TFJS_WASM_THREADS"];

/** Folders bwrap must show for Python, and Deno's npm cache, found once. */
let toolFolders: Promise<{ python: string[]; npm: string | null }> | null =
  null;

/** A command line with its environment. */
interface Launch {
  cmd: string;
  args: string[];
  env: Record<string, string>;
  clearEnv: boolean;
  /** Where lib/exercise.ts finds the token (a path the kernel sees). */
  tokenPath: string;
}

/** The executor in bubblewrap: a kernelspec and deno.json of its own, a clean environment. */
async function bubblewrapLaunch(
  settings: RunSettings,
  executor: string,
): Promise<Launch> {
  toolFolders ??= (async () => ({
    python: await pythonFolders(settings.python),
    npm: await npmCache(),
  }))();
  const tools = await toolFolders;
  const deno = Deno.execPath();
  const stage = `${settings.work}/stage`;
  await Deno.mkdir(stage, { recursive: true });
  await Deno.writeTextFile(
    `${stage}/kernel.json`,
    JSON.stringify({
      argv: [deno, "jupyter", "--kernel", "--conn", "{connection_file}"],
      display_name: "Deno",
      language: "typescript",
    }),
  );
  // node_modules/ is read-only in the sandbox and the kernel would try to
  // update it: the packages come from Deno's npm cache instead.
  const config = JSON.parse(
    await Deno.readTextFile(`${settings.courseRoot}/deno.json`),
  );
  config.nodeModulesDir = "none";
  await Deno.writeTextFile(`${stage}/deno.json`, JSON.stringify(config));
  const files: [string, string][] = [
    [`${stage}/kernel.json`, `${INSIDE}/jupyter/kernels/deno/kernel.json`],
    [`${stage}/deno.json`, `${settings.courseRoot}/deno.json`],
  ];
  if (tools.npm) files.push([tools.npm, `${INSIDE}/deno/npm`]);
  const readOnly = [executor, `${root}tasks/execute_notebook.py`];
  if (!deno.startsWith("/usr/")) readOnly.push(deno);
  readOnly.push(...tools.python);
  return {
    cmd: "bwrap",
    args: await bwrapArgs({
      courseRoot: settings.courseRoot,
      cwd: `${settings.courseRoot}/notebooks`,
      files,
      readOnly,
    }, [settings.python, executor]),
    clearEnv: true,
    env: {
      PATH: "/usr/local/bin:/usr/bin:/bin",
      HOME: `${INSIDE}/home`,
      LANG: "C.UTF-8",
      DENO_DIR: `${INSIDE}/deno`,
      DENO_NO_UPDATE_CHECK: "1",
      JUPYTER_PATH: `${INSIDE}/jupyter`,
      JUPYTER_RUNTIME_DIR: `${INSIDE}/runtime`,
      JUPYTER_CONFIG_DIR: `${INSIDE}/home/.jupyter`,
      JUPYTER_DATA_DIR: `${INSIDE}/home/.local/share/jupyter`,
      PYTHONDONTWRITEBYTECODE: "1",
    },
    tokenPath: `${INSIDE}/token.json`,
  };
}

/**
 * Executes `nb` once in a fresh kernel (sandboxed when `settings.sandbox`
 * says so) with a new grading token; the notebook goes in on stdin and
 * comes back on stdout (tasks/sandbox_exec.py), so no file of the run holds
 * the hidden tests or the results.
 */
async function runOnce(
  nb: Notebook,
  role: "master" | "submission",
  settings: RunSettings,
): Promise<
  { report: ExecutionReport; executed: Notebook | null; token: string }
> {
  const token = crypto.randomUUID().replaceAll("-", "") +
    crypto.randomUUID().replaceAll("-", "");
  const cwd = `${settings.courseRoot}/notebooks`;
  const executor = `${root}tasks/sandbox_exec.py`;
  await Deno.mkdir(settings.work, { recursive: true });
  const launch: Launch = settings.sandbox.kind === "bubblewrap"
    ? await bubblewrapLaunch(settings, executor)
    : {
      cmd: settings.python,
      args: [executor],
      env: {},
      clearEnv: false,
      tokenPath: `${settings.work}/token-${token.slice(0, 8)}.json`,
    };
  // One thread unless the grader's environment says otherwise: the same
  // numbers whatever the machine's load and --jobs.
  launch.env.TFJS_WASM_THREADS = "1";
  for (const k of BACKEND_ENV) {
    const v = Deno.env.get(k);
    if (v !== undefined) launch.env[k] = v;
  }
  launch.env.QUICK = settings.quick ? "1" : "0";
  launch.env.COURSE_GRADING = launch.tokenPath;
  const child = new Deno.Command(launch.cmd, {
    args: launch.args,
    env: launch.env,
    clearEnv: launch.clearEnv,
    cwd: launch.clearEnv ? "/" : cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const request = JSON.stringify({
    notebook: nb,
    cwd,
    timeout: settings.timeout,
    token: {
      path: launch.tokenPath,
      text: JSON.stringify({ nonce: token, role }),
    },
  });
  const writer = child.stdin.getWriter();
  const done = child.output();
  await writer.write(new TextEncoder().encode(request));
  await writer.close();
  const out = await done;
  if (!launch.clearEnv) await Deno.remove(launch.tokenPath).catch(() => {});
  try {
    const { report, notebook } = JSON.parse(
      new TextDecoder().decode(out.stdout),
    );
    return { report, executed: notebook as Notebook, token };
  } catch {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n")
      .slice(-15).join("\n");
    return {
      report: {
        ok: false,
        cell: null,
        ename: "ExecutorError",
        evalue: err || `the executor exited with code ${out.code}`,
        seconds: 0,
        errors: [],
        stopped: null,
      },
      executed: null,
      token,
    };
  }
}

function errorOf(cell: Cell): { ename?: string; evalue?: string } | undefined {
  return (cell.outputs ?? []).find((o) =>
    (o as { output_type?: string }).output_type === "error"
  ) as { ename?: string; evalue?: string } | undefined;
}

function cellIndexById(nb: Notebook, gid: string): number {
  return nb.cells.findIndex((c) => nbgraderOf(c)?.grade_id === gid);
}

function setupProblem(executed: Notebook): string | null {
  const setup = executed.cells[0];
  if (nbgraderOf(setup) || !(setup?.metadata?.grader)) {
    return "the grader's setup cell is missing";
  }
  const err = errorOf(setup);
  if (err) {
    return `the grader's setup cell failed: ${
      firstLine(err.evalue ?? "") || err.ename
    }`;
  }
  if (setup.execution_count === null || setup.execution_count === undefined) {
    return "the grader's setup cell did not run";
  }
  return null;
}

const recordings = new Map<string, Promise<MasterRecording>>();

async function digest(text: string): Promise<string> {
  const h = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(text),
  );
  return Array.from(new Uint8Array(h), (b) => b.toString(16).padStart(2, "0"))
    .join("").slice(0, 16);
}

/**
 * Runs `master` once in recording mode and keeps what each check recorded
 * (one run per master, content, mode and sandbox in this process). A check
 * of the master that fails, or records from outside the run, makes that
 * exercise ungradable: `problems` says why.
 */
export async function recordMaster(
  master: Master,
  settings: Omit<RunSettings, "work"> & { outDir: string },
): Promise<MasterRecording> {
  const key = await digest(
    JSON.stringify([
      master.nb,
      settings.quick,
      settings.courseRoot,
      settings.sandbox.kind,
    ]),
  );
  let found = recordings.get(key);
  if (!found) {
    found = recordOnce(master, settings, key);
    recordings.set(key, found);
    found.catch(() => recordings.delete(key));
  }
  return await found;
}

async function recordOnce(
  master: Master,
  settings: Omit<RunSettings, "work"> & { outDir: string },
  key: string,
): Promise<MasterRecording> {
  const started = performance.now();
  const work = `${settings.outDir}/.work-master-${key}`;
  const nb = gradingEdition(
    prepareSubmission(master.nb, master).nb,
    master,
    settings.courseRoot,
  );
  const result: MasterRecording = {
    file: master.file,
    checks: {},
    problems: {},
    notes: [],
    seconds: 0,
  };
  try {
    const { report, executed, token } = await runOnce(nb, "master", {
      ...settings,
      work,
    });
    const everything = (why: string) => {
      for (const ex of master.analysis.exercises) {
        if (ex.kind === "code") result.problems[ex.id] = why;
      }
    };
    if (!executed) {
      everything(
        `the master could not be run: ${firstLine(report.evalue ?? "")}`,
      );
    } else if (report.stopped) {
      everything(
        `the master's run stopped at cell ${report.stopped.cell} (${report.stopped.ename})`,
      );
    } else {
      const setup = setupProblem(executed);
      for (const ex of master.analysis.exercises) {
        if (ex.kind !== "code") continue;
        const cell = executed.cells[cellIndexById(executed, `${ex.id}-check`)];
        const err = cell ? errorOf(cell) : undefined;
        if (setup) result.problems[ex.id] = setup;
        else if (!cell) result.problems[ex.id] = "its check cell is missing";
        else if (err) {
          result.problems[ex.id] = `the master's own check fails: ${
            firstLine(err.evalue ?? "") || err.ename
          }`;
        } else if (cell.execution_count == null) {
          result.problems[ex.id] = "the master's check did not run";
        } else {
          const { records, forged, spoiled } = recordsOf(cell, token);
          const checks = records.filter((r) => r.kind !== "restored");
          const foreign = checks.filter((r) => r.exercise !== ex.id).length;
          if (forged || foreign || spoiled) {
            result.problems[ex.id] =
              "the master's check cell has records from outside its check";
          }
          result.checks[ex.id] = checks;
          for (const r of records.filter((r) => r.kind === "restored")) {
            result.notes.push(
              `the master's cells changed built-ins before ${ex.id}: ${
                (r.names ?? []).join(", ")
              }`,
            );
          }
        }
      }
    }
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  result.seconds = Math.round((performance.now() - started) / 100) / 10;
  await Deno.mkdir(`${settings.outDir}/masters`, { recursive: true });
  await Deno.writeTextFile(
    `${settings.outDir}/masters/${
      master.file.replace(/\.ipynb$/, "")
    }.records.json`,
    JSON.stringify(
      {
        file: result.file,
        sandbox: settings.sandbox.kind,
        problems: result.problems,
        notes: result.notes,
        checks: Object.fromEntries(
          Object.entries(result.checks).map((
            [id, rs],
          ) => [id, rs.map(({ exercise: _, ...r }) => r)]),
        ),
      },
      null,
      1,
    ) + "\n",
  );
  return result;
}

/**
 * Scores an executed grading edition of a submission against the master's
 * records. `skipped` maps the cells the grader replaced (after a timeout or
 * a kernel crash) to the reason; `token` is the run's token. Also returns
 * notes (built-ins put back, forged records).
 */
export function scoreExecuted(
  executed: Notebook,
  master: Master,
  skipped: Map<number, { status: "timeout" | "crash"; reason: string }>,
  recording: MasterRecording,
  token: string,
): { exercises: ExerciseGrade[]; notes: string[] } {
  const notes: string[] = [];
  const setup = setupProblem(executed);
  const exercises = master.analysis.exercises.map((ex): ExerciseGrade => {
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
    const solIdx = cellIndexById(executed, ex.id);
    if (solIdx >= 0 && skipped.has(solIdx)) {
      const s = skipped.get(solIdx)!;
      return grade(s.status, `the solution cell ${s.reason}`);
    }
    const idx = cellIndexById(executed, `${ex.id}-check`);
    if (idx < 0) return grade("not run", "check cell missing");
    if (skipped.has(idx)) {
      const s = skipped.get(idx)!;
      return grade(s.status, `the check ${s.reason}`);
    }
    if (setup) return grade("not run", setup);
    const problem = recording.problems[ex.id];
    if (problem) return grade("not run", `cannot be graded: ${problem}`);
    const cell = executed.cells[idx];
    const { records, forged, spoiled } = recordsOf(cell, token);
    if (forged > 0) {
      notes.push(
        `check ${ex.id}: ${forged} check record${
          forged === 1 ? "" : "s"
        } without this run's token (forged) ignored`,
      );
    }
    for (const r of records.filter((r) => r.kind === "restored")) {
      notes.push(
        `before check ${ex.id} the grader put back built-ins the submission had changed: ${
          (r.names ?? []).join(", ")
        }`,
      );
    }
    const got = records.filter((r) => r.kind !== "restored");
    const want = recording.checks[ex.id] ?? [];
    const error = errorOf(cell);
    if (spoiled) {
      return grade(
        "fail",
        "the check was started again while it ran (by the submission's code): its results were not kept",
      );
    }
    if (error) {
      // The first wrong result, judged here, says more than the kernel can be trusted to.
      const wrong = judgeRecords(
        ex.id,
        want.slice(0, got.length),
        got.slice(0, want.length),
      );
      const msg = firstLine(error.evalue ?? "").replace(/^(❌|✅)\s*/u, "") ||
        String(error.ename);
      if (wrong) return grade("fail", wrong);
      return grade(
        /not implemented/i.test(msg) ? "not implemented" : "fail",
        msg,
      );
    }
    if (cell.execution_count === null || cell.execution_count === undefined) {
      return grade("not run", "the check cell did not run");
    }
    const wrong = judgeRecords(ex.id, want, got);
    return wrong ? grade("fail", wrong) : grade("pass", "correct");
  });
  return { exercises, notes };
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
  /** Kernel working directory (default notebooks/, so `../lib/mod.ts` resolves); its parent is the course whose lib/ runs. */
  cwd?: string;
  /** The python with nbclient (default: from setup()). */
  python?: string;
  /** "auto" (default): bubblewrap when it works here, else none with a warning. */
  sandbox?: SandboxMode;
  /** Use `masters[0]` without matching (what `masterPath` does, already read). */
  forceMaster?: boolean;
}

function absolute(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
}

/** The settings shared by every run of one grading (resolved once). */
async function settingsOf(
  options: GradeOptions,
  outDir: string,
): Promise<Omit<RunSettings, "work"> & { outDir: string }> {
  const python = options.python ??
    (await (await import("./setup.ts")).setup()).python;
  const cwd = options.cwd ?? `${root}notebooks`;
  const courseRoot = await Deno.realPath(`${cwd}/..`);
  return {
    python,
    timeout: options.timeout ?? 120,
    quick: options.quick ?? true,
    courseRoot,
    sandbox: await sandboxStatus(options.sandbox ?? "auto"),
    outDir,
  };
}

function notRun(master: Master, message: string): ExerciseGrade[] {
  return master.analysis.exercises.map((e) => ({
    id: e.id,
    points: 0,
    maxPoints: e.points,
    status: e.kind === "written" ? "manual" : "not run",
    message: e.kind === "written" ? "written answer: grade by hand" : message,
  }));
}

/**
 * Grades one submission and writes `<outDir>/<name>.json` and
 * `<outDir>/<name>.ipynb`. Never throws for a bad submission (unreadable,
 * unmatched, hanging, crashing, tampering): the report says what happened
 * and scores what could not be graded as zero.
 */
export async function gradeSubmission(
  path: string,
  options: GradeOptions = {},
): Promise<GradeReport> {
  const started = performance.now();
  const outDir = absolute(options.outDir ?? `${root}build/grades`);
  const name = options.name ??
    (path.split("/").at(-1) ?? "submission").replace(/\.ipynb$/, "");
  await Deno.mkdir(outDir, { recursive: true });
  const report: GradeReport = {
    name,
    submission: path,
    master: null,
    score: 0,
    maxScore: 0,
    exercises: [],
    notes: [],
    sandbox: "none",
    seconds: 0,
  };
  const finish = async () => {
    report.score = report.exercises.reduce((s, e) => s + e.points, 0);
    report.maxScore = report.exercises.filter((e) => e.status !== "manual")
      .reduce((s, e) => s + e.maxPoints, 0);
    report.seconds = Math.round((performance.now() - started) / 100) / 10;
    // Without the time: the same submission always gives the same file.
    const { seconds: _, ...saved } = report;
    await Deno.writeTextFile(
      `${outDir}/${name}.json`,
      JSON.stringify(saved, null, 2) + "\n",
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
  const master = options.masterPath || options.forceMaster
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
  const settings = await settingsOf(options, outDir);
  report.sandbox = settings.sandbox.kind;
  const recording = await recordMaster(master, settings);
  report.notes.push(...recording.notes);
  const skipped = new Map<
    number,
    { status: "timeout" | "crash"; reason: string }
  >();
  const nb = gradingEdition(prepared.nb, master, settings.courseRoot);
  const work = `${outDir}/.work-${name}`;
  // Cell numbers in notes are the submission's (the setup cell is the grader's).
  const shown = (cell: number) => cell - 1;
  let executed: Notebook | null = null;
  let token = "";
  try {
    // Each hang or crash neutralises one cell, so this ends after at most
    // (number of code cells + 1) runs.
    for (let run = 0; run <= nb.cells.length; run++) {
      const r = await runOnce(nb, "submission", { ...settings, work });
      executed = r.executed;
      token = r.token;
      if (r.report.ename === "ExecutorError") {
        report.notes.push(
          `the executor failed: ${firstLine(r.report.evalue ?? "")}`,
        );
        break;
      }
      const stop = r.report.stopped;
      if (!stop) break;
      const cell = stop.cell;
      if (
        cell === null || cell === undefined || cell === 0 || skipped.has(cell)
      ) {
        report.notes.push(
          `execution stopped (${stop.ename}) and could not be resumed`,
        );
        break;
      }
      const status = stop.ename === "CellTimeoutError" ? "timeout" : "crash";
      const reason = status === "timeout"
        ? `did not finish within ${settings.timeout}s (an infinite loop?) and was stopped`
        : `crashed the kernel (${stop.ename})`;
      skipped.set(cell, { status, reason });
      const gid = nbgraderOf(nb.cells[cell])?.grade_id;
      report.notes.push(
        `cell ${shown(cell)}${
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
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  if (executed) {
    // Feedback for the student: students' outputs are never signed (trusted).
    await writeNotebook(`${outDir}/${name}.ipynb`, executed);
    const scored = scoreExecuted(executed, master, skipped, recording, token);
    report.exercises = scored.exercises;
    report.notes.push(...scored.notes);
  } else {
    report.notes.push("no executed notebook was produced");
    report.exercises = notRun(master, "the notebook could not be executed");
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

function sandboxLine(s: SandboxStatus): string {
  return s.kind === "bubblewrap"
    ? `sandbox: ${s.detail}: each submission in its own kernel, no network, ` +
      "nothing of this machine writable, the masters and other submissions out of sight"
    : `WARNING: no sandbox (${s.detail}): submissions run with your permissions, ` +
      "can use the network and read and write your files (the masters included). " +
      "Install bubblewrap, or grade in a throw-away container.";
}

if (import.meta.main) {
  const opts: GradeOptions = {};
  let mastersDir = `${root}notebooks`;
  let jobs = navigator.hardwareConcurrency || 1;
  const inputs: string[] = [];
  const usage =
    "usage: deno task grade [--timeout=SECONDS] [--full] [--jobs=N] [--sandbox=auto|bubblewrap|none] " +
    "[--master=FILE] [--masters=DIR] [--out=DIR] <submission.ipynb | folder>...";
  for (const a of Deno.args) {
    if (a.startsWith("--timeout=")) {
      opts.timeout = Number(a.slice(10));
      if (!Number.isInteger(opts.timeout) || opts.timeout <= 0) {
        console.error(
          `--timeout must be a positive whole number of seconds, got ${a}`,
        );
        Deno.exit(2);
      }
    } else if (a.startsWith("--jobs=")) {
      jobs = Number(a.slice(7));
      if (!Number.isInteger(jobs) || jobs <= 0) {
        console.error(`--jobs must be a positive whole number, got ${a}`);
        Deno.exit(2);
      }
    } else if (a.startsWith("--sandbox=")) {
      const mode = a.slice(10);
      if (!["auto", "bubblewrap", "none"].includes(mode)) {
        console.error(`--sandbox must be auto, bubblewrap or none, got ${a}`);
        Deno.exit(2);
      }
      opts.sandbox = mode as SandboxMode;
    } else if (a === "--full") opts.quick = false;
    else if (a === "--quick") opts.quick = true;
    else if (a.startsWith("--master=")) opts.masterPath = a.slice(9);
    else if (a.startsWith("--masters=")) mastersDir = a.slice(10);
    else if (a.startsWith("--out=")) opts.outDir = a.slice(6);
    else if (a === "-h" || a === "--help") {
      console.log(usage);
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
  const forced = opts.masterPath;
  opts.masterPath = undefined;
  const outDir = absolute(opts.outDir ?? `${root}build/grades`);
  let settings: Awaited<ReturnType<typeof settingsOf>>;
  try {
    files = await collect(inputs);
    if (forced) {
      // Read once here; every submission then uses it without matching.
      const nb = await readNotebook(forced);
      const file = forced.split("/").at(-1)!;
      opts.masters = [{ file, nb, analysis: analyzeNotebook(nb, file) }];
      opts.forceMaster = true;
    } else opts.masters = await loadMasters(mastersDir);
    opts.python = (await (await import("./setup.ts")).setup()).python;
    await Deno.mkdir(outDir, { recursive: true });
    settings = await settingsOf(opts, outDir);
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(2);
  }
  console.log(sandboxLine(settings.sandbox));
  // The masters these submissions need, each recorded once, in parallel too.
  const needed = new Set<Master>();
  for (const f of files) {
    const nb = await readNotebook(f).catch(() => null);
    const m = forced
      ? opts.masters[0]
      : nb
      ? chooseMaster(nb, f, opts.masters)
      : null;
    if (m) needed.add(m);
  }
  let problems = 0;
  await inParallel([...needed], jobs, async (m) => {
    const r = await recordMaster(m, settings);
    const bad = Object.entries(r.problems);
    problems += bad.length;
    console.log(
      `master ${m.file}: recorded in ${r.seconds}s${
        bad.length ? `; cannot grade ${bad.map(([id]) => id).join(", ")}` : ""
      }`,
    );
    for (const [id, why] of bad) console.log(`  ${id}: ${why}`);
  });
  const names = outputNames(files);
  const reports = await inParallel(
    files,
    jobs,
    (f, i) => gradeSubmission(f, { ...opts, name: names[i] }),
    inInputOrder((r) => console.log(formatReport(r) + "\n")),
  );
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
  if (settings.sandbox.kind === "none") {
    console.log(sandboxLine(settings.sandbox));
  }
  console.log(
    `reports in ${outDir}/ (<name>.json, executed <name>.ipynb, summary.json)`,
  );
  if (problems > 0) Deno.exit(1);
}
