/**
 * HTML renderings of executed notebooks with their charts intact
 * (tasks/render_html.py does the work with nbconvert and checks the result).
 * Used by the notebooks runner, the handouts and the course site.
 *
 * @module
 */

const script = new URL("./render_html.py", import.meta.url).pathname;

/** What tasks/render_html.py reports. */
export interface RenderReport {
  /** True when every figure of the notebook is in the HTML, unchanged. */
  ok: boolean;
  /** How many figures (SVG or PNG outputs) the notebook has. */
  figures: number;
  /** What is wrong: lost or altered figures, malformed SVG, a crash. */
  problems: string[];
}

/** Options of `renderHtml`. */
export interface RenderOptions {
  /** The page title (default: the notebook's file name). */
  title?: string;
  /**
   * Load no script from the network: KaTeX from `<offline>/katex` and
   * `<offline>/math.js`, `<offline>/site.css` (a path relative to the page).
   */
  offline?: string;
  /** Only check an existing `output` against the notebook's figures. */
  checkOnly?: boolean;
}

/**
 * Renders the executed notebook `input` to `output` (an .html path) and
 * checks that every figure survived. Never throws for a bad rendering: the
 * report says what went wrong.
 */
export async function renderHtml(
  python: string,
  input: string,
  output: string,
  options: RenderOptions = {},
): Promise<RenderReport> {
  const args = [script, input, output];
  if (options.title) args.push("--title", options.title);
  if (options.offline) args.push("--offline", options.offline);
  if (options.checkOnly) args.push("--check");
  const out = await new Deno.Command(python, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const last = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1);
  try {
    const report = JSON.parse(last ?? "") as RenderReport;
    if (typeof report.ok === "boolean") return report;
  } catch { /* a crash: report its error below */ }
  const err = new TextDecoder().decode(out.stderr).trim().split("\n");
  return {
    ok: false,
    figures: 0,
    problems: [`rendering failed: ${err.at(-1) || `exit code ${out.code}`}`],
  };
}
