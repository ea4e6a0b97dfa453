/**
 * The main job: executes every notebook in notebooks/ in order, headless,
 * writes the executed notebooks (signed, so they open trusted) and an HTML
 * rendering of each with its charts (tasks/render.ts) into build/, and prints
 * one line per notebook. A failure names the notebook, the cell index and the
 * error, and the task exits non-zero; so does a rendering that lost a figure.
 *
 * usage: deno task notebooks [--quick] [--jobs=N] [--timeout=SECONDS] [--no-html] [--dir=PATH] [--out=PATH] [NAME...]
 *   NAME matches a notebook file by prefix or substring (e.g. 01, gan).
 *   --quick (or QUICK=1) shrinks data and epochs so the course runs in minutes.
 *   --jobs=N runs N notebooks at a time (default 1; each in its own kernel),
 *   printing their lines in notebook order, each kernel on its share of the
 *   CPUs. Seeded results do not change (the matMuls and convolutions keep
 *   one thread's bits on any thread count); times do.
 *   --dir: where the notebooks are (default notebooks/); --out: where the
 *   executed copies (notebooks/) and HTML (html/) go (default build/).
 *
 * @module
 */
import { listIpynb } from "./ipynb.ts";
import { inInputOrder, inParallel } from "./parallel.ts";
import { renderHtml } from "./render.ts";
import { setup } from "./setup.ts";

const root = new URL("../", import.meta.url).pathname;
let notebooksDir = `${root}notebooks`;
let buildDir = `${root}build`;

interface Args {
  quick: boolean;
  jobs: number;
  timeout: number;
  html: boolean;
  names: string[];
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    quick: ["1", "true", "yes"].includes(
      (Deno.env.get("QUICK") ?? "").toLowerCase(),
    ),
    jobs: 1,
    timeout: 900,
    html: true,
    names: [],
  };
  for (const a of argv) {
    if (a === "--quick") args.quick = true;
    else if (a === "--full") args.quick = false;
    else if (a === "--no-html") args.html = false;
    else if (a.startsWith("--timeout=")) {
      args.timeout = Number(a.slice("--timeout=".length));
      if (!Number.isInteger(args.timeout) || args.timeout <= 0) {
        throw new Error(
          `--timeout must be a positive whole number of seconds, got ${a}`,
        );
      }
    } else if (a.startsWith("--jobs=")) {
      args.jobs = Number(a.slice("--jobs=".length));
      if (!Number.isInteger(args.jobs) || args.jobs < 1) {
        throw new Error(
          `--jobs must be a positive whole number of notebooks, got ${a}`,
        );
      }
    } else if (a.startsWith("--out=")) {
      buildDir = a.slice("--out=".length).replace(/\/+$/, "");
      if (!buildDir) throw new Error("--out needs a directory");
    } else if (a.startsWith("--dir=")) {
      // Another folder of notebooks (tests use fixtures); it must be inside
      // the repo so the kernel finds deno.json and lib/.
      notebooksDir = Deno.realPathSync(a.slice("--dir=".length));
    } else if (a === "-h" || a === "--help") {
      console.log(
        "usage: deno task notebooks [--quick|--full] [--jobs=N] [--timeout=SECONDS] [--no-html] [--dir=PATH] [--out=PATH] [NAME...]",
      );
      Deno.exit(0);
    } else if (a.startsWith("-")) {
      throw new Error(`unknown option ${a} (try --help)`);
    } else args.names.push(a);
  }
  return args;
}

/** The notebooks to run, in order, filtered by the given names. */
export function listNotebooks(names: string[] = []): Promise<string[]> {
  return listIpynb(notebooksDir, names);
}

/** What running one notebook printed, and the failures to list at the end. */
interface NotebookResult {
  ok: boolean;
  lines: string[];
  problems: string[];
}

/**
 * With several notebooks at a time, each kernel gets its share of the CPUs
 * (`TFJS_WASM_THREADS`, unless the user set it): kernels that start together
 * all find the CPUs idle and would each take two threads, and then wait for
 * one another's descheduled threads (oneDNN's passes split their work
 * statically). The bits do not depend on the count.
 */
