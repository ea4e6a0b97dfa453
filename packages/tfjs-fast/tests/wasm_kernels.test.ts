import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend.ts";
import { WASM_PROJECT_KERNELS } from "../kernels/wasm_kernels.ts";
import { FAST_KERNELS } from "../kernels/fast_kernels.ts";
import { matMulPathTest } from "./matmul_paths.ts";
import { randomNormal } from "./seeded.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "../../../tests/assert.ts";

await initBackend({ quiet: true });

/** Runs `fn` on a backend and returns its outputs as plain arrays. */
async function on(
  backend: "wasm" | "cpu",
  fn: () => tf.Tensor[],
): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const out = tf.tidy(fn);
  const values = out.map((t) => t.dataSync().slice() as Float32Array);
  tf.dispose(out);
  await tf.setBackend("wasm");
  return values;
}

async function assertSameOnCpu(fn: () => tf.Tensor[], tol = 1e-4) {
  const wasm = await on("wasm", fn);
  const cpu = await on("cpu", fn);
  assertEquals(wasm.length, cpu.length);
  for (let i = 0; i < wasm.length; i++) {
    assertEquals(wasm[i].length, cpu[i].length, `output ${i} size`);
    assertAllClose(wasm[i], cpu[i], {
      rtol: tol,
      atol: tol,
      message: `output ${i}`,
    });
  }
}

const convCases: {
  name: string;
  x: [number, number, number, number];
  w: [number, number, number, number];
  strides: number | [number, number];
  pad: "same" | "valid" | number;
}[] = [
  {
    name: "3x3 stride 1 same",
    x: [2, 7, 7, 3],
    w: [3, 3, 3, 4],
    strides: 1,
    pad: "same",
  },
  {
    name: "4x4 stride 2 same",
    x: [3, 8, 8, 2],
    w: [4, 4, 2, 5],
    strides: 2,
    pad: "same",
  },
  {
    name: "3x3 stride 2 valid",
    x: [2, 9, 7, 3],
    w: [3, 3, 3, 2],
    strides: 2,
    pad: "valid",
  },
  {
    name: "5x3 stride [2,1] same",
    x: [1, 10, 6, 2],
    w: [5, 3, 2, 3],
    strides: [2, 1],
    pad: "same",
  },
  // Numeric padding is left out on purpose: tfjs-core 4.22 derives the output
  // width from the filter height when pad is a number, so non-square filters break.
  {
    name: "3x3 stride 2 pad 1",
    x: [2, 8, 8, 2],
    w: [3, 3, 2, 3],
    strides: 2,
    pad: 1,
  },
  {
    name: "1x1 stride 1 valid",
    x: [4, 5, 5, 6],
    w: [1, 1, 6, 3],
    strides: 1,
    pad: "valid",
  },
];

for (const c of convCases) {
  matMulPathTest(
    `Conv2DBackpropFilter matches cpu: conv2d ${c.name}`,
    async () => {
      await assertSameOnCpu(() => {
        const x = randomNormal(c.x, { seed: 1 }) as tf.Tensor4D;
        const w = randomNormal(c.w, { seed: 2 }) as tf.Tensor4D;
        const f = (xx: tf.Tensor, ww: tf.Tensor) => {
          const y = tf.conv2d(
            xx as tf.Tensor4D,
            ww as tf.Tensor4D,
            c.strides,
            c.pad,
          );
          // A random upstream gradient, so every output position matters.
          return y.mul(randomNormal(y.shape, { seed: 3 })).sum() as tf.Scalar;
        };
        const [dx, dw] = tf.grads(f)([x, w]);
        return [tf.conv2d(x, w, c.strides, c.pad), dx, dw];
      });
    },
  );
}

matMulPathTest(
  "Conv2DBackpropFilter matches cpu: conv2dTranspose stride 2",
  async () => {
    await assertSameOnCpu(() => {
      const x = randomNormal([2, 7, 7, 4], { seed: 4 }) as tf.Tensor4D;
      const w = randomNormal([4, 4, 3, 4], { seed: 5 }) as tf.Tensor4D; // [h, w, out, in]
      const f = (xx: tf.Tensor, ww: tf.Tensor) => {
        const y = tf.conv2dTranspose(
          xx as tf.Tensor4D,
          ww as tf.Tensor4D,
          [2, 14, 14, 3],
          2,
          "same",
        );
        return y.mul(randomNormal(y.shape, { seed: 6 })).sum() as tf.Scalar;
      };
      const [dx, dw] = tf.grads(f)([x, w]);
      return [dx, dw];
    });
  },
);

