/**
 * Showing things in a notebook: `show(chart)` displays a chart, an image grid
 * or any value as its own output of the running cell (awaited, so it reaches
 * the cell that made it), and `showSource(file, name)` displays the source of
 * a library function, read from the file when the cell runs.
 *
 * ```ts
 * await showSource("lib/autodiff.ts", "stopGradient");
 * await show(lossCurveFigure(history));
 * ```
 *
 * Outside Jupyter (tests, a terminal) both print plain text to stdout.
 *
 * @module
 */
import { written } from "./iopub.ts";
import { sourceFor, type SourceOptions } from "./source.ts";

type Bundle = Record<string, unknown>;
const JUPYTER_DISPLAY = Symbol.for("Jupyter.display");

interface JupyterApi {
  display(obj: unknown, options?: { raw?: boolean }): Promise<void>;
}

function jupyterApi(): JupyterApi | null {
  try {
    // Deno.jupyter exists only inside the kernel; elsewhere the getter throws.
    const j = (Deno as unknown as { jupyter?: JupyterApi }).jupyter;
    return j && typeof j.display === "function" ? j : null;
  } catch {
    return null;
  }
}

/** True inside the Jupyter Deno kernel. */
export function inJupyter(): boolean {
  return jupyterApi() !== null;
}

function bundleOf(value: unknown): Bundle {
  const own = (value as Record<symbol, unknown> | null)?.[JUPYTER_DISPLAY];
  if (typeof own === "function") return own.call(value) as Bundle;
  return {
    "text/plain": typeof value === "string" ? value : Deno.inspect(value, {
      colors: false,
      depth: 4,
    }),
  };
}

/**
 * Displays `value` (a chart, an image grid, a markdown block, any value) as
 * an output of the current cell. Await it: the output then belongs to the
 * cell that made it, even when the kernel is slow.
 */
export async function show(value: unknown): Promise<void> {
  const bundle = bundleOf(value);
  const j = jupyterApi();
  if (!j) return console.log(String(bundle["text/plain"] ?? ""));
  await j.display(bundle, { raw: true }); // only queues the message
  await written(); // the kernel has written it to the frontend (lib/iopub.ts)
}

/**
 * Displays the source of `name` (a function, class, constant, or a method
 * `Class.method`) from `file` (relative to the repository root) as
 * highlighted TypeScript with a caption naming the file and lines. The text
 * is read from the file when the cell runs: what is shown is what runs.
 *
 * @throws ArgumentError when the file or the name does not exist
 */
export async function showSource(
  file: string,
  name: string,
  options: SourceOptions = {},
): Promise<void> {
  await show(sourceBlock(file, name, options, "showSource"));
}

/** A displayable block of source: markdown (highlighted by Jupyter and nbconvert) and plain text. */
export function sourceBlock(
  file: string,
  name: string,
  options: SourceOptions = {},
  where = "sourceBlock",
): { [JUPYTER_DISPLAY](): Bundle } {
  const s = sourceFor(where, file, name, options);
  const caption = `${s.file}, lines ${s.startLine}-${s.endLine}: ${s.name}`;
  // A fence longer than any run of backticks in the code cannot be closed early.
  const longest = Math.max(
    2,
    ...(s.code.match(/`+/g) ?? []).map((r) => r.length),
  );
  const fence = "`".repeat(longest + 1);
  return {
    [JUPYTER_DISPLAY]: () => ({
      "text/markdown":
        `**\`${s.file}\`** lines ${s.startLine}-${s.endLine}: \`${s.name}\`\n\n${fence}typescript\n${s.code}\n${fence}\n`,
      "text/plain": `// ${caption}\n${s.code}`,
    }),
  };
}
