import { makeTestDir } from "./temp.ts";
import { assert, assertEquals } from "./assert.ts";
import {
  cellsFromText,
  notebookFromCells,
} from "../tasks/notebook_from_text.ts";
import { writeNotebook } from "../tasks/ipynb.ts";
import { ensureJupyter } from "../tasks/setup.ts";

const root = new URL("../", import.meta.url).pathname;

async function runNotebooks(dir: string, ...extra: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-run",
      "--allow-sys",
      `${root}tasks/notebooks.ts`,
      `--dir=${dir}`,
      `--out=${dir}/out`,
      "--timeout=60",
      // HTML only when a test asks for it (--html is not a runner option).
      ...(extra.includes("--html") ? [] : ["--no-html"]),
      ...extra.filter((a) => a !== "--html"),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    text: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test({
  name: "the notebook runner names the failing notebook, cell index and error",
  // Starts a real Deno kernel through Jupyter.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await makeTestDir("runner-");
    try {
      const good = notebookFromCells(cellsFromText(
        "// %% [markdown]\n# fine\n// %%\nconst x: number = 1 + 1;\n" +
          "`${x * 21} threads=${Deno.env.get('TFJS_WASM_THREADS')}`\n",
      ));
      const bad = notebookFromCells(cellsFromText(
        "// %% [markdown]\n# broken\n// %%\nconst a = 1;\n// %%\nthrow new Error(`boom ${a}`);\n// %%\nconsole.log('never');\n",
      ));
      await writeNotebook(`${dir}/a_good.ipynb`, good);
      await writeNotebook(`${dir}/b_bad.ipynb`, bad);
      // Two at a time: the lines still come in notebook order.
      const { code, text } = await runNotebooks(dir, "--jobs=2");
      assertEquals(code, 1, text);
      assert(text.includes("2 at a time"), text);
      assert(/a_good\.ipynb\s+[\d.]+s\s+ok/.test(text), text);
      assert(/b_bad\.ipynb\s+[\d.]+s\s+FAILED/.test(text), text);
      assert(text.indexOf("a_good.ipynb") < text.indexOf("b_bad.ipynb"), text);
      assert(text.includes("b_bad.ipynb at cell 2: Error: boom 1"), text);
      const executed = JSON.parse(
        await Deno.readTextFile(`${dir}/out/notebooks/a_good.ipynb`),
      );
      // The cell's value, not console.log: the Deno kernel may deliver stdout
      // after it reports the cell finished, and nbclient then drops it.
      assert(
        JSON.stringify(executed.cells[1].outputs).includes("42"),
        JSON.stringify(executed),
      );
      // Each of the two kernels gets its share of the CPUs.
      const share = Deno.env.get("TFJS_WASM_THREADS") ??
        String(Math.max(1, Math.floor(navigator.hardwareConcurrency / 2)));
      assert(
        JSON.stringify(executed.cells[1].outputs).includes(`threads=${share}`),
        JSON.stringify(executed.cells[1].outputs),
      );
      // One notebook by name.
      const only = await runNotebooks(dir, "a_good");
      assertEquals(only.code, 0, only.text);
      assert(!only.text.includes("b_bad"));
      const zero = await runNotebooks(dir, "--jobs=0");
      assert(zero.code !== 0, zero.text);
      assert(
        zero.stderr.includes("--jobs must be a positive whole number"),
        zero.stderr,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Whether Jupyter's notary trusts a notebook (as `jupyter trust` would say). */
async function isTrusted(python: string, path: string): Promise<boolean> {
  const out = await new Deno.Command(python, {
    args: [
      "-c",
      "import sys, nbformat\nfrom nbformat.sign import NotebookNotary\n" +
      "nb = nbformat.read(sys.argv[1], as_version=4)\n" +
      "print(NotebookNotary().check_signature(nb))",
      path,
    ],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).trim() === "True";
}

Deno.test({
  name:
    "executed notebooks open trusted, and a rendering that loses a figure fails the run",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { python } = await ensureJupyter();
    const dir = await makeTestDir("runner-");
    try {
      const svg = (inner: string) =>
        `<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40">${inner}</svg>`;
      const display = (svgText: string) =>
        `await Deno.jupyter.display({ "image/svg+xml": ${
          JSON.stringify(svgText)
        }, "text/plain": "chart" }, { raw: true });\n`;
      const good = notebookFromCells(cellsFromText(
        `// %%\n${display(svg('<rect width="100" height="30"/>'))}`,
      ));
      // An unclosed <g>: inlined, it would swallow the rest of the page.
      const bad = notebookFromCells(cellsFromText(
        `// %%\n${display(svg("<g><rect width='100' height='30'/>"))}`,
      ));
      await writeNotebook(`${dir}/a_chart.ipynb`, good);
      await writeNotebook(`${dir}/b_broken_chart.ipynb`, bad);
      const { code, text } = await runNotebooks(dir, "--html");
      assertEquals(code, 1, text);
      assert(/a_chart\.ipynb\s+[\d.]+s\s+ok/.test(text), text);
      assert(/b_broken_chart\.ipynb\s+[\d.]+s\s+FAILED/.test(text), text);
      assert(text.includes("not well-formed SVG"), text);
      assert(text.includes("1 of 2 notebook(s) failed"), text);
      const html = await Deno.readTextFile(`${dir}/out/html/a_chart.html`);
      assert(html.includes('<rect width="100" height="30"/>'), "chart lost");
      assert(await isTrusted(python, `${dir}/out/notebooks/a_chart.ipynb`));
      // Signing is what makes it trusted: an edited copy is not.
      const edited = JSON.parse(
        await Deno.readTextFile(`${dir}/out/notebooks/a_chart.ipynb`),
      );
      edited.cells[0].outputs[0].data["text/plain"] = "changed";
      await Deno.writeTextFile(`${dir}/edited.ipynb`, JSON.stringify(edited));
      assert(!(await isTrusted(python, `${dir}/edited.ipynb`)));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