Deno.test("UnsortedSegmentSum matches cpu: gather gradient with repeated indices", async () => {
  await assertSameOnCpu(() => {
    const table = randomNormal([6, 3], { seed: 7 });
    const idx = tf.tensor1d([0, 5, 5, 2, 0, 0, 3], "int32");
    const f = (t: tf.Tensor) =>
      tf.gather(t, idx).mul(randomNormal([7, 3], { seed: 8 }))
        .sum() as tf.Scalar;
    return [
      tf.grad(f)(table),
      tf.unsortedSegmentSum(
        randomNormal([4, 2], { seed: 9 }),
        tf.tensor1d([1, 1, 3, 0], "int32"),
        5,
      ),
    ];
  });
});

Deno.test("UnsortedSegmentSum drops out-of-range segment ids like TensorFlow", () => {
  const out = tf.unsortedSegmentSum(
    tf.tensor1d([1, 2, 4, 8]),
    tf.tensor1d([0, -1, 2, 7], "int32"),
    3,
  );
  assertAllClose(out, [1, 0, 4]);
  out.dispose();
});

Deno.test("OneHot float32 on wasm gives real float values", async () => {
  await assertSameOnCpu(() => [
    tf.oneHot(tf.tensor1d([0, 2, 1, 3], "int32"), 4),
    tf.oneHot(tf.tensor2d([[0, 1], [2, 0]], [2, 2], "int32"), 3, 5, -1),
  ], 0);
  const h = tf.oneHot(tf.tensor1d([1], "int32"), 3).toFloat();
  assertAllClose(h, [0, 1, 0], { atol: 0 });
  h.dispose();
});

Deno.test("project kernels are registered for wasm and do not leak", async () => {
  for (const name of WASM_PROJECT_KERNELS) {
    assert(tf.getKernel(name, "wasm"), name);
  }
  const x = randomNormal([2, 6, 6, 2], { seed: 1 }) as tf.Tensor4D;
  const w = randomNormal([3, 3, 2, 2], { seed: 2 }) as tf.Tensor4D;
  // Warm up once: the first call may create long-lived tensors (e.g. constants).
  tf.tidy(() =>
    tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same").sum()
    )([x, w])
  );
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 5; i++) {
      tf.tidy(() => {
        tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same").sum()
        )([x, w]);
      });
    }
  });
  tf.dispose([x, w]);
});

// The speed fixes (kernels/fast_kernels.ts): every transpose combination,
// batched and broadcast shapes, fused bias + activation, and their gradients.

/** Swaps the last two entries of a shape when `t` (the stored layout for transpose = t). */
function stored(shape: number[], t: boolean): number[] {
  return t ? [...shape.slice(0, -2), shape.at(-1)!, shape.at(-2)!] : shape;
}

const matMulShapes: { a: number[]; b: number[]; grads: boolean }[] = [
  { a: [5, 7], b: [7, 3], grads: true },
  { a: [33, 17], b: [17, 40], grads: true },
  { a: [2, 4, 6], b: [2, 6, 5], grads: true },
  // Broadcast batches: tfjs-core 4.22's matMul gradient does not reduce
  // broadcast dimensions on any backend, so only values are compared.
  { a: [1, 4, 6], b: [3, 6, 2], grads: false },
  { a: [3, 4, 6], b: [6, 2], grads: false },
];