function threadsPerJob(jobs: number): Record<string, string> {
  if (jobs === 1 || Deno.env.get("TFJS_WASM_THREADS") !== undefined) return {};
  const cpus = navigator.hardwareConcurrency ?? 1;
  return { TFJS_WASM_THREADS: String(Math.max(1, Math.floor(cpus / jobs))) };
}

/** Executes one notebook (and renders it) into `outDir` and `htmlDir`. */
async function runNotebook(
  file: string,
  args: Args,
  python: string,
  outDir: string,
  htmlDir: string,
): Promise<NotebookResult> {
  const lines: string[] = [];
  const problems: string[] = [];
  const log = (line: string) => lines.push(line);
  const out = `${outDir}/${file}`;
  const res = await new Deno.Command(python, {
    args: [
      `${root}tasks/execute_notebook.py`,
      `${notebooksDir}/${file}`,
      out,
      "--cwd",
      notebooksDir,
      "--timeout",
      String(args.timeout),
    ],
    env: { QUICK: args.quick ? "1" : "0", ...threadsPerJob(args.jobs) },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout =
    new TextDecoder().decode(res.stdout).trim().split("\n").at(-1) ?? "";
  let report: {
    ok: boolean;
    cell: number | null;
    ename: string;
    evalue: string;
    seconds: number;
  };
  try {
    report = JSON.parse(stdout);
  } catch {
    const err = new TextDecoder().decode(res.stderr).trim().split("\n").slice(
      -15,
    ).join("\n");
    report = {
      ok: false,
      cell: null,
      ename: "ExecutorError",
      evalue: err,
      seconds: 0,
    };
  }
  // A rendering that lost its figures fails the notebook: a blank chart
  // must never pass as "ok".
  const html = args.html
    ? await renderHtml(
      python,
      out,
      `${htmlDir}/${file.replace(/\.ipynb$/, ".html")}`,
    )
    : null;
  const ok = report.ok && (html?.ok ?? true);
  log(
    `${file.padEnd(40)} ${report.seconds.toFixed(1).padStart(7)}s  ${
      ok ? "ok" : "FAILED"
    }`,
  );
  if (!report.ok) {
    const where = report.cell === null ? "" : ` at cell ${report.cell}`;
    const msg = `${file}${where}: ${report.ename}: ${report.evalue}`;
    log(`  ${msg.split("\n").join("\n  ")}`);
    problems.push(msg.split("\n")[0]);
  }
  if (html && !html.ok) {
    const more = html.problems.length > 4
      ? `; ... (${html.problems.length - 4} more)`
      : "";
    const msg = `${file}: HTML rendering: ${
      html.problems.slice(0, 4).join("; ")
    }${more}`;
    log(`  ${msg}`);
    problems.push(msg);
  }
  return { ok, lines, problems };
}

async function main() {
  const args = parseArgs(Deno.args);
  const files = await listNotebooks(args.names);
  const { python } = await setup();
  const outDir = `${buildDir}/notebooks`;
  const htmlDir = `${buildDir}/html`;
  await Deno.mkdir(outDir, { recursive: true });
  await Deno.mkdir(htmlDir, { recursive: true });
  console.log(
    `running ${files.length} notebook(s) in ${
      args.quick ? "quick" : "full"
    } mode ` +
      `(${
        args.jobs > 1 ? `${args.jobs} at a time, ` : ""
      }per-cell timeout ${args.timeout}s); outputs in ${
        buildDir === `${root}build` ? "build/" : buildDir
      }`,
  );
  const failures: string[] = [];
  let failed = 0;
  const total = performance.now();
  // Up to `jobs` notebooks at a time; each one's lines print once it and
  // every notebook before it are done, so the output reads in order.
  await inParallel(
    files,
    args.jobs,
    (file) => runNotebook(file, args, python, outDir, htmlDir),
    inInputOrder((result) => {
      for (const line of result.lines) console.log(line);
      if (!result.ok) failed++;
      failures.push(...result.problems);
    }),
  );
  const secs = ((performance.now() - total) / 1000).toFixed(1);
  if (failures.length) {
    console.log(
      `\n${failed} of ${files.length} notebook(s) failed (${secs}s):`,
    );
    for (const f of failures) console.log(`  ${f}`);
    Deno.exit(1);
  }
  console.log(`all ${files.length} notebook(s) ok in ${secs}s`);
}

if (import.meta.main) await main();
