/**
 * Authoring aid: turns a plain-text notebook ("percent" format) into an
 * .ipynb with the Deno kernelspec and no outputs. Cells start with a line
 * `// %%` (code) or `// %% [markdown]` (markdown); in markdown cells the
 * text is taken as is. Exercise cells (docs/exercises.md) get their nbgrader
 * metadata from `// %% solution <id>` (a code solution cell),
 * `// %% [markdown] solution <id>` (a written answer) and
 * `// %% check <id> <points>` (the graded check cell). The .ipynb in notebooks/ is the master; the text is
 * only a convenient way to write a new one.
 *
 * usage: deno run --allow-read --allow-write tasks/notebook_from_text.ts IN.txt OUT.ipynb [--force]
 *
 * @module
 */
import {
  type Cell,
  type Notebook,
  toSourceLines,
  writeNotebook,
} from "./ipynb.ts";

/** Parses the percent format into notebook cells. */
export function cellsFromText(text: string): Cell[] {
  const cells: Cell[] = [];
  let current: {
    type: "code" | "markdown";
    lines: string[];
    metadata: Record<string, unknown>;
  } | null = null;
  const flush = () => {
    if (!current) return;
    const source = current.lines.join("\n").replace(/^\n+|\s+$/g, "");
    if (source) {
      const cell: Cell = {
        cell_type: current.type,
        id: crypto.randomUUID().slice(0, 8),
        metadata: current.metadata,
        source: toSourceLines(source),
      };
      if (current.type === "code") {
        cell.outputs = [];
        cell.execution_count = null;
      }
      cells.push(cell);
    }
  };
  for (const line of text.split("\n")) {
    const m = line.match(
      /^\/\/ %%\s*(\[markdown\])?\s*(?:(solution|check)\s+(\S+)(?:\s+(\d+(?:\.\d+)?))?)?\s*$/,
    );
    if (m) {
      flush();
      current = { type: m[1] ? "markdown" : "code", lines: [], metadata: {} };
      if (m[2]) {
        current.metadata = {
          nbgrader: nbgraderMetadata(m[2], m[3], m[4], line),
        };
      }
    } else if (line.startsWith("// %%")) {
      throw new Error(`cannot read the cell marker: ${line}`);
    } else {
      (current ??= { type: "code", lines: [], metadata: {} }).lines.push(line);
    }
  }
  flush();
  return cells;
}

function nbgraderMetadata(
  kind: string,
  id: string,
  points: string | undefined,
  line: string,
): Record<string, unknown> {
  const base = { schema_version: 3, task: false };
  if (kind === "solution") {
    return {
      ...base,
      solution: true,
      grade: false,
      locked: false,
      grade_id: id,
    };
  }
  if (points === undefined) {
    throw new Error(`a check cell needs points: ${line}`);
  }
  return {
    ...base,
    solution: false,
    grade: true,
    locked: true,
    grade_id: `${id}-check`,
    points: Number(points),
  };
}

/** A new notebook with the Deno kernelspec. */
export function notebookFromCells(cells: Cell[]): Notebook {
  return {
    cells,
    metadata: {
      kernelspec: {
        display_name: "Deno",
        language: "typescript",
        name: "deno",
      },
      language_info: {
        codemirror_mode: "typescript",
        file_extension: ".ts",
        mimetype: "text/x.typescript",
        name: "typescript",
        nbconvert_exporter: "script",
        pygments_lexer: "typescript",
        version: "5.9.2",
      },
    },
    nbformat: 4,
    nbformat_minor: 5,
  };
}

if (import.meta.main) {
  const [input, output] = Deno.args.filter((a) => !a.startsWith("--"));
  if (!input || !output) {
    console.error("usage: notebook_from_text.ts IN.txt OUT.ipynb [--force]");
    Deno.exit(2);
  }
  const exists = await Deno.stat(output).then(() => true, () => false);
  if (exists && !Deno.args.includes("--force")) {
    console.error(`${output} exists; pass --force to replace it`);
    Deno.exit(1);
  }
  await writeNotebook(
    output,
    notebookFromCells(cellsFromText(await Deno.readTextFile(input))),
  );
  console.log(`wrote ${output}`);
}