for (const { a: sa, b: sb, grads } of matMulShapes) {
  for (const ta of [false, true]) {
    for (const tb of [false, true]) {
      matMulPathTest(
        `BatchMatMul matches cpu: [${sa}] x [${sb}] transposeA=${ta} transposeB=${tb}`,
        async () => {
          await assertSameOnCpu(() => {
            const a = randomNormal(stored(sa, ta), { seed: 1 });
            const b = randomNormal(stored(sb, tb), { seed: 2 });
            const f = (x: tf.Tensor, y: tf.Tensor) => {
              const p = tf.matMul(x, y, ta, tb);
              return p.mul(randomNormal(p.shape, { seed: 3 }))
                .sum() as tf.Scalar;
            };
            return [
              tf.matMul(a, b, ta, tb),
              ...(grads ? tf.grads(f)([a, b]) : []),
            ];
          });
        },
      );
    }
  }
}

const activations = [
  "linear",
  "relu",
  "elu",
  "sigmoid",
  "leakyrelu",
  "relu6",
] as const;
for (const [sa, sb] of [[[6, 9], [9, 4]], [[3, 5, 7], [3, 7, 4]]]) {
  for (const activation of activations) {
    for (
      const [ta, tb] of [[false, false], [true, false], [false, true], [
        true,
        true,
      ]]
    ) {
      matMulPathTest(
        `_FusedMatMul matches cpu: [${sa}] x [${sb}] bias ${activation} transposeA=${ta} transposeB=${tb}`,
        async () => {
          await assertSameOnCpu(() => {
            const a = randomNormal(stored(sa, ta), { seed: 4 });
            const b = randomNormal(stored(sb, tb), { seed: 5 });
            const bias = randomNormal([sb.at(-1)!], { seed: 6 });
            const fused = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
              tf.fused.matMul({
                a: x as tf.Tensor3D,
                b: y as tf.Tensor3D,
                transposeA: ta,
                transposeB: tb,
                bias: z,
                activation,
                leakyreluAlpha: 0.1,
              });
            const f = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) => {
              const p = fused(x, y, z);
              return p.mul(randomNormal(p.shape, { seed: 7 }))
                .sum() as tf.Scalar;
            };
            // The gradient of a fused matMul is defined for linear and relu only.
            const withGrads = activation === "linear" || activation === "relu";
            return [
              fused(a, b, bias),
              ...(withGrads ? tf.grads(f)([a, b, bias]) : []),
            ];
          });
        },
      );
    }
  }
}

const transposeCases: {
  x: [number, number, number, number];
  w: [number, number, number, number];
  out: [number, number, number, number];
  strides: number | [number, number];
  pad: "same" | "valid";
}[] = [
  {
    x: [2, 7, 7, 4],
    w: [4, 4, 3, 4],
    out: [2, 14, 14, 3],
    strides: 2,
    pad: "same",
  },
  {
    x: [2, 5, 5, 3],
    w: [3, 3, 2, 3],
    out: [2, 11, 11, 2],
    strides: 2,
    pad: "valid",
  },
  {
    x: [1, 6, 4, 2],
    w: [3, 5, 3, 2],
    out: [1, 6, 4, 3],
    strides: 1,
    pad: "same",
  },
  {
    x: [3, 4, 5, 2],
    w: [3, 2, 4, 2],
    out: [3, 12, 10, 4],
    strides: [3, 2],
    pad: "same",
  },
  {
    x: [2, 7, 7, 5],
    w: [1, 1, 6, 5],
    out: [2, 7, 7, 6],
    strides: 1,
    pad: "valid",
  },
];

for (const c of transposeCases) {
  matMulPathTest(
    `Conv2DBackpropInput matches cpu: conv2dTranspose [${c.x}] -> [${c.out}] filter [${c.w}] strides ${c.strides} ${c.pad}`,
    async () => {
      await assertSameOnCpu(() => {
        const x = randomNormal(c.x, { seed: 8 }) as tf.Tensor4D;
        const w = randomNormal(c.w, { seed: 9 }) as tf.Tensor4D;
        const up = (a: tf.Tensor, b: tf.Tensor) =>
          tf.conv2dTranspose(
            a as tf.Tensor4D,
            b as tf.Tensor4D,
            c.out,
            c.strides,
            c.pad,
          );
        const f = (a: tf.Tensor, b: tf.Tensor) => {
          const y = up(a, b);
          return y.mul(randomNormal(y.shape, { seed: 10 })).sum() as tf.Scalar;
        };
        return [up(x, w), ...tf.grads(f)([x, w])];
      });
    },
  );
}

