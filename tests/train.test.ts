import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { byMode, envVar, isQuick } from "../lib/config.ts";
import { NonFiniteLossError, trainLoop } from "../lib/train.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertEquals,
  assertNoTensorLeak,
  assertRejects,
} from "./assert.ts";

await initBackend({ quiet: true });

Deno.test("trainLoop records every metric per step and the elapsed time", async () => {
  const h = await trainLoop((i) => ({ loss: 10 - i, acc: i / 10 }), {
    steps: 5,
    quiet: true,
  });
  assertEquals(h.step, [0, 1, 2, 3, 4]);
  assertEquals(h.loss, [10, 9, 8, 7, 6]);
  assertEquals(h.acc, [0, 0.1, 0.2, 0.3, 0.4]);
  assertEquals(h.time.length, 5);
  assert(h.time.every((t, i) => i === 0 || t >= h.time[i - 1]));
});

Deno.test("trainLoop records every n-th step and always the last", async () => {
  const seen: number[] = [];
  const h = await trainLoop((i) => i, {
    steps: 10,
    recordEvery: 4,
    quiet: true,
    onRecord: (s) => void seen.push(s),
  });
  assertEquals(h.step, [0, 4, 8, 9]);
  assertEquals(h.loss, [0, 4, 8, 9]);
  assertEquals(seen, [0, 4, 8, 9]);
});

Deno.test("trainLoop stops with a clear error when a loss turns NaN or infinite", async () => {
  let calls = 0;
  const err = await assertRejects(
    () =>
      trainLoop((i) => {
        calls++;
        return { loss: i < 3 ? 1 / (i + 1) : NaN };
      }, { steps: 10, quiet: true }),
    NonFiniteLossError,
    "step 3",
    "loss is NaN",
  );
  assertEquals(calls, 4);
  assertEquals((err as NonFiniteLossError).step, 3);
  await assertRejects(
    () => trainLoop(() => ({ g: Infinity }), { steps: 2, quiet: true }),
    NonFiniteLossError,
    "g is Infinity",
  );
});

Deno.test("a real tfjs training step that diverges is stopped", async () => {
  const w = tf.variable(tf.scalar(1));
  const opt = tf.train.sgd(10); // far too large: w explodes to Infinity then NaN
  await assertRejects(
    () =>
      trainLoop(
        () =>
          tf.tidy(() =>
            opt.minimize(() => w.pow(4) as tf.Scalar, true)!.dataSync()[0]
          ),
        {
          steps: 50,
          quiet: true,
        },
      ),
    NonFiniteLossError,
  );
  w.dispose();
  opt.dispose();
});

Deno.test("trainLoop validates its arguments and does not leak tensors", async () => {
  await assertRejects(
    () => trainLoop(() => 1, { steps: -1 }),
    ArgumentError,
    "options.steps",
  );
  await assertRejects(
    () => trainLoop("x" as unknown as () => number, { steps: 1 }),
    ArgumentError,
    "step must be a function",
  );
  await assertRejects(
    () => trainLoop(() => "no" as unknown as number, { steps: 1, quiet: true }),
    ArgumentError,
    "must return a number",
  );
  const x = tf.ones([8, 8]);
  await assertNoTensorLeak(() =>
    trainLoop(() => tf.tidy(() => x.matMul(x).mean().dataSync()[0]), {
      steps: 20,
      quiet: true,
    })
  );
  x.dispose();
});

Deno.test("progress in a log prints about one line per tenth", async () => {
  const lines: string[] = [];
  const original = console.error;
  console.error = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    await trainLoop(() => 1, { steps: 100, label: "demo" });
  } finally {
    console.error = original;
  }
  // Tests run without a terminal on stderr: log mode.
  assert(lines.length >= 2 && lines.length <= 12, `got ${lines.length} lines`);
  assert(lines.at(-1)!.includes("demo") && lines.at(-1)!.includes("100/100"));
});

Deno.test("byMode follows the QUICK environment variable", () => {
  const before = Deno.env.get("QUICK");
  try {
    Deno.env.set("QUICK", "1");
    assertEquals([isQuick(), byMode(100, 5)], [true, 5]);
    Deno.env.set("QUICK", "0");
    assertEquals([isQuick(), byMode(100, 5)], [false, 100]);
  } finally {
    if (before === undefined) Deno.env.delete("QUICK");
    else Deno.env.set("QUICK", before);
  }
});

