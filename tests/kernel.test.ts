/**
 * The library against a real Deno Jupyter kernel, driven by jupyter_client
 * (tests/jupyter_session.py): Kernel > Interrupt during `trainLoop`, and
 * where the outputs of `await show(...)` and the grading records of
 * `checkExercise` land on a loaded machine.
 */
import { assert, assertEquals } from "./assert.ts";
import { makeTestDir } from "./temp.ts";
import { ensureDenoKernel, ensureJupyter } from "../tasks/setup.ts";
import { recordsOf } from "../tasks/grade.ts";
import type { Cell } from "../tasks/ipynb.ts";

const root = new URL("../", import.meta.url).pathname;

interface Message {
  type: string;
  parent: number | null;
  text: string;
  after_idle: boolean;
  json: Record<string, unknown>;
}
interface Session {
  alive: boolean;
  cells: { status: string | null; execution_count: number | null }[];
  messages: Message[];
}

async function session(
  cells: { code: string; interrupt_when?: string; timeout?: number }[],
  busy: boolean | number = false,
  env: Record<string, string> = {},
): Promise<Session> {
  const { jupyter, python } = await ensureJupyter();
  await ensureDenoKernel(jupyter);
  const dir = await makeTestDir("kernel-");
  try {
    const spec = `${dir}/spec.json`;
    await Deno.writeTextFile(
      spec,
      JSON.stringify({
        cwd: `${root}notebooks`,
        kernel: "deno",
        busy,
        env,
        cells,
      }),
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

/**
 * A grading session (lib/exercise.ts's grading mode, with a submission's
 * token): a setup cell imports the checks, as the grader's does, then
 * `cells` run.
 */
async function gradingSession(
  cells: { code: string; timeout?: number }[],
  busy: boolean | number,
): Promise<{ s: Session; nonce: string }> {
  const dir = await makeTestDir("kernel-grading-");
  try {
    const nonce = crypto.randomUUID().replaceAll("-", "");
    const token = `${dir}/token.json`;
    await Deno.writeTextFile(
      token,
      JSON.stringify({ nonce, role: "submission" }),
    );
    const setup = {
      code: `await import("file://${root}lib/exercise.ts");
__courseGrading__.prepare({});`,
    };
    const s = await session([setup, ...cells], busy, {
      COURSE_GRADING: token,
    });
    return { s, nonce };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Cell `index` with the outputs that came before it ended. */
function cellOf(s: Session, index: number): Cell {
  return {
    cell_type: "code",
    metadata: {},
    source: "",
    outputs: s.messages
      .filter((m) => m.parent === index && !m.after_idle)
      .map((m) => ({ output_type: m.type, data: m.json })),
  };
}

/** Where each batch of check records arrived: "cell", "cell after idle". */
const recordsSeen = (s: Session) =>
  s.messages.filter((m) => m.json["application/vnd.course.check+json"])
    .map((m) => `${m.parent}${m.after_idle ? " after idle" : ""}`).join(", ");

/** A check cell as the grader writes it (tasks/grade.ts, gradingEdition). */
const checkCell = (id: string, body: string) =>
  `{ const { checkExercise, expectClose, expect } = __courseGrading__.check("${id}");
await checkExercise("${id}", async () => {
${body}
}); }`;

Deno.test({
  name:
    "under load, each check's grading records arrive under its own cell, before the cell ends",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // Both cores busy, 16 checks of 50,000 values each (a batch of 64
    // images): without waiting for the kernel, 4 runs in 10 had a late record.
    const n = 16;
    const cells = [];
    for (let i = 1; i <= n; i++) {
      cells.push({
        code: `let s${i} = 0; for (let k = 0; k < 2e6; k++) s${i} += k;
${
          checkCell(
            `e${i}`,
            `  const v = Array.from({ length: 50000 }, (_, k) => k * ${i} + 0.5);
  expectClose(v, v, "values ${i}");
  expect(s${i} > 0, "sum ${i}");`,
          )
        }`,
      });
    }
    const { s, nonce } = await gradingSession(cells, 2);
    assert(s.alive);
    assertEquals(s.cells.map((c) => c.status), Array(n + 1).fill("ok"));
    const missed: string[] = [];
    for (let i = 1; i <= n; i++) {
      const { records, forged, spoiled } = recordsOf(cellOf(s, i), nonce);
      assertEquals([forged, spoiled], [0, false]);
      const got = records.map((r) => `${r.exercise}: ${r.what}`);
      if (got.length === 0) missed.push(`e${i}`);
      else assertEquals(got, [`e${i}: values ${i}`, `e${i}: sum ${i}`]);
    }
    assertEquals(
      missed,
      [],
      `checks whose records missed their cell (records seen under cells ${
        recordsSeen(s)
      })`,
    );
  },
});

Deno.test({
  name:
    "a check that replaces timers, Promise, Deno.connect, crypto.randomUUID, TextDecoder, String and connection methods still waits for its records, and the wait ends",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // What the wait would use if it took these from the globals: a fake
    // connection that never reads, timers that never fire, races that never
    // end, a known probe id, a decoder that sees nothing.
    const sabotage = `async function sabotage() {
  const P = Promise;
  const never = () => new P(() => {});
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const real = await Deno.connect(listener.addr);
  (await listener.accept()).close();
  real.close();
  listener.close();
  for (let p = Object.getPrototypeOf(real); p; p = Object.getPrototypeOf(p)) {
    if (Object.hasOwn(p, "read")) { p.read = never; p.write = async (b) => b.length; p.close = () => {}; }
  }
  globalThis.setTimeout = () => 0;
  globalThis.clearTimeout = () => {};
  P.race = never;
  P.all = never;
  globalThis.Promise = function () { throw new Error("no Promise"); };
  Deno.connect = async () => ({ read: never, write: async (b) => b.length, close() {} });
  crypto.randomUUID = () => "00000000-0000-4000-8000-000000000000";
  TextDecoder.prototype.decode = () => "";
  globalThis.TextDecoder = class { decode() { return ""; } };
  String.prototype.includes = () => false;
  String.prototype.slice = () => "";
}`;
    const { s, nonce } = await gradingSession([
      { code: sabotage },
      {
        code: checkCell(
          "t1",
          `  await sabotage();
  expectClose([1, 2, 3], [1, 2, 3], "after sabotage");`,
        ),
        timeout: 60,
      },
    ], false);
    assert(s.alive);
    assertEquals(s.cells.map((c) => c.status), ["ok", "ok", "ok"]);
    const { records, forged } = recordsOf(cellOf(s, 2), nonce);
    assertEquals(forged, 0);
    assertEquals(records.map((r) => `${r.exercise}: ${r.what}`), [
      "t1: after sabotage",
    ]);
    // The real wait ran: its probe came back under the check's cell.
    assert(
      s.messages.some((m) =>
        m.parent === 2 && m.type === "update_display_data" && !m.after_idle
      ),
      JSON.stringify(s.messages),
    );
  },
});

Deno.test({
  name:
    "under load, each trainLoop's progress display and its last update arrive under its own cell, before the cell ends",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const n = 8;
    const cells = [{ code: 'import { trainLoop } from "../lib/train.ts";' }];
    for (let i = 1; i <= n; i++) {
      // A short loop: one display and its final update.
      cells.push({
        code: `let s${i} = 0; for (let k = 0; k < 2e6; k++) s${i} += k;
await trainLoop((i) => ({ loss: 1 / (i + 1) }), { steps: 3, label: "run${i}" });`,
      });
    }
    const s = await session(cells, 2);
    assert(s.alive);
    assertEquals(s.cells.map((c) => c.status), Array(n + 1).fill("ok"));
    const bars = s.messages.filter((m) => /^run\d+ /.test(m.text));
    for (let i = 1; i <= n; i++) {
      const mine = bars.filter((m) => m.text.startsWith(`run${i} `));
      const where = mine.map((m) =>
        `${m.type} under ${m.parent}${m.after_idle ? " after idle" : ""}`
      ).join(", ");
      assertEquals(mine[0]?.type, "display_data", where);
      assert(mine.at(-1)!.text.includes("3/3"), where);
      for (const m of mine) {
        assert(m.parent === i && !m.after_idle, `run${i}: ${where}`);
      }
    }
  },
});