Deno.test("the fast kernels are the registered wasm kernels", () => {
  for (const [name, fn] of Object.entries(FAST_KERNELS)) {
    assert(
      tf.getKernel(name, "wasm")?.kernelFunc === (fn as unknown),
      `${name} is not the project's kernel`,
    );
  }
});

Deno.test("registering the kernels again keeps them working (no wrapper of a wrapper)", async () => {
  const { registerWasmKernels } = await import(
    "../kernels/wasm_kernels.ts"
  );
  registerWasmKernels();
  registerWasmKernels();
  await assertSameOnCpu(() => {
    const a = randomNormal([4, 3], { seed: 11 });
    const b = randomNormal([5, 3], { seed: 12 });
    return [tf.matMul(a, b, false, true)];
  });
});

matMulPathTest(
  "fast kernels do not leak tensors or backend memory",
  async () => {
    const a = randomNormal([2, 8, 6], { seed: 1 });
    const b = randomNormal([2, 5, 6], { seed: 2 });
    const x = randomNormal([2, 7, 7, 4], { seed: 3 }) as tf.Tensor4D;
    const w = randomNormal([4, 4, 3, 4], { seed: 4 }) as tf.Tensor4D;
    const work = () =>
      tf.tidy(() => {
        tf.grads((p: tf.Tensor, q: tf.Tensor) =>
          tf.matMul(p, q, false, true).sum()
        )([a, b]);
        tf.grads((p: tf.Tensor, q: tf.Tensor) =>
          tf.conv2dTranspose(
            p as tf.Tensor4D,
            q as tf.Tensor4D,
            [2, 14, 14, 3],
            2,
            "same",
          ).sum()
        )([x, w]);
      });
    work(); // warm-up
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const ids = backend.numDataIds();
    await assertNoTensorLeak(() => {
      for (let i = 0; i < 5; i++) work();
    });
    assertEquals(backend.numDataIds(), ids, "wasm data ids");
    tf.dispose([a, b, x, w]);
  },
);

// GatherV2 as block copies (kernels/fast_kernels.ts).
const gatherCases: {
  x: number[];
  indices: number[][] | number[];
  axis: number;
}[] = [
  { x: [10, 7], indices: [3, 0, 9, 3], axis: 0 },
  { x: [4, 6, 5], indices: [5, 1], axis: 1 },
  { x: [4, 6, 5], indices: [[4, 0], [2, 2]], axis: -1 },
  { x: [6], indices: [], axis: 0 },
];
for (const c of gatherCases) {
  Deno.test(`GatherV2 matches cpu: x [${c.x}] indices ${JSON.stringify(c.indices)} axis ${c.axis}`, async () => {
    await assertSameOnCpu(() => {
      const x = randomNormal(c.x, { seed: 13 });
      const idx = tf.tensor(c.indices, undefined, "int32");
      const f = (v: tf.Tensor) => {
        const y = tf.gather(v, idx, c.axis);
        return y.mul(randomNormal(y.shape, { seed: 14 })).sum() as tf.Scalar;
      };
      return [tf.gather(x, idx, c.axis), tf.grad(f)(x)];
    });
  });
}

Deno.test("GatherV2 keeps int32 and bool values exact", () => {
  tf.tidy(() => {
    const ints = tf.tensor2d([[1, 2], [3, 4], [5, 6]], undefined, "int32");
    const got = tf.gather(ints, [2, 0]);
    assertEquals(got.dtype, "int32");
    assertEquals(Array.from(got.dataSync()), [5, 6, 1, 2]);
    const flags = tf.tensor1d([true, false, true], "bool");
    assertEquals(Array.from(tf.gather(flags, [1, 2]).dataSync()), [0, 1]);
  });
});

Deno.test("GatherV2 rejects an out-of-range index and frees its output", () => {
  const x = tf.zeros([3, 2]);
  const before = tf.memory().numTensors;
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const ids = backend.numDataIds();
  assertThrows(() => tf.gather(x, [0, 3]), Error, "index value 3", "[0, 2]");
  assertEquals(tf.memory().numTensors, before);
  assertEquals(backend.numDataIds(), ids, "wasm data ids");
  x.dispose();
});

