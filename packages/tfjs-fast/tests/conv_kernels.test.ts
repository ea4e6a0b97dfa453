/**
 * The convolution kernels (kernels/conv_kernels.ts: im2col/col2im in
 * WebAssembly SIMD + one matMul) against the cpu backend: values and both
 * gradients, on both matMul paths, for every common geometry (kernels 1-5,
 * strides 1 and 2, same/valid/explicit padding, conv2d and
 * conv2dTranspose, up to 256 channels), the fused forward pass with bias
 * and activations, the fallbacks, and leaks.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend.ts";
import { CONV_KERNELS, setConvChunkBytes } from "../kernels/conv_kernels.ts";
import { convPathTest } from "./matmul_paths.ts";
import { randomNormal } from "./seeded.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
} from "../../../tests/assert.ts";

await initBackend({ quiet: true });

/** `fn`'s outputs on `backend`, as plain arrays. */
async function on(
  backend: "wasm" | "cpu",
  fn: () => tf.Tensor[],
): Promise<{ shape: number[]; values: Float32Array }[]> {
  await tf.setBackend(backend);
  try {
    const out = tf.tidy(fn);
    const values = out.map((t) => ({
      shape: t.shape,
      values: t.dataSync().slice() as Float32Array,
    }));
    tf.dispose(out);
    return values;
  } finally {
    await tf.setBackend("wasm");
  }
}

/** Asserts that `fn` gives on wasm what it gives on cpu (shapes, values). */
async function assertSameOnCpu(fn: () => tf.Tensor[], tol = 1e-4) {
  const wasm = await on("wasm", fn);
  const cpu = await on("cpu", fn);
  assertEquals(wasm.length, cpu.length);
  for (let i = 0; i < wasm.length; i++) {
    assertEquals(wasm[i].shape, cpu[i].shape, `output ${i} shape`);
    // Relative to the output's scale: sums of hundreds of products.
    const scale = Math.max(1, ...cpu[i].values.map(Math.abs));
    assertAllClose(wasm[i].values, cpu[i].values, {
      rtol: tol,
      atol: tol * scale,
      message: `output ${i}`,
    });
  }
}

/** A random upstream gradient, so that every output position matters. */
const weighted = (y: tf.Tensor, seed: number) =>
  y.mul(randomNormal(y.shape, { seed })).sum() as tf.Scalar;

type Pad = "same" | "valid" | number;

/** conv2d, its value and the gradients to x and to the filter. */
function convWithGrads(
  xShape: number[],
  wShape: number[],
  strides: number | [number, number],
  pad: Pad,
): tf.Tensor[] {
  const x = randomNormal(xShape, { seed: 1 }) as tf.Tensor4D;
  const w = randomNormal(wShape, { seed: 2 }) as tf.Tensor4D;
  const f = (a: tf.Tensor, b: tf.Tensor) =>
    weighted(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad), 3);
  return [tf.conv2d(x, w, strides, pad), ...tf.grads(f)([x, w])];
}

// Every kernel size 1-5 with strides 1 and 2, same and valid padding, on an
// odd-sized image with several channels (the image is not a multiple of the
// stride, so "same" pads unevenly).
for (const k of [1, 2, 3, 4, 5]) {
  for (const s of [1, 2]) {
    for (const pad of ["same", "valid"] as const) {
      convPathTest(
        `conv2d ${k}x${k} stride ${s} ${pad}: value and gradients match cpu`,
        () =>
          assertSameOnCpu(() =>
            convWithGrads([2, 9, 8, 4], [k, k, 4, 5], s, pad)
          ),
      );
    }
  }
}

const convCases: {
  name: string;
  x: number[];
  w: number[];
  strides: number | [number, number];
  pad: Pad;
}[] = [
  // The VQ-VAE's encoder layers at a small batch.
  {
    name: "4x4 stride 2 same, 1 -> 32 channels",
    x: [2, 28, 28, 1],
    w: [4, 4, 1, 32],
    strides: 2,
    pad: "same",
  },
  {
    name: "4x4 stride 2 same, 32 -> 64 channels",
    x: [2, 14, 14, 32],
    w: [4, 4, 32, 64],
    strides: 2,
    pad: "same",
  },
  {
    name: "1x1, 64 -> 16 channels",
    x: [3, 7, 7, 64],
    w: [1, 1, 64, 16],
    strides: 1,
    pad: "same",
  },
  {
    name: "3x3 same, 256 -> 8 channels",
    x: [1, 5, 5, 256],
    w: [3, 3, 256, 8],
    strides: 1,
    pad: "same",
  },
  {
    name: "1x1, 256 -> 256 channels",
    x: [2, 3, 3, 256],
    w: [1, 1, 256, 256],
    strides: 1,
    pad: "valid",
  },
  {
    name: "3x3 stride 2 same, 7 channels (runs not a multiple of 4 floats)",
    x: [2, 11, 9, 7],
    w: [3, 3, 7, 3],
    strides: 2,
    pad: "same",
  },
  {
    name: "1x1 stride 2 (not pointwise: it skips pixels)",
    x: [2, 8, 8, 4],
    w: [1, 1, 4, 3],
    strides: 2,
    pad: "valid",
  },
  {
    name: "5x3 stride [2, 1] same (non-square)",
    x: [1, 10, 6, 2],
    w: [5, 3, 2, 3],
    strides: [2, 1],
    pad: "same",
  },
  {
    name: "3x3 stride 2 explicit pad 1",
    x: [2, 8, 8, 2],
    w: [3, 3, 2, 3],
    strides: 2,
    pad: 1,
  },
  {
    name: "5x5 on a 3x3 image, same (taps outside on both sides)",
    x: [2, 3, 3, 4],
    w: [5, 5, 4, 2],
    strides: 1,
    pad: "same",
  },
];
for (const c of convCases) {
  convPathTest(
    `conv2d ${c.name}: value and gradients match cpu`,
    () => assertSameOnCpu(() => convWithGrads(c.x, c.w, c.strides, c.pad)),
  );
}

