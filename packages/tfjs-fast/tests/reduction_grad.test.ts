/**
 * The gradients of full sums and means as one fill (ops.ts's
 * `useFusedReductionGradients`, kernels/combination.ts's
 * `ProjectBroadcastScalar`): tfjs's own bits for every upstream value
 * (signed zeros, subnormals, infinities, NaN), shape and axis, one kernel,
 * tfjs's code for partial reductions and gradients of gradients, the
 * switch, and no leaks.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend.ts";
import {
  fusedReductionGradientsInUse,
  useFusedReductionGradients,
} from "../ops.ts";
import { randomNormal } from "./seeded.ts";
import { bits, kernelCounts } from "./bits.ts";
import { ArgumentError } from "../errors.ts";
import {
  assert,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "../../../tests/assert.ts";

await initBackend({ quiet: true });

/** `fn` with the fill on (`fused`) or tfjs's own gradients. */
function withGradients<T>(fused: boolean, fn: () => T): T {
  useFusedReductionGradients(fused);
  try {
    return fn();
  } finally {
    useFusedReductionGradients(true);
  }
}

const UPSTREAM = [3.7, 0, -0, 1e-45, -2.5e-39, Infinity, -Infinity, NaN];
const SHAPES = [[], [1], [7], [3, 5], [2, 3, 4, 5], [0, 3]];

type Reduce = (x: tf.Tensor) => tf.Tensor;
const REDUCTIONS: [string, Reduce][] = [
  ["sum", (x) => tf.sum(x)],
  ["mean", (x) => tf.mean(x)],
  ["sum keepDims", (x) => tf.sum(x, undefined, true)],
  ["mean over the axis of a [1, n]", (x) => tf.mean(tf.reshape(x, [1, -1]), 1)],
];

/** d(c * reduce(x))/dx: the fill's value is c (Sum) or c / n (Mean). */
function gradient(reduce: Reduce, shape: number[], c: number): number[] {
  return tf.tidy(() => {
    const x = randomNormal(shape, { seed: 1 });
    return bits(tf.grad((xIn: tf.Tensor) => tf.mul(tf.sum(reduce(xIn)), c))(x));
  });
}

Deno.test("reduction gradients: tfjs's bits for every upstream value and shape", () => {
  for (const [name, reduce] of REDUCTIONS) {
    for (const shape of SHAPES) {
      for (const c of UPSTREAM) {
        assertEquals(
          gradient(reduce, shape, c),
          withGradients(false, () => gradient(reduce, shape, c)),
          `${name} of [${shape}], upstream ${c}`,
        );
      }
    }
  }
});

Deno.test("reduction gradients: a full sum's gradient is one fill", async () => {
  const x = randomNormal([64, 14, 14, 4], { seed: 2 });
  const step = () =>
    tf.tidy(() => void tf.grad((a: tf.Tensor) => tf.sum(a))(x));
  const fused = await kernelCounts(step);
  const tfjs = await withGradients(false, () => kernelCounts(step));
  assertEquals(fused["ProjectBroadcastScalar"], 1);
  assertEquals(fused["Multiply"], undefined);
  assertEquals(tfjs["Multiply"], 1);
  x.dispose();
});

Deno.test("reduction gradients: partial reductions and gradients of gradients run tfjs's code", async () => {
  const x = randomNormal([4, 6], { seed: 3 });
  const cases: [string, () => tf.Tensor][] = [
    [
      "sum over an axis",
      () => tf.grad((a: tf.Tensor) => tf.sum(tf.square(tf.sum(a, 1))))(x),
    ],
    [
      "mean over an axis",
      () => tf.grad((a: tf.Tensor) => tf.sum(tf.square(tf.mean(a, 0))))(x),
    ],
    // The inner gradient (a fill, taped here) is differentiated again.
    [
      "second order",
      () =>
        tf.grad((a: tf.Tensor) =>
          tf.sum(tf.square(
            tf.grad((b: tf.Tensor) => tf.mul(tf.sum(tf.square(b)), tf.sum(b)))(
              a,
            ),
          ))
        )(x),
    ],
  ];
  for (const [what, run] of cases) {
    const fused = tf.tidy(() => bits(run()));
    assertEquals(
      fused,
      withGradients(false, () => tf.tidy(() => bits(run()))),
      what,
    );
    assert(fused.some((b) => b !== 0), what);
  }
  const counts = await kernelCounts(() => tf.tidy(() => void cases[0][1]()));
  // The outer full sum's gradient only; the sum over an axis is tfjs's.
  assertEquals(counts["ProjectBroadcastScalar"], 1);
  x.dispose();
});

Deno.test("reduction gradients: on cpu, tfjs's code; the switch; no leaks", async () => {
  assert(fusedReductionGradientsInUse(), "initBackend turns it on");
  useFusedReductionGradients(false);
  assert(!fusedReductionGradientsInUse());
  useFusedReductionGradients(true);
  assert(fusedReductionGradientsInUse());
  assertThrows(
    () => useFusedReductionGradients(1 as unknown as boolean),
    ArgumentError,
    "useFusedReductionGradients: on must be true or false, got 1",
  );
  assert(fusedReductionGradientsInUse());
  await tf.setBackend("cpu");
  try {
    const x = tf.ones([3, 2]);
    const counts = await kernelCounts(() =>
      tf.tidy(() => void tf.grad((a: tf.Tensor) => tf.sum(a))(x))
    );
    assertEquals(counts["ProjectBroadcastScalar"], undefined);
    assertEquals(
      tf.tidy(() => tf.grad((a: tf.Tensor) => tf.sum(a))(x).dataSync()),
      new Float32Array(6).fill(1),
    );
    x.dispose();
  } finally {
    await tf.setBackend("wasm");
  }
  const x = randomNormal([5, 5], { seed: 4 });
  await assertNoTensorLeak(() => {
    tf.tidy(() => {
      tf.grad((a: tf.Tensor) => tf.sum(a))(x);
      tf.grad((a: tf.Tensor) => tf.mean(a))(x);
    });
  });
  x.dispose();
});