// Sum over leading axes as row additions (kernels/fast_kernels.ts); the
// other reductions stay on the built-in and are checked alongside.
const sumCases: {
  shape: number[];
  axis: number | number[];
  keepDims: boolean;
}[] = [
  { shape: [128, 37], axis: 0, keepDims: false },
  { shape: [128, 37], axis: 0, keepDims: true },
  { shape: [4, 5, 6], axis: [1, 0], keepDims: false },
  { shape: [4, 5, 6], axis: [0, 1], keepDims: true },
  { shape: [4, 5, 6], axis: -1, keepDims: false },
  { shape: [4, 5, 6], axis: [0, 2], keepDims: false },
  { shape: [4, 5, 6], axis: [0, 1, 2], keepDims: false },
  { shape: [0, 3], axis: 0, keepDims: false },
];
for (const c of sumCases) {
  Deno.test(`Sum matches cpu: [${c.shape}] axis ${JSON.stringify(c.axis)} keepDims ${c.keepDims}`, async () => {
    await assertSameOnCpu(() => {
      const x = randomNormal(c.shape, { seed: 15 });
      const f = (v: tf.Tensor) => {
        const y = tf.sum(v, c.axis, c.keepDims);
        return y.mul(randomNormal(y.shape, { seed: 16 })).sum() as tf.Scalar;
      };
      return [tf.sum(x, c.axis, c.keepDims), tf.grad(f)(x)];
    });
  });
}

Deno.test("Sum of int32 over a leading axis stays exact", () => {
  tf.tidy(() => {
    const x = tf.tensor2d([[1, 2], [3, 4], [5, 6]], undefined, "int32");
    const s = tf.sum(x, 0);
    assertEquals(s.dtype, "int32");
    assertEquals(Array.from(s.dataSync()), [9, 12]);
  });
});

// Reductions over empty axes (kernels/wasm_kernels.ts, and Sum in
// fast_kernels.ts): the built-ins leave their output uninitialised; the
// project's kernels give what the cpu backend gives, dtype and shape
// included (NaN where cpu gives NaN).

/** One output of a backend run: dtype, shape and values. */
type Output = { dtype: string; shape: number[]; values: number[] };

async function outputsOn(
  backend: "wasm" | "cpu",
  fn: () => tf.Tensor[],
): Promise<Output[]> {
  await tf.setBackend(backend);
  try {
    const out = tf.tidy(fn);
    const result = out.map((t) => ({
      dtype: t.dtype,
      shape: t.shape,
      values: Array.from(t.dataSync() as ArrayLike<number>),
    }));
    tf.dispose(out);
    return result;
  } finally {
    await tf.setBackend("wasm");
  }
}

/**
 * Asserts that `fn` gives on wasm the dtypes, shapes and values it gives on
 * cpu: values within `tol` (relative), NaN only where cpu has NaN.
 */
async function assertLikeCpu(fn: () => tf.Tensor[], tol = 1e-5) {
  const wasm = await outputsOn("wasm", fn);
  const cpu = await outputsOn("cpu", fn);
  assertEquals(wasm.length, cpu.length);
  for (let i = 0; i < cpu.length; i++) {
    const what = `output ${i} (cpu: ${JSON.stringify(cpu[i])})`;
    assertEquals(wasm[i].dtype, cpu[i].dtype, `${what} dtype`);
    assertEquals(wasm[i].shape, cpu[i].shape, `${what} shape`);
    cpu[i].values.forEach((want, j) => {
      const got = wasm[i].values[j];
      assert(
        Object.is(got, want) ||
          Math.abs(got - want) <= tol * (1 + Math.abs(want)),
        `${what} value ${j}: wasm ${got}`,
      );
    });
  }
}

/** Shapes and axes: empty reduced axes first, then non-empty inputs. */
const reductionCases: {
  shape: number[];
  axis?: number | number[];
  keepDims?: boolean;
}[] = [
  { shape: [0] },
  { shape: [0], keepDims: true },
  { shape: [2, 0], axis: 1 },
  { shape: [2, 0], axis: 1, keepDims: true },
  { shape: [3, 0], axis: -1 },
  { shape: [2, 0, 3], axis: 1 },
  { shape: [0, 3], axis: 0 },
  { shape: [0, 3], axis: 0, keepDims: true },
  { shape: [2, 0, 3], axis: [0, 2] }, // empty output
  { shape: [4, 5], axis: 1 },
  { shape: [4, 5, 3], axis: [0, 1] },
  { shape: [6] },
];

