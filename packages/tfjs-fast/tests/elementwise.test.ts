/**
 * Float32 Add, Sub and Multiply as SIMD loops (kernels/elementwise.ts):
 * the same bits as the built-in kernels for every shape they take (equal
 * shapes, scalars, trailing broadcasts, sizes that are not multiples of 4),
 * the built-ins for the rest, gradients as on cpu, no leaks.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend.ts";
import {
  ELEMENTWISE_KERNELS,
  planBinary,
  twoLevelBroadcast,
} from "../kernels/elementwise.ts";
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
  // Column broadcasts and an outer product.
  [[4, 3], [4, 1]],
  [[4, 1], [1, 3]],
  [[6, 30, 10], [6, 30, 1]],
  [[6, 30, 1], [6, 30, 10]],
  [[1], [1]],
  // Three levels: the built-in.
  [[2, 3, 4], [2, 1, 4]],
];

for (const op of ["Add", "Sub", "Multiply", "RealDiv"] as const) {
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
  // A column broadcast: b one float per row.
  assertEquals(planBinary([4, 3], [4, 1], [4, 3]), {
    rows: 4,
    n: 3,
    a: [3, 1],
    b: [1, 0],
  });
  assertEquals(planBinary([2, 3], [3], [2, 3]), {
    rows: 2,
    n: 3,
    a: [3, 1],
    b: [0, 1],
  });
  // A scalar: one row, a splat with row stride 0.
  assertEquals(planBinary([], [9], [9]), {
    rows: 1,
    n: 9,
    a: [0, 0],
    b: [0, 1],
  });
  // Three levels: the built-in.
  assertEquals(planBinary([2, 3, 4], [2, 1, 4], [2, 3, 4]), null);
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

/** Values with the edge cases: signed zeros, infinities, NaN. */
function edgy(n: number, seed: number): tf.Tensor {
  const values = randomNormal([n], { seed }).dataSync().slice();
  const special = [0, -0, Infinity, -Infinity, NaN, 1e-40, -1e-40];
  special.forEach((v, i) => {
    if (i < n) values[(i * 7) % n] = v;
  });
  return tf.tensor1d(values);
}

/** Asserts that kernel `name` gives the built-in's bits (NaN as NaN). */
function assertSameBits(
  name: string,
  inputs: tf.NamedTensorMap,
  attrs: tf.NamedAttrMap = {},
) {
  const ours = tf.engine().runKernel(name, inputs, attrs) as tf.Tensor;
  const theirs = tf.engine().makeTensorFromTensorInfo(
    builtin(name)({ inputs, backend: tf.backend(), attrs }),
  );
  assertEquals(ours.dtype, theirs.dtype, `${name} dtype`);
  assertEquals(ours.shape, theirs.shape, `${name} shape`);
  const bits = (t: tf.Tensor) =>
    Array.from(
      t.dtype === "bool"
        ? t.dataSync()
        : new Uint32Array((t.dataSync() as Float32Array).slice().buffer),
    );
  // NaN payloads may differ: compare NaN as NaN.
  const a = bits(ours);
  const b = bits(theirs);
  const values = ours.dataSync();
  a.forEach((x, i) => {
    if (!(Number.isNaN(values[i]) && Number.isNaN(theirs.dataSync()[i]))) {
      assertEquals(x, b[i], `${name} element ${i}`);
    }
  });
}

for (const n of [1, 3, 4, 17, 32768]) {
  Deno.test(`LeakyRelu, Greater and Select give the built-ins' bits (n = ${n})`, () => {
    tf.tidy(() => {
      const x = edgy(n, 8);
      const y = edgy(n, 9);
      const zero = tf.scalar(0);
      assertSameBits("LeakyRelu", { x }, { alpha: 0.2 });
      assertSameBits("LeakyRelu", { x: x.reshape([1, n]) }, { alpha: 0.01 });
      assertSameBits("Greater", { a: x, b: y });
      assertSameBits("Greater", { a: x, b: zero });
      assertSameBits("Greater", { a: zero, b: y });
      const mask = tf.greater(x, y);
      assertSameBits("Select", { condition: mask, t: x, e: y });
    });
  });
}

