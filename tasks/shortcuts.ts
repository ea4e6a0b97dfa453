/**
 * `deno task shortcuts [--full] [NAME...]`: proves that no exercise answers
 * itself. The student edition ships all of lib/ and the notebooks show library
 * source beside the text, so an exercise must not be passable by calling or
 * copying code that edition contains. Each code exercise declares that
 * temptation as the first line of its solution region:
 *
 * ```
 * // BEGIN SOLUTION
 * // SHORTCUT: return klToUniform(logits);
 * ...the real answer...
 * // END SOLUTION
 * ```
 *
 * This task builds a "shortcut edition" of each master (every solution region
 * replaced by its shortcut line, hidden tests kept, as the grader runs them),
 * executes it headless (quick mode unless --full) and requires every check
 * cell to fail. An exercise without a SHORTCUT line is an error.
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
  executeNotebook,
  loadMasters,
  nbgraderOf,
  type NotebookAnalysis,
} from "./handout.ts";

const root = new URL("../", import.meta.url).pathname;
const SHORTCUT = /^\s*\/\/\s*SHORTCUT:\s*(.+)$/;

/** The shortcut of each code exercise of a master, or the problems found. */
export function shortcutsOf(nb: Notebook, analysis: NotebookAnalysis): {
  shortcuts: Map<string, string[]>;
  problems: string[];
} {
  const shortcuts = new Map<string, string[]>();
  const problems: string[] = [];
  for (const ex of analysis.exercises.filter((e) => e.kind === "code")) {
    const lines = cellSource(nb.cells[ex.solutionCell]).split("\n");
    const found: string[] = [];
    for (
      const r of analysis.regions[ex.solutionCell].filter((r) =>
        r.kind === "solution"
      )
    ) {
      const m = SHORTCUT.exec(lines[r.begin + 1] ?? "");
      if (!m) {
        problems.push(
          `${analysis.file}: exercise ${ex.id} (cell ${ex.solutionCell}): the solution region starting at line ${
            r.begin + 1
          } has no "// SHORTCUT: <code>" first line`,
        );
      } else found.push(m[1]);
    }
    shortcuts.set(ex.id, found);
  }
  return { shortcuts, problems };
}

/** The master with every code solution region replaced by its shortcut (hidden tests kept). */
export function shortcutEdition(
  nb: Notebook,
  analysis: NotebookAnalysis,
  shortcuts: Map<string, string[]>,
): Notebook {
  const cells: Cell[] = nb.cells.map((cell, i) => {
    const ex = analysis.exercises.find((e) =>
      e.solutionCell === i && e.kind === "code"
    );
    if (!ex) {
      return {
        ...cell,
        outputs: cell.cell_type === "code" ? [] : cell.outputs,
      };
    }
    const lines = cellSource(cell).split("\n");
    const out: string[] = [];
    let next = 0;
    const regions = analysis.regions[i].filter((r) => r.kind === "solution");
    regions.forEach((r, k) => {
      out.push(...lines.slice(next, r.begin));
      const indent = /^\s*/.exec(lines[r.begin])![0];
      out.push(`${indent}${shortcuts.get(ex.id)![k]}`);
      next = r.end + 1;
    });
    out.push(...lines.slice(next));
    return { ...cell, source: toSourceLines(out.join("\n")), outputs: [] };
  });
  return { ...nb, cells };
}

/** Problems of an executed shortcut edition: every check cell must have failed. */
export function shortcutProblems(file: string, executed: Notebook): string[] {
  const problems: string[] = [];
  executed.cells.forEach((cell, i) => {
    const meta = nbgraderOf(cell);
    if (cell.cell_type !== "code" || meta?.grade !== true) return;
    const outputs = (cell.outputs ?? []) as {
      output_type: string;
      text?: string | string[];
    }[];
    const failed = outputs.some((o) => o.output_type === "error");
    const text = outputs.map((
      o,
    ) => (Array.isArray(o.text) ? o.text.join("") : o.text ?? "")).join("");
    if (!failed || /: correct\b/.test(text)) {
      problems.push(
        `${file}: check ${meta.grade_id} (cell ${i}) passes with the shortcut: the exercise answers itself`,
      );
    }
  });
  return problems;
}

type Master = Awaited<ReturnType<typeof loadMasters>>[number];
let jupyter: Promise<{ python: string }> | null = null;

/**
 * Builds and executes the shortcut edition of each master (from
 * `loadMasters`) and returns every problem: a code exercise without a
 * SHORTCUT line, a shortcut edition that stops, or a check that passes.
 * `log` receives one summary line per notebook.
 */
export async function checkShortcuts(
  masters: Master[],
  { quick = true, log = console.log }: {
    quick?: boolean;
    log?: (line: string) => void;
  } = {},
): Promise<string[]> {
  // Jupyter, the kernel and the data are checked once per process.
  jupyter ??= import("./setup.ts").then((m) => m.setup());
  const { python } = await jupyter;
  const dir = `${root}build/shortcuts`;
  await Deno.mkdir(dir, { recursive: true });
  const problems: string[] = [];
  for (const m of masters) {
    const { shortcuts, problems: missing } = shortcutsOf(m.nb, m.analysis);
    problems.push(...missing);
    if (missing.length > 0 || shortcuts.size === 0) continue;
    const input = `${dir}/${m.file}`;
    await writeNotebook(input, shortcutEdition(m.nb, m.analysis, shortcuts));
    const output = `${dir}/executed_${m.file}`;
    const r = await executeNotebook(python, input, output, {
      cwd: `${root}notebooks`,
      timeout: 900,
      quick,
      allowErrors: true,
      sign: false,
    });
    const bad = r.stopped
      ? [
        `${m.file}: stopped at cell ${r.stopped.cell}: ${r.stopped.ename}: ${r.stopped.evalue}`,
      ]
      : shortcutProblems(m.file, await readNotebook(output));
    log(
      `${m.file.padEnd(36)} ${
        r.seconds.toFixed(1).padStart(7)
      }s  ${shortcuts.size} shortcuts  ${bad.length ? "FAILED" : "ok"}`,
    );
    problems.push(...bad);
  }
  return problems;
}

async function main(args: string[]): Promise<number> {
  const quick = !args.includes("--full");
  const names = args.filter((a) => !a.startsWith("--"));
  const masters = await loadMasters(`${root}notebooks`, names);
  const problems = await checkShortcuts(masters, { quick });
  for (const p of problems) console.log(`  ${p}`);
  return problems.length === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
