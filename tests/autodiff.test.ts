import * as tf from "@tensorflow/tfjs";
import { stopGradient, straightThrough } from "../lib/autodiff.ts";
import { initBackend } from "../lib/backend.ts";
import { randomNormal } from "../lib/random.ts";
import { ArgumentError } from "../lib/validate.ts";
import { assertAllClose, assertNoTensorLeak, assertThrows } from "./assert.ts";

await initBackend({ quiet: true });

Deno.test("stopGradient keeps the value and has zero gradient", () => {
  tf.tidy(() => {
    const x = randomNormal([3, 4], { seed: 1 });
    assertAllClose(stopGradient(x), x, { atol: 0, rtol: 0 });
    // d/dx [x^2 + sg(x)^3] = 2x: the stopped branch contributes nothing.
    const g = tf.grad((a: tf.Tensor) =>
      a.square().add(stopGradient(a).pow(3)).sum()
    )(x);
    assertAllClose(g, x.mul(2));
  });
});

Deno.test("straightThrough: value is exactly q, d/dh is the upstream gradient, d/dq is zero", () => {
  tf.tidy(() => {
    const h = randomNormal([5, 3], { seed: 2 });
    const q = randomNormal([5, 3], { seed: 3 });
    const up = randomNormal([5, 3], { seed: 4 });
    assertAllClose(straightThrough(h, q), q, { atol: 0, rtol: 0 });
    const [dh, dq] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      straightThrough(a, b).mul(up).sum()
    )(
      [h, q],
    );
    assertAllClose(dh, up, { atol: 0, rtol: 0 });
    assertAllClose(dq, 0, { atol: 0, rtol: 0 });
  });
});

Deno.test("straightThrough equals h + sg(q - h) in value (to rounding) and gradient", () => {
  tf.tidy(() => {
    const h = randomNormal([4, 2], { seed: 5 });
    const q = randomNormal([4, 2], { seed: 6 });
    const up = randomNormal([4, 2], { seed: 7 });
    const viaSg = (a: tf.Tensor, b: tf.Tensor) => a.add(stopGradient(b.sub(a)));
    assertAllClose(viaSg(h, q), straightThrough(h, q), { atol: 1e-6 });
    const g1 = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      viaSg(a, b).mul(up).sum()
    )([h, q]);
    const g2 = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      straightThrough(a, b).mul(up).sum()
    )([h, q]);
    assertAllClose(g1[0], g2[0]);
    assertAllClose(g1[1], g2[1]);
  });
});

Deno.test("bad inputs give clear errors and nothing leaks", async () => {
  assertThrows(
    () => stopGradient([1, 2] as unknown as tf.Tensor),
    ArgumentError,
    "stopGradient",
    "x",
  );
  const a = tf.zeros([2, 3]);
  const b = tf.zeros([3, 2]);
  assertThrows(() => straightThrough(a, b), ArgumentError, "same shape");
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 10; i++) {
      tf.tidy(() => {
        tf.grad((x: tf.Tensor) =>
          straightThrough(x, stopGradient(x.round())).sum()
        )(a);
      });
    }
  });
  tf.dispose([a, b]);
});
