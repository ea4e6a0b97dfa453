/**
 * Every formula of every notebook renders, and formatting cannot break one.
 *
 * `deno fmt` formats the markdown cells of notebooks. It does not know TeX:
 * a display block whose line starts with `+ `, `- ` or `1. ` becomes a list
 * item, and a block is joined to the paragraph before it or split by a blank
 * line (notebook 02's ELBO once rendered broken that way). These tests parse
 * the math of each markdown cell as Jupyter does (`$$...$$` display blocks,
 * `$...$` inline), render it with KaTeX in strict mode, reject blank lines
 * inside a block, and run the formatter on copies of the notebooks to show
 * that the committed formulas are a fixed point of it.
 */
import katex from "katex";
import { assert, assertEquals } from "./assert.ts";
import { makeTestDir } from "./temp.ts";
import { cellSource, type Notebook } from "../tasks/ipynb.ts";

const root = new URL("../", import.meta.url);
const notebookDir = new URL("notebooks/", root);

/** A formula of a markdown cell: its TeX and whether it is a display block. */
interface Formula {
  tex: string;
  display: boolean;
}

function markdownCells(path: string | URL): string[] {
  const { cells }: Notebook = JSON.parse(Deno.readTextFileSync(path));
  return cells.filter((c) => c.cell_type === "markdown").map(cellSource);
}

/**
 * The formulas of one markdown cell, or a description of why its dollar
 * signs do not pair up. Code spans and HTML comments hold no math.
 */
function formulasOf(markdown: string): Formula[] | string {
  const text = markdown
    .replace(/<!--[\s\S]*?-->/g, " ")
    .replace(/(`+)[\s\S]*?\1/g, " ")
    .replace(/\\\$/g, " ");
  const pieces = text.split("$$");
  if (pieces.length % 2 === 0) return "an unclosed $$ display block";
  const formulas: Formula[] = [];
  for (let i = 0; i < pieces.length; i++) {
    if (i % 2 === 1) {
      formulas.push({ tex: pieces[i], display: true });
      continue;
    }
    const inline = pieces[i].split("$");
    if (inline.length % 2 === 0) {
      return `an unclosed $ in "${pieces[i].trim().slice(0, 60)}"`;
    }
    for (let j = 1; j < inline.length; j += 2) {
      formulas.push({ tex: inline[j], display: false });
    }
  }
  return formulas;
}

/** What is wrong with a formula as Jupyter and nbconvert would render it, or "". */
function formulaProblem({ tex, display }: Formula): string {
  if (/\n[ \t]*\n/.test(tex)) {
    return "a blank line inside it (markdown ends the paragraph there)";
  }
  if (tex.trim() === "") return "an empty formula";
  try {
    katex.renderToString(tex, {
      displayMode: display,
      throwOnError: true,
      strict: "error",
    });
  } catch (e) {
    return `KaTeX: ${(e as Error).message}`;
  }
  return "";
}

/** Every problem of a notebook's formulas (each naming the cell and the formula), and how many it has. */
function checkNotebook(
  path: string | URL,
  label: string,
): { problems: string[]; count: number } {
  const problems: string[] = [];
  let count = 0;
  markdownCells(path).forEach((markdown, cell) => {
    const formulas = formulasOf(markdown);
    if (typeof formulas === "string") {
      problems.push(`${label}, markdown cell ${cell}: ${formulas}`);
      return;
    }
    count += formulas.length;
    for (const f of formulas) {
      const problem = formulaProblem(f);
      if (problem) {
        const shown = f.tex.trim().replace(/\s+/g, " ").slice(0, 70);
        problems.push(
          `${label}, markdown cell ${cell}: "${shown}": ${problem}`,
        );
      }
    }
  });
  return { problems, count };
}

function notebookFiles(): string[] {
  return [...Deno.readDirSync(notebookDir)]
    .map((e) => e.name)
    .filter((name) => name.endsWith(".ipynb"))
    .sort();
}

function notebookJSON(markdown: string): string {
  return JSON.stringify({
    cells: [{ cell_type: "markdown", metadata: {}, source: markdown }],
    metadata: {},
    nbformat: 4,
    nbformat_minor: 5,
  });
}

async function denoFmt(files: string[]): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    // build/ is excluded from formatting by deno.json; the project sets no
    // other formatter option, so the defaults are what `deno fmt` applies.
    args: ["fmt", "--quiet", "--no-config", ...files],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno fmt failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

Deno.test("every formula of every notebook renders, with no blank line inside a display block", () => {
  const problems: string[] = [];
  let formulas = 0;
  for (const name of notebookFiles()) {
    const found = checkNotebook(new URL(name, notebookDir), name);
    problems.push(...found.problems);
    formulas += found.count;
  }
  assertEquals(problems, []);
  assert(
    formulas > 100,
    `only ${formulas} formulas found: is the parser wrong?`,
  );
});

Deno.test("the formatter leaves every notebook's formulas as they are", async () => {
  const dir = await makeTestDir("display-math-");
  try {
    const names = notebookFiles();
    const copies = names.map((name) => `${dir}/${name}`);
    names.forEach((name, i) =>
      Deno.copyFileSync(new URL(name, notebookDir), copies[i])
    );
    await denoFmt(copies);
    names.forEach((name, i) => {
      const before = markdownCells(new URL(name, notebookDir)).map(formulasOf);
      const after = markdownCells(copies[i]).map(formulasOf);
      assertEquals(after, before, `deno fmt changed a formula of ${name}`);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the check catches what the formatter does to a block with an operator at a line start", async () => {
  const dir = await makeTestDir("display-math-");
  try {
    // The ELBO identity as notebook 02 once had it: the "+" line is a list
    // item to the formatter, and the block comes apart.
    const risky =
      `The identity\n\n$$\n\\log p(x) = \\mathcal L\n+ \\mathrm{KL}(q \\| p)\n$$\n`;
    // The same block with the operator at the end of the line before it.
    const safe =
      `The identity\n\n$$\n\\log p(x) = \\mathcal L +\n\\mathrm{KL}(q \\| p)\n$$\n`;
    const riskyPath = `${dir}/risky.ipynb`;
    const safePath = `${dir}/safe.ipynb`;
    Deno.writeTextFileSync(riskyPath, notebookJSON(risky));
    Deno.writeTextFileSync(safePath, notebookJSON(safe));
    assertEquals(checkNotebook(riskyPath, "risky").problems, []);
    assertEquals(checkNotebook(safePath, "safe").problems, []);
    await denoFmt([riskyPath, safePath]);
    const found = checkNotebook(riskyPath, "risky").problems;
    assert(
      found.length > 0,
      `the formatter's output passed the check: ${markdownCells(riskyPath)}`,
    );
    assertEquals(checkNotebook(safePath, "safe").problems, []);
    assertEquals(markdownCells(safePath).map(formulasOf), [formulasOf(safe)]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the formula parser pairs dollars, skips code spans and reports KaTeX errors", () => {
  assertEquals(formulasOf("a $x$ and `$not math$` then $$y$$"), [
    { tex: "x", display: false },
    { tex: "y", display: true },
  ]);
  assert(typeof formulasOf("a $$ b") === "string");
  assert(typeof formulasOf("costs $5 each") === "string");
  assert(
    formulaProblem({ tex: "\\frac{1}{", display: true }).startsWith("KaTeX"),
  );
  assert(
    formulaProblem({ tex: "a\n\nb", display: true }).includes("blank line"),
  );
  assertEquals(
    formulaProblem({ tex: "\\tfrac12 \\log 4", display: false }),
    "",
  );
});