Deno.test("leakyRelu's gradient (Greater, Select, Multiply) matches cpu", async () => {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const g = tf.tidy(() =>
      tf.grad((x: tf.Tensor) =>
        tf.sum(
          tf.mul(tf.leakyRelu(x, 0.2), randomNormal([64, 33], { seed: 11 })),
        )
      )(randomNormal([64, 33], { seed: 10 }))
    );
    const values = g.dataSync().slice();
    g.dispose();
    return values;
  };
  const wasm = await run("wasm");
  const cpu = await run("cpu");
  await tf.setBackend("wasm");
  assertAllClose(wasm, cpu, { rtol: 0, atol: 0 });
});

Deno.test("Greater and Select with other dtypes or broadcasts go to the built-ins", () => {
  tf.tidy(() => {
    const ints = tf.tensor1d([1, 5, 3], "int32");
    assertEquals(Array.from(tf.greater(ints, 2).dataSync()), [0, 1, 1]);
    const rows = tf.tensor2d([[1, 2], [3, 4]]);
    assertEquals(Array.from(tf.greater(rows, tf.tensor1d([2, 2])).dataSync()), [
      0,
      0,
      1,
      1,
    ]);
    // tf.where broadcasts a rank-1 condition along the last axis first.
    const picked = tf.where(
      tf.tensor1d([true, false], "bool"),
      rows,
      tf.neg(rows),
    );
    assertEquals(Array.from(picked.dataSync()), [1, -2, 3, -4]);
    const mixed = tf.where(
      tf.tensor1d([false, true], "bool"),
      tf.tensor1d([1, 5], "int32"),
      tf.tensor1d([7, 8], "int32"),
    );
    assertEquals(mixed.dtype, "int32");
    assertEquals(Array.from(mixed.dataSync()), [7, 5]);
  });
});

const comparisonShapes: [number[], number[]][] = [
  [[37], [37]],
  [[5, 7], []],
  [[], [5, 7]],
  [[6, 30, 10], [6, 30, 1]],
  [[6, 30, 1], [6, 30, 10]],
  [[4, 3], [4, 1]],
  [[4, 1], [1, 3]],
  [[3], [4, 3]],
  [[2, 3, 4], [2, 1, 4]], // three levels: the built-in
];
for (
  const name of [
    "Equal",
    "NotEqual",
    "Less",
    "Greater",
    "LessEqual",
    "GreaterEqual",
  ]
) {
  Deno.test(`${name} gives the built-in's booleans for every broadcast pattern`, () => {
    for (const [sa, sb] of comparisonShapes) {
      tf.tidy(() => {
        // Small integers, so that equal values occur.
        const a = tf.round(randomNormal(sa, { seed: 21 }).mul(2));
        const b = tf.round(randomNormal(sb, { seed: 22 }).mul(2));
        assertSameBits(name, { a, b });
      });
    }
    tf.tidy(() => {
      const x = edgy(64, 23);
      assertSameBits(name, { a: x, b: edgy(64, 24) });
      assertSameBits(name, { a: x, b: x });
      assertSameBits(name, { a: x, b: tf.scalar(NaN) });
    });
  });
}

Deno.test("twoLevelBroadcast folds shapes into [rows, n] with strides", () => {
  assertEquals(twoLevelBroadcast([6, 30, 10], [6, 30, 1], [6, 30, 10]), {
    rows: 180,
    n: 10,
    a: [10, 1],
    b: [1, 0],
  });
  assertEquals(twoLevelBroadcast([4, 1], [1, 3], [4, 3]), {
    rows: 4,
    n: 3,
    a: [1, 0],
    b: [0, 1],
  });
  assertEquals(twoLevelBroadcast([2, 3, 4], [2, 1, 4], [2, 3, 4]), null);
});

Deno.test("Add, Sub, Multiply, RealDiv: the built-ins' bits on signed zeros, infinities, NaN, subnormals", () => {
  for (const op of ["Add", "Sub", "Multiply", "RealDiv"]) {
    tf.tidy(() => {
      const x = edgy(67, 31);
      const y = edgy(67, 32);
      assertSameBits(op, { a: x, b: y });
      assertSameBits(op, { a: x, b: tf.scalar(-0) });
      assertSameBits(op, { a: tf.scalar(0), b: y });
      assertSameBits(op, { a: x.reshape([67, 1]), b: y.slice(0, 5) });
    });
  }
});