// conv2dTranspose: the forward pass is Conv2DBackpropInput, the gradient to
// its input is Conv2D, the gradient to its filter Conv2DBackpropFilter.
const transposeCases: {
  x: number[];
  w: number[];
  out: number[];
  strides: number | [number, number];
  pad: "same" | "valid";
}[] = [
  // The VQ-VAE's decoder layers.
  {
    x: [2, 7, 7, 64],
    w: [4, 4, 32, 64],
    out: [2, 14, 14, 32],
    strides: 2,
    pad: "same",
  },
  {
    x: [2, 14, 14, 32],
    w: [4, 4, 1, 32],
    out: [2, 28, 28, 1],
    strides: 2,
    pad: "same",
  },
  {
    x: [2, 4, 4, 3],
    w: [2, 2, 5, 3],
    out: [2, 8, 8, 5],
    strides: 2,
    pad: "valid",
  },
  {
    x: [2, 5, 5, 3],
    w: [3, 3, 2, 3],
    out: [2, 11, 11, 2],
    strides: 2,
    pad: "valid",
  },
  {
    x: [2, 5, 5, 3],
    w: [3, 3, 2, 3],
    out: [2, 10, 10, 2],
    strides: 2,
    pad: "same",
  },
  {
    x: [1, 6, 4, 2],
    w: [3, 5, 3, 2],
    out: [1, 6, 4, 3],
    strides: 1,
    pad: "same",
  },
  {
    x: [1, 6, 6, 4],
    w: [5, 5, 3, 4],
    out: [1, 10, 10, 3],
    strides: 1,
    pad: "valid",
  },
  {
    x: [2, 4, 4, 6],
    w: [5, 5, 2, 6],
    out: [2, 8, 8, 2],
    strides: 2,
    pad: "same",
  },
  {
    x: [2, 7, 7, 5],
    w: [1, 1, 6, 5],
    out: [2, 7, 7, 6],
    strides: 1,
    pad: "valid",
  },
  {
    x: [1, 3, 3, 256],
    w: [4, 4, 16, 256],
    out: [1, 6, 6, 16],
    strides: 2,
    pad: "same",
  },
];
for (const c of transposeCases) {
  convPathTest(
    `conv2dTranspose [${c.x}] -> [${c.out}] filter [${c.w}] stride ${c.strides} ${c.pad}: value and gradients match cpu`,
    () =>
      assertSameOnCpu(() => {
        const x = randomNormal(c.x, { seed: 4 }) as tf.Tensor4D;
        const w = randomNormal(c.w, { seed: 5 }) as tf.Tensor4D;
        const up = (a: tf.Tensor, b: tf.Tensor) =>
          tf.conv2dTranspose(
            a as tf.Tensor4D,
            b as tf.Tensor4D,
            c.out as [number, number, number, number],
            c.strides,
            c.pad,
          );
        const f = (a: tf.Tensor, b: tf.Tensor) => weighted(up(a, b), 6);
        return [up(x, w), ...tf.grads(f)([x, w])];
      }),
  );
}

// The OpenBLAS path runs in chunks of whole images (4 MB of patches); with
// smaller chunks (bytes per case) these take one image per chunk, chunks of
// 2, 2, 1, and of 4 and 1 (conv2dTranspose).
for (
  const [name, make] of [
    [
      "conv2d 5x5 same 32 -> 4, 20x20, batch 3 (one image per chunk)",
      () => convWithGrads([3, 20, 20, 32], [5, 5, 32, 4], 1, "same"),
    ],
    [
      "conv2d 3x3 same 32 -> 4, 12x12, batch 5 (chunks of 2, 2, 1)",
      () => convWithGrads([5, 12, 12, 32], [3, 3, 32, 4], 1, "same"),
    ],
    [
      "conv2dTranspose 5x5/2 same 32 -> 16, 12x12, batch 5 (chunks of 4, 1)",
      () => {
        const x = randomNormal([5, 12, 12, 32], { seed: 4 }) as tf.Tensor4D;
        const w = randomNormal([5, 5, 16, 32], { seed: 5 }) as tf.Tensor4D;
        const up = (a: tf.Tensor, b: tf.Tensor) =>
          tf.conv2dTranspose(
            a as tf.Tensor4D,
            b as tf.Tensor4D,
            [5, 24, 24, 16],
            2,
            "same",
          );
        return [
          up(x, w),
          ...tf.grads((a: tf.Tensor, b: tf.Tensor) => weighted(up(a, b), 6))([
            x,
            w,
          ]),
        ];
      },
    ],
  ] as const
) {
  convPathTest(`${name}: value and gradients match cpu`, async () => {
    const previous = setConvChunkBytes(256 << 10);
    try {
      await assertSameOnCpu(make);
    } finally {
      setConvChunkBytes(previous);
    }
  });
}

