import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { trainStep } from "../lib/model.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  adaptiveWeight,
  freeze,
  gradientsAt,
  hingeDiscriminatorLoss,
  hingeGeneratorLoss,
  patchDiscriminator28,
  perceptualLoss,
} from "../lib/vqgan.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

Deno.test("hinge losses equal their definitions", () => {
  const real = tf.tensor1d([2, 0.5, -1]);
  const fake = tf.tensor1d([-2, 0, 0.5, -0.5]);
  // mean(relu(1 - r)) = (0 + 0.5 + 2) / 3; mean(relu(1 + f)) = (0 + 1 + 1.5 + 0.5) / 4
  assertAllClose(hingeDiscriminatorLoss(real, fake), [2.5 / 3 + 3 / 4], {
    atol: 1e-6,
  });
  assertAllClose(hingeGeneratorLoss(fake), [0.5], { atol: 1e-6 });
  tf.dispose([real, fake]);
});

Deno.test("adaptiveWeight equals a hand computation at a tiny decoder's last layer", () => {
  // Decoder's last layer y = a W (a: [2, 3] activations, W: [3, 2]); L_rec = mean((y - t)^2);
  // L_GAN = -mean(y u) for a linear critic u. Gradients by hand in float64.
  const a = [[1, 2, -1], [0.5, -1, 2]];
  const W0 = [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.2]];
  const t = [[1, 0], [0, 1]];
  const u = [0.7, -1.3];
  const W = tf.variable(tf.tensor2d(W0), true, `W${Math.random()}`);
  const at = tf.tensor2d(a);
  const tt = tf.tensor2d(t);
  const ut = tf.tensor2d([[u[0]], [u[1]]]);
  const y = a.map((row) =>
    [0, 1].map((j) => row.reduce((s, v, k) => s + v * W0[k][j], 0))
  );
  const gRec = W0.map((_, k) =>
    [0, 1].map((j) =>
      (2 / 4) * [0, 1].reduce((s, i) => s + a[i][k] * (y[i][j] - t[i][j]), 0)
    )
  );
  const gGan = W0.map((_, k) =>
    [0, 1].map((j) => -(1 / 2) * [0, 1].reduce((s, i) => s + a[i][k] * u[j], 0))
  );
  const norm = (g: number[][]) =>
    Math.sqrt(g.flat().reduce((s, v) => s + v * v, 0));
  const grads = gradientsAt({
    rec: () => at.matMul(W).sub(tt).square().mean() as tf.Scalar,
    gan: () => at.matMul(W).matMul(ut).mean().neg() as tf.Scalar,
  }, W);
  assertAllClose(grads.rec, gRec, { atol: 1e-6 });
  assertAllClose(grads.gan, gGan, { atol: 1e-6 });
  const lambda = adaptiveWeight(grads.rec, grads.gan);
  assertAllClose([lambda], [norm(gRec) / (norm(gGan) + 1e-4)], { rtol: 1e-5 });
  // Clipped at 1e4 when the GAN gradient vanishes.
  const zero = tf.zerosLike(grads.gan);
  assertEquals(adaptiveWeight(grads.rec, zero, { delta: 1e-12 }), 1e4);
  tf.dispose([W, at, tt, ut, zero, ...Object.values(grads)]);
});

Deno.test("perceptualLoss: zero for identical images, closed form for linear features, no gradient reaches the frozen network", async () => {
  const features = freeze(tf.sequential({
    layers: [
      tf.layers.dense({
        inputShape: [3],
        units: 2,
        useBias: false,
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
    ],
  }));
  const f = (x: tf.Tensor) => features.apply(x) as tf.Tensor;
  const x = tf.tensor2d([[1, 2, 3], [0, -1, 1]]);
  const xhat = tf.tensor2d([[1.5, 2, 2], [0, 0, 1]]);
  assertAllClose(perceptualLoss(f, x, x), [0], { atol: 0 });
  const A = features.getWeights()[0];
  const expected = tf.tidy(() => x.sub(xhat).matMul(A).square().mean());
  assertAllClose(perceptualLoss(f, x, xhat), expected, { rtol: 1e-5 });
  // A "decoder" variable trained through the perceptual loss: it moves, the frozen weights do not.
  const decoded = tf.variable(xhat.clone(), true, `dec${Math.random()}`);
  const before = A.arraySync() as number[][];
  const model = {
    trainableVariables: () => [decoded],
    loss: (batch: tf.Tensor) => ({ total: perceptualLoss(f, batch, decoded) }),
  };
  const { grads } = tf.variableGrads(() => perceptualLoss(f, x, decoded));
  assertEquals(Object.keys(grads), [decoded.name]);
  tf.dispose(Object.values(grads));
  const optimizer = tf.train.sgd(0.5);
  trainStep(model, optimizer, x);
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 50; i++) trainStep(model, optimizer, x);
  });
  assertAllClose(features.getWeights()[0], before, { atol: 0 });
  assert(
    tf.tidy(() => perceptualLoss(f, x, decoded).dataSync()[0]) <
      0.1 * expected.dataSync()[0],
  );
  tf.dispose([x, xhat, expected, decoded]);
  features.dispose();
});

Deno.test("patchDiscriminator28: one logit per patch of a 7x7 grid, each from an 18x18 receptive field", () => {
  const d = patchDiscriminator28({ seed: 0 });
  const x = tf.randomNormal([2, 28, 28, 1], 0, 1, "float32", 3);
  const out = d.apply(x) as tf.Tensor;
  assertEquals(out.shape, [2, 7, 7, 1]);
  // The input pixels that the centre patch's logit depends on.
  const g = tf.grad((img: tf.Tensor) =>
    (d.apply(img) as tf.Tensor).slice([0, 3, 3, 0], [1, 1, 1, 1]).sum()
  )(x.slice([0, 0, 0, 0], [1, 28, 28, 1]));
  const rows = (g.abs().sum([0, 2, 3]).arraySync() as number[]).map((
    v,
    i,
  ) => (v > 0 ? i : -1)).filter((i) => i >= 0);
  assertEquals(rows.at(-1)! - rows[0] + 1, 18);
  tf.dispose([x, out, g]);
  d.dispose();
});

Deno.test("vqgan pieces: bad arguments are ArgumentErrors that name the function", async () => {
  const a = tf.zeros([2, 3]);
  const b = tf.zeros([3, 2]);
  await assertNoTensorLeak(() => {
    assertThrows(
      () => perceptualLoss((t) => t, a, b),
      ArgumentError,
      "perceptualLoss: xhat must have shape [2, 3]",
    );
    assertThrows(
      () => adaptiveWeight(a, b),
      ArgumentError,
      "adaptiveWeight: gradGan must have shape",
    );
    assertThrows(
      () => adaptiveWeight(a, a, { delta: 0 }),
      ArgumentError,
      "delta",
    );
    assertThrows(
      () => patchDiscriminator28({ chanels: [8, 8] } as never),
      ArgumentError,
      'did you mean "channels"',
    );
    assertThrows(
      () => hingeGeneratorLoss(null as never),
      ArgumentError,
      "hingeGeneratorLoss: fakeLogits",
    );
  });
  tf.dispose([a, b]);
});