/** Small integers (exact sums) of `dtype`, or zeros when `shape` is empty. */
function reductionInput(shape: number[], dtype: tf.DataType, seed: number) {
  const size = tf.util.sizeFromShape(shape);
  const ints = tf.round(tf.randomUniform([size], -3, 3, "float32", seed));
  const values = dtype === "bool" ? tf.greater(ints, 0) : ints.cast(dtype);
  return values.reshape(shape);
}

const reductions: {
  name: string;
  dtypes: tf.DataType[];
  op: (x: tf.Tensor, axis?: number | number[], keepDims?: boolean) => tf.Tensor;
}[] = [
  { name: "Sum", dtypes: ["float32", "int32", "bool"], op: tf.sum },
  { name: "Mean", dtypes: ["float32", "int32"], op: tf.mean },
  { name: "Max", dtypes: ["float32", "int32", "bool"], op: tf.max },
  { name: "Min", dtypes: ["float32", "int32", "bool"], op: tf.min },
  { name: "Prod", dtypes: ["float32", "int32", "bool"], op: tf.prod },
  { name: "All", dtypes: ["bool"], op: tf.all },
  { name: "Any", dtypes: ["bool"], op: tf.any },
  {
    name: "ArgMax",
    dtypes: ["float32", "int32"],
    op: (x, axis) => tf.argMax(x, typeof axis === "number" ? axis : 0),
  },
  {
    name: "ArgMin",
    dtypes: ["float32", "int32"],
    op: (x, axis) => tf.argMin(x, typeof axis === "number" ? axis : 0),
  },
  // Ops built on the reductions.
  { name: "logSumExp", dtypes: ["float32"], op: tf.logSumExp },
  {
    name: "euclideanNorm",
    dtypes: ["float32"],
    op: (x, axis, keepDims) => tf.euclideanNorm(x, axis, keepDims),
  },
  {
    name: "moments",
    dtypes: ["float32"],
    op: (x, axis, keepDims) => tf.moments(x, axis, keepDims).variance,
  },
];

for (const { name, dtypes, op } of reductions) {
  matMulPathTest(
    `${name} matches cpu over empty and non-empty axes`,
    async () => {
      for (const dtype of dtypes) {
        for (const [i, c] of reductionCases.entries()) {
          // Arg reductions take one axis of a non-empty dimension.
          if (name.startsWith("Arg") && Array.isArray(c.axis)) continue;
          await assertLikeCpu(
            () => [op(reductionInput(c.shape, dtype, i), c.axis, c.keepDims)],
          );
        }
      }
    },
  );
}

matMulPathTest(
  "tf.zeros([0]).sum() is 0, mean 0, prod 1, max NaN as on cpu",
  () => {
    tf.tidy(() => {
      const empty = tf.zeros([0]);
      assertEquals(empty.sum().dataSync()[0], 0);
      assertEquals(empty.mean().dataSync()[0], 0);
      assertEquals(empty.prod().dataSync()[0], 1);
      assert(Number.isNaN(empty.max().dataSync()[0]));
      assert(Number.isNaN(empty.min().dataSync()[0]));
    });
  },
);

matMulPathTest(
  "matMul and fused matMul with an empty inner dimension match cpu",
  async () => {
    await assertLikeCpu(() => [
      tf.matMul(tf.zeros([3, 0]), tf.zeros([0, 4])),
      tf.matMul(tf.zeros([2, 3, 0]), tf.zeros([2, 4, 0]), false, true),
      tf.fused.matMul({ a: tf.zeros([2, 0]), b: tf.zeros([0, 3]) }),
      tf.fused.matMul({
        a: tf.zeros([0, 2]),
        b: tf.zeros([3, 0]),
        transposeA: true,
        transposeB: true,
        bias: tf.tensor1d([1, -2, 3]),
        activation: "relu",
      }),
      tf.fused.matMul({
        a: tf.zeros([2, 4, 0]),
        b: tf.zeros([2, 0, 3]),
        bias: tf.tensor1d([1, -2, 3]),
        activation: "elu",
      }),
    ], 0);
  },
);

