import { makeTestDir } from "./temp.ts";
import { assert, assertEquals } from "./assert.ts";
import {
  cellsFromText,
  notebookFromCells,
} from "../tasks/notebook_from_text.ts";
import { writeNotebook } from "../tasks/ipynb.ts";

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
      "--no-html",
      "--timeout=60",
      ...extra,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, text: new TextDecoder().decode(out.stdout) };
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
        "// %% [markdown]\n# fine\n// %%\nconst x: number = 1 + 1;\nx * 21\n",
      ));
      const bad = notebookFromCells(cellsFromText(
        "// %% [markdown]\n# broken\n// %%\nconst a = 1;\n// %%\nthrow new Error(`boom ${a}`);\n// %%\nconsole.log('never');\n",
      ));
      await writeNotebook(`${dir}/a_good.ipynb`, good);
      await writeNotebook(`${dir}/b_bad.ipynb`, bad);
      const { code, text } = await runNotebooks(dir);
      assertEquals(code, 1, text);
      assert(/a_good\.ipynb\s+[\d.]+s\s+ok/.test(text), text);
      assert(/b_bad\.ipynb\s+[\d.]+s\s+FAILED/.test(text), text);
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
      // One notebook by name.
      const only = await runNotebooks(dir, "a_good");
      assertEquals(only.code, 0, only.text);
      assert(!only.text.includes("b_bad"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
