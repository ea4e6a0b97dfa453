import * as tf from "@tensorflow/tfjs";
import {
  describeBackend,
  initBackend,
  type InitBackendOptions,
} from "../backend.ts";
import { ArgumentError } from "../errors.ts";
import { randomNormal } from "./seeded.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertRejects,
} from "../../../tests/assert.ts";

// This file asks for the threaded build explicitly, so the threaded start is
// tested whatever the machine's load (the default picks 1 thread when busy)
// and whether OpenBLAS is installed (which would take the threads; its own
// tests are in blas_kernels.test.ts).
const chosen = await initBackend({ threads: 2, blas: false, quiet: true });

Deno.test("initBackend starts wasm with SIMD and 2 threads when asked", () => {
  assertEquals(chosen, "wasm");
  assertEquals(tf.getBackend(), "wasm");
  const line = describeBackend();
  assert(line.startsWith("wasm (SIMD, 2 threads"), line);
});

Deno.test("the threaded build computes what cpu computes", async () => {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const out = tf.tidy(() => {
      const a = randomNormal([96, 130], { seed: 1 });
      const b = randomNormal([130, 70], { seed: 2 });
      const x = randomNormal([4, 14, 14, 3], { seed: 3 }) as tf.Tensor4D;
      const w = randomNormal([4, 4, 3, 8], { seed: 4 }) as tf.Tensor4D;
      return [tf.matMul(a, b), tf.conv2d(x, w, 2, "same")];
    });
    const values = out.map((t) => t.dataSync().slice());
    tf.dispose(out);
    return values;
  };
  const wasm = await run("wasm");
  const cpu = await run("cpu");
  await tf.setBackend("wasm");
  for (let i = 0; i < wasm.length; i++) {
    assertAllClose(wasm[i], cpu[i], { rtol: 1e-4, atol: 1e-4 });
  }
});

Deno.test("initBackend is idempotent and returns the backend name", async () => {
  assertEquals(await initBackend({ quiet: true }), "wasm");
  assertEquals(await initBackend({ quiet: true }), "wasm");
  assert(describeBackend().includes("2 threads"), describeBackend());
});

Deno.test("initBackend rejects bad options with a clear error", async () => {
  await assertRejects(
    () => initBackend({ threads: 0, quiet: true }),
    ArgumentError,
    "initBackend",
    "threads",
    "1 to 8",
  );
  await assertRejects(
    () => initBackend({ threads: 2.5, quiet: true }),
    ArgumentError,
    "threads",
  );
  await assertRejects(
    () => initBackend({ backend: "webgl" as "wasm", quiet: true }),
    ArgumentError,
    "backend",
  );
  await assertRejects(
    () => initBackend({ thread: 2 } as InitBackendOptions),
    ArgumentError,
    "initBackend",
    'unknown option "thread" (did you mean "threads"?)',
    "known options: backend, threads, blas, dnnl, quiet",
  );
  await assertRejects(
    () => initBackend(null as unknown as InitBackendOptions),
    ArgumentError,
    "initBackend: options must be an object",
  );
  await assertRejects(
    () => initBackend({ blas: "no" as unknown as boolean }),
    ArgumentError,
    "blas must be true or false",
  );
  assertEquals(tf.getBackend(), "wasm");
});

/**
 * The leak target: numTensors after 1,000 training steps equals the
 * count after 10. A small MLP with Adam keeps this fast on both backends
 * while going through every training kernel of a dense model (fused matMul
 * forward, transposed matMul gradients, optimizer updates).
 */
for (const backend of ["wasm", "cpu"]) {
  Deno.test(`no tensor leak over 1,000 Adam steps on ${backend}`, async () => {
    await tf.setBackend(backend);
    try {
      const model = tf.sequential({
        layers: [
          tf.layers.dense({ inputShape: [8], units: 16, activation: "relu" }),
          tf.layers.dense({ units: 1 }),
        ],
      });
      const x = randomNormal([32, 8], { seed: 5 });
      const y = randomNormal([32, 1], { seed: 6 });
      const opt = tf.train.adam(1e-2);
      const step = () =>
        tf.tidy(() => {
          opt.minimize(
            () => tf.losses.meanSquaredError(y, model.apply(x) as tf.Tensor),
          );
        });
      for (let i = 0; i < 10; i++) step();
      const after10 = tf.memory().numTensors;
      for (let i = 10; i < 1000; i++) step();
      assertEquals(tf.memory().numTensors, after10);
      model.dispose();
      opt.dispose();
      tf.dispose([x, y]);
    } finally {
      await tf.setBackend("wasm");
    }
  });
}

Deno.test("adam's fused update runs on the threaded build's shared memory, same bits as tfjs", async () => {
  const { adam } = await import("../optim.ts");
  const run = async (opt: tf.Optimizer, tag: string) => {
    const w = tf.variable(randomNormal([37, 11], { seed: 7 }), true, tag);
    const step = () =>
      tf.tidy(() => {
        opt.minimize(() => tf.sum(tf.square(tf.sin(w))), false, [w]);
      });
    const kernels = (await tf.profile(step)).kernels.map((k) => k.name);
    for (let i = 0; i < 20; i++) step();
    const values = Array.from(w.dataSync());
    w.dispose();
    opt.dispose();
    return { kernels, values };
  };
  const fused = await run(adam(0.01), "w_threads_fused");
  const tfjs = await run(tf.train.adam(0.01), "w_threads_tfjs");
  assert(fused.kernels.includes("ProjectFusedAdam"), fused.kernels.join());
  assertEquals(fused.values, tfjs.values);
});