// The fused forward pass (inference: bias and activation in one kernel).
for (
  const activation of ["linear", "relu", "elu", "sigmoid", "leakyrelu"] as const
) {
  convPathTest(
    `fused conv2d with bias and ${activation} matches cpu`,
    () =>
      assertSameOnCpu(() => {
        const x = randomNormal([3, 8, 8, 4], { seed: 7 }) as tf.Tensor4D;
        const w = randomNormal([3, 3, 4, 6], { seed: 8 }) as tf.Tensor4D;
        const bias = randomNormal([6], { seed: 9 });
        return [
          tf.fused.conv2d({
            x,
            filter: w,
            strides: 2,
            pad: "same",
            bias,
            activation,
            leakyreluAlpha: 0.1,
          }),
        ];
      }),
  );
}

convPathTest(
  "fused conv2d with bias: gradients match cpu (the layers' linear 1x1 case)",
  () =>
    assertSameOnCpu(() => {
      const x = randomNormal([2, 7, 7, 8], { seed: 10 }) as tf.Tensor4D;
      const w = randomNormal([1, 1, 8, 4], { seed: 11 }) as tf.Tensor4D;
      const b = randomNormal([4], { seed: 12 });
      const f = (p: tf.Tensor, q: tf.Tensor, r: tf.Tensor) =>
        weighted(
          tf.fused.conv2d({
            x: p as tf.Tensor4D,
            filter: q as tf.Tensor4D,
            strides: 1,
            pad: "same",
            bias: r,
          }),
          13,
        );
      return tf.grads(f)([x, w, b]);
    }),
);

convPathTest(
  "a dilated conv2d falls back to the built-in and matches cpu",
  () =>
    assertSameOnCpu(() => {
      const x = randomNormal([2, 9, 9, 3], { seed: 14 }) as tf.Tensor4D;
      const w = randomNormal([3, 3, 3, 4], { seed: 15 }) as tf.Tensor4D;
      return [tf.conv2d(x, w, 1, "same", "NHWC", 2)];
    }),
);

convPathTest(
  "a conv2d over 0 input channels gives zeros as on cpu",
  () =>
    assertSameOnCpu(() => [
      tf.conv2d(
        tf.zeros([2, 5, 5, 0]) as tf.Tensor4D,
        tf.zeros([3, 3, 0, 4]) as tf.Tensor4D,
        1,
        "same",
      ),
    ], 0),
);

Deno.test("the convolution kernels are the registered wasm kernels", () => {
  for (const [name, fn] of Object.entries(CONV_KERNELS)) {
    assert(
      tf.getKernel(name, "wasm")?.kernelFunc === (fn as unknown),
      `${name} is not the project's kernel`,
    );
  }
});

convPathTest(
  "the convolution kernels free their temporaries (tensors and wasm memory)",
  async () => {
    const x = randomNormal([2, 9, 9, 4], { seed: 1 }) as tf.Tensor4D;
    const w = randomNormal([4, 4, 4, 6], { seed: 2 }) as tf.Tensor4D;
    const w1 = randomNormal([1, 1, 4, 6], { seed: 3 }) as tf.Tensor4D;
    const b = randomNormal([6], { seed: 4 });
    const work = () =>
      tf.tidy(() => {
        for (const [filter, s] of [[w, 2], [w1, 1]] as const) {
          tf.grads((p: tf.Tensor, q: tf.Tensor) =>
            tf.conv2d(p as tf.Tensor4D, q as tf.Tensor4D, s, "same").sum()
          )([x, filter]);
          tf.fused.conv2d({
            x,
            filter,
            strides: s,
            pad: "same",
            bias: b,
            activation: "relu",
          });
          tf.grads((p: tf.Tensor, q: tf.Tensor) =>
            tf.conv2dTranspose(
              p as tf.Tensor4D,
              q as tf.Tensor4D,
              [2, 9, 9, 4],
              1,
              "same",
            ).sum()
          )([tf.conv2d(x, filter, 1, "same"), filter]);
        }
      });
    work(); // warm-up
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const ids = backend.numDataIds();
    await assertNoTensorLeak(() => {
      for (let i = 0; i < 3; i++) work();
    });
    assertEquals(backend.numDataIds(), ids, "wasm data ids");
    tf.dispose([x, w, w1, b]);
  },
);
