/**
 * The library against a real Deno Jupyter kernel, driven by jupyter_client
 * (tests/jupyter_session.py): Kernel > Interrupt during `trainLoop`, and
 * where the outputs of `await show(...)` land on a loaded machine.
 */
import { assert, assertEquals } from "./assert.ts";
import { makeTestDir } from "./temp.ts";
import { ensureDenoKernel, ensureJupyter } from "../tasks/setup.ts";

const root = new URL("../", import.meta.url).pathname;

interface Message {
  type: string;
  parent: number | null;
  text: string;
  after_idle: boolean;
}
interface Session {
  alive: boolean;
  cells: { status: string | null; execution_count: number | null }[];
  messages: Message[];
}

async function session(
  cells: { code: string; interrupt_when?: string; timeout?: number }[],
  busy = false,
): Promise<Session> {
  const { jupyter, python } = await ensureJupyter();
  await ensureDenoKernel(jupyter);
  const dir = await makeTestDir("kernel-");
  try {
    const spec = `${dir}/spec.json`;
    await Deno.writeTextFile(
      spec,
      JSON.stringify({ cwd: `${root}notebooks`, kernel: "deno", busy, cells }),
    );
    const out = await new Deno.Command(python, {
      args: [`${root}tests/jupyter_session.py`, spec],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    assert(
      out.success,
      `jupyter_session.py failed:\n${new TextDecoder().decode(out.stderr)}`,
    );
    return JSON.parse(text.split("\n").at(-1)!);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const textOf = (s: Session) => s.messages.map((m) => m.text).join("\n");

Deno.test({
  name:
    "Kernel > Interrupt stops trainLoop between steps; the model, the history and the kernel live on",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const s = await session([
      { code: 'import { trainLoop } from "../lib/train.ts";' },
      {
        code: `const model = { w: 5 };
const history = await trainLoop((i) => {
  const t = performance.now();
  while (performance.now() - t < 20) { /* a slow step */ }
  model.w *= 0.99;
  return { loss: model.w ** 2 };
}, { steps: 100000, label: "demo" });`,
        // Interrupt once the progress display shows the loop running.
        interrupt_when: "demo ",
        timeout: 60,
      },
      {
        code:
          "console.log(JSON.stringify({ steps: history.step, w: model.w }));",
      },
      // An interrupt while no loop runs: a note, and the kernel lives on.
      {
        code: `console.log("sleeping");
await new Promise((r) => setTimeout(r, 1500));
console.log("woke");`,
        interrupt_when: "sleeping",
      },
      { code: "6 * 7" },
    ]);
    const all = textOf(s);
    assert(s.alive, `the kernel died:\n${all}`);
    assertEquals(s.cells.map((c) => c.status), ["ok", "ok", "ok", "ok", "ok"]);
    const stopped = all.match(/demo: interrupted after step (\d+) of 100000/);
    assert(stopped, all);
    const done = Number(stopped[1]);
    assert(done > 0 && done < 100000, all);
    const state = s.messages.find((m) => m.text.includes('"steps"'));
    assert(state, all);
    const { steps, w } = JSON.parse(state.text);
    assertEquals(steps.length, done);
    assertEquals(steps.at(-1), done - 1);
    let expected = 5;
    for (let i = 0; i < done; i++) expected *= 0.99;
    assertEquals(w, expected);
    assert(all.includes("no training loop is running"), all);
    assert(all.includes("woke"), all);
    assert(s.messages.some((m) => m.parent === 4 && m.text.includes("42")));
  },
});

Deno.test({
  name:
    "under load, each figure shown with `await show(...)` arrives under its own cell, before the cell ends",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const cells = [{
      code: `import { show } from "../lib/display.ts";
const figure = (i: number) => ({
  [Symbol.for("Jupyter.display")]: () => ({
    "image/svg+xml": \`<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300">\${
      Array.from({ length: 400 }, (_, k) => \`<circle cx="\${k}" cy="\${(k * i) % 300}" r="2"/>\`).join("")
    }</svg>\`,
    "text/plain": \`figure \${i}\`,
  }),
});`,
    }];
    const n = 8;
    for (let i = 1; i <= n; i++) {
      // Some work before and after, as a notebook cell does.
      cells.push({
        code: `let s${i} = 0; for (let k = 0; k < 2e6; k++) s${i} += k;
await show(figure(${i}));
s${i}`,
      });
    }
    const s = await session(cells, true);
    assert(s.alive);
    const figures = s.messages.filter((m) => m.type === "display_data");
    assertEquals(figures.length, n, JSON.stringify(s.messages));
    for (const f of figures) {
      const i = Number(f.text.replace("figure ", ""));
      assertEquals(f.parent, i, `figure ${i} landed under cell ${f.parent}`);
      assert(!f.after_idle, `figure ${i} arrived after its cell ended`);
    }
  },
});
