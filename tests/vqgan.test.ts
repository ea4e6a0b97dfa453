import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { trainStep } from "../lib/model.ts";
import { adam } from "../lib/optim.ts";
import { ArgumentError } from "../lib/validate.ts";
import { VQVAE } from "../lib/vqvae.ts";
import {
  adaptiveWeight,
  freeze,
  gradientsAt,
  hingeDiscriminatorLoss,
  hingeGeneratorLoss,
  layerFeatures,
  patchDiscriminator28,
  perceptualLoss,
  VQGAN,
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

// ---------------------------------------------------------------------------
// The VQ-GAN composition

/** A tiny VQ-VAE on 4x4 images: 1x1 convolutions only, so every gradient is easy to write by hand. */
function tinyVQVAE(seed = 0): VQVAE {
  const init = (i: number) =>
    tf.initializers.glorotUniform({ seed: seed * 10 + i });
  const encoder = tf.sequential({
    layers: [tf.layers.conv2d({
      inputShape: [4, 4, 1],
      filters: 2,
      kernelSize: 1,
      kernelInitializer: init(1),
    })],
  });
  const decoder = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [4, 4, 2],
        filters: 3,
        kernelSize: 1,
        activation: "relu",
        kernelInitializer: init(2),
        biasInitializer: tf.initializers.constant({ value: 0.1 }),
      }),
      tf.layers.conv2d({
        filters: 1,
        kernelSize: 1,
        kernelInitializer: init(3),
      }),
    ],
  });
  return new VQVAE({ numCodes: 4, encoder, decoder, init: "random", seed });
}

/** A linear 1x1 patch critic: D(x) = u x + c per pixel. */
function linearCritic(u: number, c: number): tf.Sequential {
  return tf.sequential({
    layers: [tf.layers.conv2d({
      inputShape: [4, 4, 1],
      filters: 1,
      kernelSize: 1,
      kernelInitializer: tf.initializers.constant({ value: u }),
      biasInitializer: tf.initializers.constant({ value: c }),
    })],
  });
}

Deno.test("VQGAN: lambda at the decoder's last layer equals the hand computation, and the total is the sum of its terms", () => {
  const vqgan = new VQGAN({
    vqvae: tinyVQVAE(1),
    discriminator: linearCritic(0.7, -0.2),
    discWeight: 0.8,
  });
  const x = tf.randomUniform([3, 4, 4, 1], 0, 1, "float32", 5) as tf.Tensor4D;
  // The last layer's input a [N, 3] and output xhat = a W + b, N = 3 * 16 pixels.
  const { a, xhat } = tf.tidy(() => {
    const h = vqgan.vqvae.encoder.apply(x) as tf.Tensor;
    const q = vqgan.vqvae.quantizer.forward(h).quantized;
    const act = vqgan.decoderTrunk.apply(q) as tf.Tensor;
    return {
      a: act.reshape([-1, 3]).arraySync() as number[][],
      xhat: (vqgan.lastLayer.apply(act) as tf.Tensor).reshape([-1])
        .arraySync() as number[],
    };
  });
  const xs = Array.from(x.dataSync());
  const N = xs.length;
  // L_rec = mean((xhat - x)^2): dL/dW_k = 2/N sum_i a_ik (xhat_i - x_i).
  const gRec = [0, 1, 2].map((k) =>
    (2 / N) * a.reduce((s, row, i) => s + row[k] * (xhat[i] - xs[i]), 0)
  );
  // L_GAN = -mean(u xhat + c): dL/dW_k = -u/N sum_i a_ik.
  const gGan = [0, 1, 2].map((k) =>
    (-0.7 / N) * a.reduce((s, row) => s + row[k], 0)
  );
  const norm = (g: number[]) => Math.hypot(...g);
  const expected = 0.8 * norm(gRec) / (norm(gGan) + 1e-4);
  assertAllClose([vqgan.adaptiveWeight(x)], [expected], { rtol: 1e-4 });
  // The generator's loss: recon + codebook + beta commitment + lambda gan (no perceptual features here).
  const out = vqgan.generatorObjective().loss(x);
  const t = Object.fromEntries(
    Object.entries(out.terms!).map(([k, v]) => [k, v.dataSync()[0]]),
  );
  assertAllClose([t.lambda], [expected], { rtol: 1e-4 });
  assertAllClose(
    out.total,
    [t.recon + t.codebook + 0.25 * t.commitment + t.lambda * t.gan],
    { rtol: 1e-5 },
  );
  assertAllClose(
    [t.gan],
    [-(0.7 * xhat.reduce((s, v) => s + v, 0) / N - 0.2)],
    {
      rtol: 1e-5,
    },
  );
  // The warm-up objective has no GAN term.
  const warm = vqgan.generatorObjective({ adversarial: false }).loss(x);
  assertEquals(warm.terms!.lambda.dataSync()[0], 0);
  tf.dispose([
    x,
    out.total,
    warm.total,
    ...Object.values(out.terms!),
    ...Object.values(out.saved!),
    ...Object.values(warm.terms!),
    ...Object.values(warm.saved!),
  ]);
  vqgan.dispose();
});