Deno.test("the reductions over nothing do not leak tensors or backend memory", async () => {
  const work = () =>
    tf.tidy(() => {
      for (const op of [tf.sum, tf.mean, tf.max, tf.min, tf.prod]) {
        op(tf.zeros([2, 0, 3]), 1);
      }
      tf.all(tf.zeros([0], "bool"));
      tf.any(tf.zeros([0], "bool"));
    });
  work(); // warm-up
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const ids = backend.numDataIds();
  await assertNoTensorLeak(work);
  assertEquals(backend.numDataIds(), ids, "wasm data ids");
});

// A cast to the same dtype as a shared reference (kernels/fast_kernels.ts).
Deno.test("Cast to the same dtype shares memory; other casts match cpu; no leaks", async () => {
  // 2.7, 256 and NaN: the built-in cast to bool truncated them to a byte.
  const values = [1.5, -0, NaN, -Infinity, 3e-45, 2.7, -2.7, 256, 3e9];
  const pairs = [
    ["float32", "int32"],
    ["float32", "bool"],
    ["int32", "float32"],
    ["int32", "bool"],
    ["bool", "float32"],
    ["bool", "int32"],
  ] as const;
  const castAll = () =>
    pairs.map(([from, to]) =>
      tf.tidy(() =>
        Array.from(tf.cast(tf.tensor1d(values, from), to).dataSync())
      )
    );
  await tf.setBackend("cpu");
  let onCpu: number[][];
  try {
    onCpu = castAll();
  } finally {
    await tf.setBackend("wasm");
  }
  assertEquals(castAll(), onCpu);
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const ids = backend.numDataIds();
  await assertNoTensorLeak(() => {
    for (const dtype of ["float32", "int32", "bool"] as const) {
      const x = tf.tensor1d(values, dtype);
      const expected = Array.from(x.dataSync());
      const y = tf.cast(x, dtype);
      assertEquals(y.dtype, dtype);
      x.dispose(); // the cast outlives the original
      assertEquals(Array.from(y.dataSync()), expected);
      y.dispose();
    }
    // Multiply's gradient casts its other factor: the same bits.
    const a = tf.tensor1d([1.25, -3]);
    const b = tf.tensor1d([0.1, 7]);
    const [da, db] = tf.grads((p: tf.Tensor, q: tf.Tensor) =>
      tf.sum(tf.mul(p, q))
    )([a, b]);
    assertEquals(Array.from(da.dataSync()), Array.from(b.dataSync()));
    assertEquals(Array.from(db.dataSync()), Array.from(a.dataSync()));
    tf.dispose([a, b, da, db]);
  });
  assertEquals(backend.numDataIds(), ids, "wasm data ids");
});

// Identity as a shared reference (kernels/fast_kernels.ts).
Deno.test("Identity (clone) shares memory safely: values, dtypes, dispose order, no leaks", async () => {
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const ids = backend.numDataIds();
  await assertNoTensorLeak(() => {
    for (const dtype of ["float32", "int32", "bool"] as const) {
      const x = tf.tensor1d([1, 0, 3], dtype);
      const y = x.clone();
      assertEquals(y.dtype, dtype);
      x.dispose(); // the clone outlives the original
      assertEquals(
        Array.from(y.dataSync()),
        dtype === "bool" ? [1, 0, 1] : [1, 0, 3],
      );
      y.dispose();
    }
    // A gradient through clones and a variable assigned from a clone.
    const init = tf.tensor1d([2, 3]);
    const v = tf.variable(init);
    init.dispose();
    const g = tf.grad((a: tf.Tensor) => a.clone().square().sum())(v);
    assertEquals(Array.from(g.dataSync()), [4, 6]);
    const copy = g.clone();
    v.assign(copy as tf.Tensor1D);
    tf.dispose([g, copy]);
    assertEquals(Array.from(v.dataSync()), [4, 6]);
    v.dispose();
  });
  assertEquals(backend.numDataIds(), ids, "wasm data ids");
});