Deno.test("envVar reads a variable, and an empty one counts as unset", () => {
  const name = "COURSE_ENVVAR_TEST";
  try {
    Deno.env.set(name, "abc");
    assertEquals(envVar(name), "abc");
    Deno.env.set(name, "");
    assertEquals(envVar(name), undefined);
    Deno.env.delete(name);
    assertEquals(envVar(name), undefined);
  } finally {
    Deno.env.delete(name);
  }
});

/**
 * Runs `code` (with `trainLoop` imported) in a child Deno, sends it SIGINT
 * `signals` times once it prints "go", and returns its exit code and output.
 * (`deno test` itself ends the run on SIGINT, so the loop runs elsewhere.)
 */
async function interruptChild(code: string, signals = 1) {
  const pause = () => new Promise((r) => setTimeout(r, 300));
  const train = new URL("../lib/train.ts", import.meta.url).href;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", `import { trainLoop } from "${train}";\n${code}`],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  let sent = false;
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
    if (!sent && out.includes("go\n")) {
      sent = true;
      // Apart: signals sent at once are delivered as one.
      for (let k = 0; k < signals; k++) {
        if (k > 0) await pause();
        child.kill("SIGINT");
      }
    }
  }
  const status = await child.status;
  await child.stderr.cancel();
  return { code: status.code, signal: status.signal, out };
}

const SLOW_LOOP = `
let w = 1;
const h = await trainLoop((i) => {
  if (i === 3) console.log("go");
  const t = performance.now();
  while (performance.now() - t < 30) { /* a slow step */ }
  w *= 0.5;
  return { loss: w };
}, { steps: 1000, quiet: true, label: "demo", recordEvery: RECORD });
console.log(JSON.stringify({ steps: h.step, loss: h.loss, w }));
`;

Deno.test("an interrupt (SIGINT) stops trainLoop between steps; the model and the history keep the steps done", async () => {
  const { code, out } = await interruptChild(SLOW_LOOP.replace("RECORD", "1"));
  assertEquals(code, 0, out);
  const result = JSON.parse(out.trim().split("\n").at(-1)!);
  const done = result.steps.length;
  // The signal is seen at the next turn of the event loop (<= ~0.1 s).
  assert(done >= 4 && done < 20, `stopped after ${done} steps`);
  assertEquals(result.steps, Array.from({ length: done }, (_, i) => i));
  assertEquals(result.w, 0.5 ** done);
  assertEquals(result.loss.at(-1), result.w);
  assert(out.includes(`demo: interrupted after step ${done} of 1000`), out);
});

Deno.test("an interrupted loop with recordEvery > 1 still records the step it stopped at", async () => {
  const { code, out } = await interruptChild(
    SLOW_LOOP.replace("RECORD", "100"),
  );
  assertEquals(code, 0, out);
  const { steps, loss, w } = JSON.parse(out.trim().split("\n").at(-1)!);
  assertEquals(steps.length, 2);
  assertEquals(steps[0], 0);
  assertEquals(w, 0.5 ** (steps[1] + 1));
  assertEquals(loss[1], w);
});

Deno.test("outside Jupyter, a second Ctrl+C ends the program, and after the loop Ctrl+C works as usual", async () => {
  // A step that waits (the listener runs meanwhile) and does not end soon.
  const twice = await interruptChild(
    `await trainLoop(async (i) => {
      if (i === 2) console.log("go");
      await new Promise((r) => setTimeout(r, i === 2 ? 20000 : 1));
      return 1;
    }, { steps: 10, quiet: true });
    console.log("finished");`,
    2,
  );
  assertEquals(twice.code, 130, twice.out);
  assert(!twice.out.includes("finished"), twice.out);
  // After a loop the listener is gone: SIGINT ends the program.
  const after = await interruptChild(`
    await trainLoop(() => 1, { steps: 3, quiet: true });
    console.log("go");
    await new Promise((r) => setTimeout(r, 20000));
    console.log("still alive");
  `);
  assert(!after.out.includes("still alive"), after.out);
  assert(
    after.signal === "SIGINT" || after.code === 130,
    JSON.stringify(after),
  );
});