Deno.test("VQGAN: each objective moves its own player only; the frozen perceptual network never moves; no leaks over 200 steps of each", async () => {
  const vqvae = new VQVAE({ numCodes: 8, dim: 4, channels: [4, 8], seed: 2 });
  const perceptual = freeze(tf.sequential({
    layers: [tf.layers.conv2d({
      inputShape: [28, 28, 1],
      filters: 4,
      kernelSize: 3,
      strides: 2,
      activation: "relu",
      kernelInitializer: tf.initializers.glorotUniform({ seed: 9 }),
      name: "frozen_conv",
    })],
  }));
  const vqgan = new VQGAN({
    vqvae,
    discriminator: patchDiscriminator28({ channels: [4, 8], seed: 3 }),
    features: layerFeatures(perceptual, ["frozen_conv"]),
  });
  const images = tf.randomUniform([16, 28, 28, 1], 0, 1, "float32", 1);
  vqvae.initCodebook(images as tf.Tensor4D);
  const [g, d] = [vqgan.generatorObjective(), vqgan.discriminatorObjective()];
  const frozen = perceptual.getWeights().map((w) => w.arraySync());
  const snapshot = (m: tf.LayersModel) =>
    m.getWeights().map((w) => w.dataSync().slice());
  const batch = () => images.slice([0, 0, 0, 0], [4, 28, 28, 1]) as tf.Tensor4D;
  // variableGrads over every trainable variable: the frozen network's are not among them.
  const { grads } = tf.variableGrads(() => {
    const out = g.loss(batch());
    return out.total;
  });
  const frozenNames = perceptual.weights.map((w) =>
    (w.read() as tf.Variable).name
  );
  assert(Object.keys(grads).length > 0);
  assert(
    Object.keys(grads).every((name) => !frozenNames.includes(name)),
    "a frozen weight got a gradient",
  );
  tf.dispose(Object.values(grads));
  const gOptimizer = { networks: adam(1e-3), codebook: adam(1e-3) };
  const dOptimizer = adam(1e-3, 0.5);
  // One step each: D's step leaves the generator, G's step leaves D.
  const gBefore = snapshot(vqvae.decoder);
  tf.tidy(() => trainStep(d, dOptimizer, batch()));
  snapshot(vqvae.decoder).forEach((w, i) =>
    assertAllClose(w, gBefore[i], { atol: 0, rtol: 0 })
  );
  const dBefore = snapshot(vqgan.discriminator);
  tf.tidy(() => trainStep(g, gOptimizer, batch()));
  snapshot(vqgan.discriminator).forEach((w, i) =>
    assertAllClose(w, dBefore[i], { atol: 0, rtol: 0 })
  );
  let last: Record<string, number> = {};
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 200; i++) {
      tf.tidy(() => trainStep(d, dOptimizer, batch()));
      last = tf.tidy(() => trainStep(g, gOptimizer, batch()));
    }
  });
  for (
    const key of [
      "recon",
      "perceptual",
      "codebook",
      "commitment",
      "gan",
      "lambda",
    ]
  ) {
    assert(Number.isFinite(last[key]), `${key} = ${last[key]}`);
  }
  perceptual.getWeights().forEach((w, i) =>
    assertAllClose(w, frozen[i] as number[][], { atol: 0, rtol: 0 })
  );
  images.dispose();
  vqgan.dispose();
  perceptual.dispose();
});

Deno.test("VQGAN and layerFeatures: bad arguments are ArgumentErrors that name the call and build nothing", async () => {
  const vqvae = tinyVQVAE(0);
  const x = tf.zeros([2, 4, 4, 1]) as tf.Tensor4D;
  const empty = tf.zeros([0, 4, 4, 1]) as tf.Tensor4D;
  await assertNoTensorLeak(() => {
    assertThrows(
      () => new VQGAN(null as never),
      ArgumentError,
      "VQGAN: options",
    );
    assertThrows(
      () => new VQGAN({} as never),
      ArgumentError,
      "vqvae must be a VQVAE",
    );
    assertThrows(
      () => new VQGAN({ vqvae, discWieght: 1 } as never),
      ArgumentError,
      'did you mean "discWeight"',
    );
    assertThrows(
      () => new VQGAN({ vqvae, perceptualWeight: -1 }),
      ArgumentError,
      "perceptualWeight",
    );
    assertThrows(
      () => new VQGAN({ vqvae, discriminator: {} as never }),
      ArgumentError,
      "discriminator must be a tf.LayersModel",
    );
    assertThrows(
      () => layerFeatures(vqvae.decoder, ["nope"]),
      ArgumentError,
      'layerFeatures: model has no layer "nope"',
    );
  });
  const vqgan = new VQGAN({ vqvae, discriminator: linearCritic(1, 0) });
  const wrong = tf.zeros([2, 5, 5, 1]);
  await assertNoTensorLeak(() => {
    assertThrows(
      () => vqgan.generatorObjective().loss(empty),
      ArgumentError,
      "VQGAN.generatorObjective.loss: images is an empty batch",
    );
    assertThrows(
      () => vqgan.discriminatorObjective().loss(wrong as never),
      ArgumentError,
      "VQGAN.discriminatorObjective.loss: images must have shape",
    );
    assertThrows(
      () => vqgan.generatorObjective({ adversrial: true } as never),
      ArgumentError,
      'did you mean "adversarial"',
    );
  });
  tf.dispose([x, empty, wrong]);
  vqgan.dispose();
});
