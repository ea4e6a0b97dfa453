/**
 * Float32 Add, Sub and Multiply as SIMD loops (kernels/elementwise.ts):
 * the same bits as the built-in kernels for every shape they take (equal
 * shapes, scalars, trailing broadcasts, sizes that are not multiples of 4),
 * the built-ins for the rest, gradients as on cpu, no leaks.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend.ts";
import { ELEMENTWISE_KERNELS, planBinary } from "../kernels/elementwise.ts";
import { builtin } from "../kernels/fast_kernels.ts";
import { randomNormal } from "./seeded.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
} from "../../../tests/assert.ts";

await initBackend({ quiet: true });

const shapes: [number[], number[]][] = [
  [[20, 50], [20, 50]],
  [[7], [7]],
  [[3, 5], []],
  [[], [3, 5]],
  [[1], [13]],
  [[20, 50], [50]],
  [[50], [20, 50]],
  [[2, 3, 5], [1, 5]],
  [[1, 5], [2, 3, 5]],
  [[2, 3, 5], [3, 5]],
  [[128, 784], [784]],
  // Not handled by the SIMD loops (a column broadcast): the built-in.
  [[4, 3], [4, 1]],
  [[4, 1], [1, 3]],
];

for (const op of ["Add", "Sub", "Multiply"] as const) {
  Deno.test(`${op} gives the built-in's bits for every broadcast pattern`, () => {
    for (const [sa, sb] of shapes) {
      tf.tidy(() => {
        const a = randomNormal(sa, { seed: 1 });
        const b = randomNormal(sb, { seed: 2 });
        const ours = tf.engine().runKernel(op, { a, b }) as tf.Tensor;
        const info = builtin(op)({
          inputs: { a, b },
          backend: tf.backend(),
          attrs: {},
        });
        const theirs = tf.engine().makeTensorFromTensorInfo(info);
        assertEquals(ours.shape, theirs.shape, `${op} [${sa}] [${sb}] shape`);
        assertEquals(
          Array.from(ours.dataSync()),
          Array.from(theirs.dataSync()),
          `${op} [${sa}] [${sb}]`,
        );
      });
    }
  });
}

Deno.test("Add, Sub, Multiply: gradients through broadcasts match cpu", async () => {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const out = tf.tidy(() => {
      const a = randomNormal([6, 5], { seed: 3 });
      const b = randomNormal([5], { seed: 4 });
      const s = randomNormal([], { seed: 5 });
      const f = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
        tf.sum(tf.mul(tf.sub(tf.add(x, y), z), tf.sub(z, x)));
      return tf.grads(f)([a, b, s]);
    });
    const values = out.map((t) => t.dataSync().slice());
    tf.dispose(out);
    return values;
  };
  const wasm = await run("wasm");
  const cpu = await run("cpu");
  await tf.setBackend("wasm");
  wasm.forEach((v, i) => assertAllClose(v, cpu[i], { rtol: 1e-6, atol: 1e-6 }));
});

Deno.test("int32 and bool operands go to the built-ins", () => {
  tf.tidy(() => {
    const a = tf.tensor1d([1, 2, 3], "int32");
    const sum = tf.add(a, tf.scalar(2, "int32"));
    assertEquals(sum.dtype, "int32");
    assertEquals(Array.from(sum.dataSync()), [3, 4, 5]);
    assertEquals(Array.from(tf.mul(a, a).dataSync()), [1, 4, 9]);
  });
});

Deno.test("planBinary: which shapes take the SIMD loops", () => {
  assertEquals(planBinary([4, 3], [4, 1], [4, 3]), null);
  assertEquals(planBinary([2, 3], [3], [2, 3]), {
    kind: "rows",
    rows: 2,
    n: 3,
    aRow: 3,
    bRow: 0,
  });
  assertEquals(planBinary([], [9], [9])?.kind, "scalar");
  for (const name of Object.keys(ELEMENTWISE_KERNELS)) {
    assert(
      tf.getKernel(name, "wasm")?.kernelFunc ===
        (ELEMENTWISE_KERNELS as Record<string, unknown>)[name],
      name,
    );
  }
});

Deno.test("the elementwise kernels free what they allocate", async () => {
  const a = randomNormal([20, 50], { seed: 6 });
  const b = randomNormal([50], { seed: 7 });
  const work = () =>
    tf.tidy(() => {
      tf.add(a, b);
      tf.sub(b, a);
      tf.mul(a, 3);
      tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.add(x, b), x)))(a);
    });
  work();
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const ids = backend.numDataIds();
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 5; i++) work();
  });
  assertEquals(backend.numDataIds(), ids, "wasm data ids");
  tf.dispose([a, b]);
});
