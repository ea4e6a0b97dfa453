import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { WASM_PROJECT_KERNELS } from "../lib/kernels/wasm_kernels.ts";
import { randomNormal } from "../lib/random.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
} from "./assert.ts";

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
  Deno.test(`Conv2DBackpropFilter matches cpu: conv2d ${c.name}`, async () => {
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
  });
}

Deno.test("Conv2DBackpropFilter matches cpu: conv2dTranspose stride 2", async () => {
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
});

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
