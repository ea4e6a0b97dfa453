import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import {
  addNoise,
  Autoencoder,
  gaussianGradientEstimates,
  gaussianKL,
  GaussianVAE,
  LinearAutoencoder,
  pca,
  principalAngles,
  reparameterize,
} from "../lib/vae.ts";
import {
  codeVariance,
  compareGradientEstimators,
} from "../lib/course/02_gaussian_vae/mod.ts";
import { trainStep } from "../lib/model.ts";
import { adam } from "../lib/optim.ts";
import { trainableVariables } from "../lib/nn.ts";
import { randomNormal, Rng } from "../lib/random.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertGradientMatches,
  assertNoTensorLeak,
  assertNotEquals,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

/** The scalar formula of the notes: ln(sp/sq) + (sq^2 + (mp - mq)^2) / (2 sp^2) - 1/2. */
function scalarKL(mq: number, sq: number, mp: number, sp: number): number {
  return Math.log(sp / sq) + (sq * sq + (mp - mq) ** 2) / (2 * sp * sp) - 0.5;
}

Deno.test("gaussianKL matches the closed form of the notes, summed over the last axis", () => {
  const mq = [[0.3, -1.2, 2.0], [0, 0.5, -0.7]];
  const lq = [[-0.5, 0.4, 1.1], [0, -2, 0.3]];
  const mp = [[1.0, 0.2, -0.3], [0.1, 0.1, 0.1]];
  const lp = [[0.2, -0.3, 0.0], [0.5, 0.5, -1]];
  const expected = mq.map((row, i) =>
    row.reduce(
      (s, m, j) =>
        s +
        scalarKL(m, Math.exp(lq[i][j] / 2), mp[i][j], Math.exp(lp[i][j] / 2)),
      0,
    )
  );
  const expectedStd = mq.map((row, i) =>
    row.reduce((s, m, j) => s + scalarKL(m, Math.exp(lq[i][j] / 2), 0, 1), 0)
  );
  tf.tidy(() => {
    const kl = gaussianKL(
      tf.tensor2d(mq),
      tf.tensor2d(lq),
      tf.tensor2d(mp),
      tf.tensor2d(lp),
    );
    assertEquals(kl.shape, [2]);
    assertAllClose(kl, expected, { rtol: 1e-5, atol: 1e-5 });
    assertAllClose(gaussianKL(tf.tensor2d(mq), tf.tensor2d(lq)), expectedStd, {
      rtol: 1e-5,
      atol: 1e-5,
    });
    // A rank-1 input is one distribution: a scalar.
    assertEquals(gaussianKL(tf.tensor1d(mq[0]), tf.tensor1d(lq[0])).shape, []);
  });
});

Deno.test("gaussianKL is 0 for identical distributions and positive otherwise", () => {
  tf.tidy(() => {
    const mu = randomNormal([4, 5], { seed: 1 });
    const lv = randomNormal([4, 5], { seed: 2 });
    assertAllClose(gaussianKL(mu, lv, mu, lv), 0, { atol: 1e-6 });
    assertAllClose(gaussianKL(tf.zeros([3, 2]), tf.zeros([3, 2])), 0, {
      atol: 1e-7,
    });
    const kl = gaussianKL(mu, lv).dataSync();
    for (const v of kl) assert(v > 0, `KL must be positive, got ${v}`);
  });
});

Deno.test("gaussianKL agrees with a Monte-Carlo estimate E_q[log q - log p]", () => {
  const mq = [0.5, -1.0];
  const lq = [Math.log(0.49), Math.log(2.25)];
  const mp = [0.0, 0.3];
  const lp = [Math.log(1.44), Math.log(0.81)];
  const n = 200000;
  const logDensity = (z: number, m: number, lv: number) =>
    -0.5 * (Math.log(2 * Math.PI) + lv + (z - m) ** 2 / Math.exp(lv));
  const samples = tf.tidy(() =>
    reparameterize(
      tf.tensor2d([mq], [1, 2]).tile([n, 1]),
      tf.tensor2d([lq], [1, 2]).tile([n, 1]),
      {
        seed: 7,
      },
    ).dataSync()
  );
  let sum = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 2; j++) {
      const z = samples[i * 2 + j];
      sum += logDensity(z, mq[j], lq[j]) - logDensity(z, mp[j], lp[j]);
    }
  }
  const mc = sum / n;
  const exact = tf.tidy(() =>
    gaussianKL(
      tf.tensor1d(mq),
      tf.tensor1d(lq),
      tf.tensor1d(mp),
      tf.tensor1d(lp),
    ).dataSync()[0]
  );
  assertAllClose(mc, exact, { rtol: 0.02, atol: 0.01 });
});

Deno.test("gaussianKL gradients match finite differences", () => {
  const mu = tf.tensor2d([[0.3, -0.8], [1.1, 0.2]]);
  const lv = tf.tensor2d([[-0.4, 0.6], [0.1, -1.0]]);
  assertGradientMatches((m) => gaussianKL(m, lv).sum() as tf.Scalar, mu);
  assertGradientMatches((l) => gaussianKL(mu, l).sum() as tf.Scalar, lv);
  // A separate tensor for the prior mean: tf.grad would also follow lv's other uses.
  const muP = tf.tensor2d([[0.5, -0.1], [-1.0, 0.4]]);
  assertGradientMatches(
    (m) => gaussianKL(mu, lv, m, tf.onesLike(m).mul(0.3)).sum() as tf.Scalar,
    muP,
  );
  tf.dispose([mu, lv, muP]);
});

Deno.test("reparameterize gives samples with mean mu and variance exp(logVar), reproducibly", () => {
  const n = 50000;
  const mus = [1.5, -2.0, 0.0];
  const vars = [0.25, 4.0, 1.0];
  tf.tidy(() => {
    const mu = tf.tensor2d([mus]).tile([n, 1]);
    const lv = tf.tensor2d([vars.map(Math.log)]).tile([n, 1]);
    const z = reparameterize(mu, lv, { seed: 3 });
    const { mean, variance } = tf.moments(z, 0);
    assertAllClose(mean, mus, { atol: 0.03 });
    assertAllClose(variance, vars, { rtol: 0.03 });
    assertAllClose(reparameterize(mu, lv, { seed: 3 }), z);
    assert(
      reparameterize(mu, lv, { seed: 4 }).sub(z).abs().max().dataSync()[0] >
        0.1,
    );
  });
});

Deno.test("reparameterize and addNoise without a seed draw new noise on every call", () => {
  tf.tidy(() => {
    const mu = tf.zeros([2, 3]);
    const a = reparameterize(mu, mu);
    const b = reparameterize(mu, mu);
    assert(
      a.sub(b).abs().max().dataSync()[0] > 0.01,
      "two unseeded draws are equal",
    );
    const x = tf.fill([2, 3], 0.5);
    assert(
      addNoise(x, 0.1).sub(addNoise(x, 0.1)).abs().max().dataSync()[0] > 0.001,
      "two unseeded noises are equal",
    );
  });
});

Deno.test("gradients flow through reparameterize to mu and logVar (finite differences)", () => {
  const mu = tf.tensor2d([[0.2, -0.5, 1.0]]);
  const lv = tf.tensor2d([[0.1, -0.3, 0.4]]);
  // A fixed seed makes z a deterministic, smooth function of (mu, logVar).
  const f = (m: tf.Tensor, l: tf.Tensor) =>
    reparameterize(m, l, { seed: 11 }).sin().sum() as tf.Scalar;
  assertGradientMatches((m) => f(m, lv), mu);
  assertGradientMatches((l) => f(mu, l), lv);
  // dz/dmu = 1 exactly.
  const g = tf.tidy(() =>
    tf.grad((m: tf.Tensor) => reparameterize(m, lv, { seed: 1 }).sum())(mu)
  );
  assertAllClose(g, [[1, 1, 1]]);
  tf.dispose([mu, lv, g]);
});

Deno.test("gaussianKL and reparameterize reject bad inputs clearly", () => {
  const a = tf.zeros([2, 3]);
  const b = tf.zeros([2, 4]);
  const nan = tf.tensor2d([[0, NaN, 0], [0, 0, 0]]);
  const int = tf.zeros([2, 3], "int32");
  assertThrows(
    () => gaussianKL(a, b),
    ArgumentError,
    "gaussianKL",
    "logVarQ",
    "shape",
  );
  assertThrows(
    () => gaussianKL(a, nan),
    ArgumentError,
    "gaussianKL",
    "logVarQ",
    "finite",
  );
  assertThrows(
    () => gaussianKL(a, a, a),
    ArgumentError,
    "both muP and logVarP",
  );
  assertThrows(() => gaussianKL(a, a, b, b), ArgumentError, "muP", "shape");
  assertThrows(() => gaussianKL(a, int), ArgumentError, "dtype");
  assertThrows(
    () => gaussianKL([1, 2] as unknown as tf.Tensor, a),
    ArgumentError,
    "muQ must be a tf.Tensor",
  );
  assertThrows(
    () => reparameterize(a, b),
    ArgumentError,
    "reparameterize",
    "logVar",
  );
  assertThrows(() => reparameterize(nan, a), ArgumentError, "mu", "finite");
  tf.dispose([a, b, nan, int]);
});

Deno.test("gaussianKL and reparameterize do not leak tensors", async () => {
  const mu = tf.ones([8, 4]);
  const lv = tf.zeros([8, 4]);
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 5; i++) {
      tf.dispose([
        gaussianKL(mu, lv),
        gaussianKL(mu, lv, lv, mu),
        reparameterize(mu, lv, { seed: i }),
      ]);
    }
  });
  tf.dispose([mu, lv]);
});

// ---------------------------------------------------------------------------
// Eigendecomposition, PCA, principal angles, linear autoencoder

function rotation(d: number, seed: number): number[][] {
  // An orthonormal basis from Gram-Schmidt on random vectors.
  const rng = new Rng(seed);
  const q: number[][] = [];
  while (q.length < d) {
    let v = Array.from({ length: d }, () => rng.normal());
    for (const u of q) {
      const dot = v.reduce((s, x, j) => s + x * u[j], 0);
      v = v.map((x, j) => x - dot * u[j]);
    }
    const n = Math.hypot(...v);
    q.push(v.map((x) => x / n));
  }
  return q;
}

Deno.test("principalAngles: 0 for the same span, pi/2 for orthogonal, a known angle otherwise", () => {
  const e = (i: number) =>
    Array.from({ length: 4 }, (_, j) => (i === j ? 1 : 0));
  // Same span, different (non-orthonormal) bases.
  assertAllClose(principalAngles([e(0), e(1)], [[1, 1, 0, 0], [2, -1, 0, 0]]), [
    0,
    0,
  ], {
    atol: 1e-7,
  });
  assertAllClose(principalAngles([e(0)], [e(2)]), [Math.PI / 2], {
    atol: 1e-12,
  });
  const t = 0.3;
  assertAllClose(
    principalAngles([e(0), e(1)], [e(0), [0, Math.cos(t), Math.sin(t), 0]]),
    [0, t],
    { atol: 1e-7 },
  );
  assertThrows(
    () => principalAngles([e(0), e(0)], [e(1)]),
    ArgumentError,
    "linearly independent",
  );
  assertThrows(
    () => principalAngles([e(0)], [[1, 0]]),
    ArgumentError,
    "same space",
  );
});

/** n points in d dimensions with planted principal axes q and standard deviations stds. */
function plantedData(
  n: number,
  q: number[][],
  stds: number[],
  seed: number,
): number[][] {
  const rng = new Rng(seed);
  const d = q.length;
  const offset = Array.from({ length: d }, (_, j) => j - 2);
  return Array.from({ length: n }, () => {
    const coef = stds.map((s) => s * rng.normal());
    return offset.map((o, j) =>
      o + coef.reduce((s, c, i) => s + c * q[i][j], 0)
    );
  });
}

Deno.test("pca finds the planted principal directions and variances", () => {
  const q = rotation(5, 9);
  const data = plantedData(4000, q, [3, 2, 0.5, 0.2, 0.1], 1);
  const result = pca(data, 2);
  assertEquals(result.components.length, 2);
  assertAllClose(result.explainedVariance, [9, 4], { rtol: 0.08 });
  assertAllClose(result.mean, [-2, -1, 0, 1, 2], { atol: 0.15 });
  const angles = principalAngles(result.components, q.slice(0, 2));
  assert(Math.max(...angles) < 0.05, `angles ${angles}`);
  assertThrows(() => pca(data, 6), ArgumentError, "pca", "k");
  assertThrows(() => pca([[1, 2]], 1), ArgumentError, "at least 2 rows");
  assertThrows(() => pca([[1, NaN], [0, 1]], 1), ArgumentError, "finite");
});

Deno.test("a linear autoencoder trained by trainStep spans the top principal subspace (angles near 0)", async () => {
  const q = rotation(6, 2);
  const data = plantedData(1000, q, [3, 2, 1.5, 0.3, 0.2, 0.1], 4);
  const { components, mean } = pca(data, 3);
  const centred = tf.tensor2d(data.map((r) => r.map((v, j) => v - mean[j])));
  const lae = new LinearAutoencoder(6, 3, { seed: 1 });
  const optimizer = adam(0.05);
  // The first step creates Adam's moment variables; the loop after it must not add tensors.
  const first = trainStep(lae, optimizer, centred).loss;
  let last = first;
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 600; i++) {
      last = trainStep(lae, optimizer, centred).loss;
    }
  });
  // The optimum leaves the variance of the dropped directions: 0.09 + 0.04 + 0.01.
  assert(last < first / 5, `loss ${first} -> ${last}`);
  assertAllClose(last, 0.14, { rtol: 0.15 });
  const angles = principalAngles(lae.basis(), components);
  assert(
    Math.max(...angles) < 0.02,
    `principal angles ${angles.map((a) => a * 180 / Math.PI)} deg`,
  );
  assertThrows(
    () => trainStep(lae, optimizer, tf.zeros([3, 5]) as tf.Tensor2D),
    ArgumentError,
    "LinearAutoencoder.loss",
    "centred",
  );
  lae.dispose();
  optimizer.dispose();
  centred.dispose();
  assertThrows(() => new LinearAutoencoder(3, 4), ArgumentError, "k");
});

Deno.test("LinearAutoencoder rejects an empty batch, a learningRate and unknown options (issue 18)", async () => {
  const lae = new LinearAutoencoder(4, 2);
  const optimizer = adam(0.01);
  const empty = tf.zeros([0, 4]) as tf.Tensor2D;
  // A mean over zero rows: wasm used to return uninitialised memory as the loss.
  await assertNoTensorLeak(() =>
    assertThrows(
      () => trainStep(lae, optimizer, empty),
      ArgumentError,
      "LinearAutoencoder.loss",
      "at least one row",
    )
  );
  await assertNoTensorLeak(() =>
    assertThrows(
      () => new LinearAutoencoder(4, 2, { learningRate: 0.1 } as never),
      ArgumentError,
      "adam(",
    )
  );
  assertThrows(
    () => new LinearAutoencoder(4, 2, { sead: 1 } as never),
    ArgumentError,
    "LinearAutoencoder",
    'did you mean "seed"',
  );
  assertThrows(
    () => new LinearAutoencoder(4, 2, null as never),
    ArgumentError,
    "options must be an object",
  );
  tf.dispose([empty]);
  lae.dispose();
  optimizer.dispose();
});

// ---------------------------------------------------------------------------
// Image autoencoders

function fakeImages(n: number, seed: number): tf.Tensor4D {
  // Smooth blobs so that a small model can learn something in a few steps.
  return tf.tidy(() => {
    const rng = new Rng(seed);
    const values = new Float32Array(n * 784);
    for (let i = 0; i < n; i++) {
      const cx = 8 + 12 * rng.uniform();
      const cy = 8 + 12 * rng.uniform();
      for (let y = 0; y < 28; y++) {
        for (let x = 0; x < 28; x++) {
          values[i * 784 + y * 28 + x] = Math.exp(
            -((x - cx) ** 2 + (y - cy) ** 2) / 20,
          );
        }
      }
    }
    return tf.tensor4d(values, [n, 28, 28, 1]);
  });
}

Deno.test("Autoencoder and GaussianVAE train with trainStep (loss falls), are seeded and do not leak", async () => {
  const x = fakeImages(64, 1);
  for (
    const make of [
      () => new Autoencoder({ latentDim: 2, hidden: 32, seed: 1 }),
      () => new GaussianVAE({ latentDim: 2, hidden: 32, seed: 1 }),
    ]
  ) {
    const a = make();
    const b = make();
    const [optA, optB] = [adam(3e-3), adam(3e-3)];
    const first = trainStep(a, optA, x);
    assertEquals(trainStep(b, optB, x), first, "same seed, same step");
    let last = first;
    await assertNoTensorLeak(() => {
      for (let i = 0; i < 60; i++) last = trainStep(a, optA, x);
    });
    assert(last.mse < first.mse * 0.7, `mse ${first.mse} -> ${last.mse}`);
    const ev = await assertNoTensorLeak(() => a.evaluate(x, { batchSize: 20 }));
    assert(Number.isFinite(ev.mse) && ev.mse > 0);
    const r = a.reconstruct(x);
    assertEquals(r.shape, [64, 28, 28, 1]);
    const flat = a.reconstruct(x.reshape([64, 784]));
    assertEquals(flat.shape, [64, 784]);
    assertAllClose(flat, r.reshape([64, 784]), { atol: 1e-6 });
    // evaluate's mse is the mean squared error of reconstruct.
    assertAllClose(
      ev.mse,
      tf.tidy(() => r.sub(x).square().mean().dataSync()[0]),
      { rtol: 1e-4 },
    );
    const z = a.embed(x);
    assertEquals(z.shape, [64, 2]);
    assertEquals(a.decode(z).shape, [64, 28, 28, 1]);
    tf.dispose([r, flat, z]);
    a.dispose();
    b.dispose();
    optA.dispose();
    optB.dispose();
    assertThrows(() => trainStep(a, optA, x), ArgumentError, "disposed");
  }
  x.dispose();
});

Deno.test("trainStep on an image model takes the same Adam step as minimising its loss directly", () => {
  const x = fakeImages(16, 5);
  for (
    const make of [
      () => new Autoencoder({ latentDim: 3, hidden: 16, seed: 4 }),
      () => new GaussianVAE({ latentDim: 3, hidden: 16, seed: 4 }),
    ]
  ) {
    const shared = make();
    const direct = make();
    const [o1, o2] = [adam(1e-2), adam(1e-2)];
    for (let i = 0; i < 3; i++) {
      trainStep(shared, o1, x);
      // What the models' own trainStep did before the shared contract.
      tf.tidy(() => {
        o2.minimize(
          () => direct.loss(x).total,
          false,
          trainableVariables(direct.encoder, direct.decoder),
        );
      });
    }
    const weights = (m: Autoencoder | GaussianVAE) =>
      m.trainableVariables().map((v) => Array.from(v.dataSync()));
    assertAllClose(weights(shared).flat(), weights(direct).flat(), {
      atol: 1e-7,
      rtol: 0,
    });
    [shared, direct, o1, o2].forEach((d) => d.dispose());
  }
  x.dispose();
});

Deno.test("GaussianVAE reports rate = KL of its encoder, lambda = 2 c beta, and samples from the prior", () => {
  const x = fakeImages(32, 2);
  const vae = new GaussianVAE({
    latentDim: 3,
    hidden: 16,
    beta: 4,
    decoderVariance: 0.05,
  });
  assertAllClose(vae.lambda, 0.4);
  const ev = vae.evaluate(x);
  const { mu, logVar } = vae.encode(x);
  const kl = tf.tidy(() => gaussianKL(mu, logVar).mean().dataSync()[0]);
  assertAllClose(ev.rate, kl, { rtol: 1e-4 });
  assertAllClose(ev.rateByDim.reduce((a, b) => a + b, 0), ev.rate, {
    rtol: 1e-6,
  });
  assertEquals(ev.rateByDim.length, 3);
  // The loss is the squared error per image plus lambda times the rate.
  const optimizer = adam(1e-3);
  const step = trainStep(vae, optimizer, x);
  assertEquals(Object.keys(step).sort(), ["loss", "mse", "rate"]);
  assertAllClose(step.loss, step.mse * 784 + 0.4 * step.rate, { rtol: 1e-4 });
  // The KL term is the encoder's KL before the step (the step moved the weights after).
  assertAllClose(step.rate, kl, { rtol: 1e-4 });
  const s = vae.sample(5, { seed: 1 });
  assertEquals(s.shape, [5, 28, 28, 1]);
  const range = tf.tidy(() => [s.min().dataSync()[0], s.max().dataSync()[0]]);
  assert(
    range[0] >= 0 && range[1] <= 1,
    "sigmoid decoder outputs pixels in [0, 1]",
  );
  assertAllClose(vae.sample(5, { seed: 1 }), s);
  // Without a seed, sampling advances the shared stream.
  const [u, v] = [vae.sample(2), vae.sample(2)];
  assertNotEquals(Array.from(u.dataSync()), Array.from(v.dataSync()));
  tf.dispose([mu, logVar, s, u, v]);
  vae.dispose();
  optimizer.dispose();
  x.dispose();
});

Deno.test("a denoising batch { input, target } encodes the input and measures the error against the target", () => {
  const x = fakeImages(8, 3);
  const noisy = addNoise(x, 0.3, { seed: 1 });
  const ae = new Autoencoder({ latentDim: 2, hidden: 8, seed: 1 });
  tf.tidy(() => {
    const clean = ae.loss(x);
    assertAllClose(ae.loss({ input: x, target: x }).total, clean.total);
    const denoise = ae.loss({ input: noisy, target: x }).total;
    const byHand = ae.reconstruct(noisy).sub(x).square().sum([1, 2, 3]).mean();
    assertAllClose(denoise, byHand, { rtol: 1e-5 });
  });
  assertThrows(
    () => ae.loss({ input: noisy, target: x.slice(0, 4) }),
    ArgumentError,
    "Autoencoder.loss",
    "batch.target",
  );
  assertThrows(
    () => ae.loss({ input: noisy, clean: x } as never),
    ArgumentError,
    "unknown option",
    "clean",
  );
  tf.dispose([x, noisy]);
  ae.dispose();
});

Deno.test("image models reject bad arguments with clear errors and build nothing first (issue 18)", async () => {
  // The networks (and, before, Adam) used to be built before beta was checked: 10 tensors leaked.
  await assertNoTensorLeak(() => {
    assertThrows(
      () => new GaussianVAE({ beta: -1 }),
      ArgumentError,
      "GaussianVAE",
      "beta",
    );
    assertThrows(
      () => new GaussianVAE({ decoderVariance: 0 }),
      ArgumentError,
      "decoderVariance",
    );
    assertThrows(
      () => new Autoencoder({ latentDim: 0 }),
      ArgumentError,
      "latentDim",
    );
    assertThrows(
      () => new GaussianVAE({ latentDims: 2 } as never),
      ArgumentError,
      "GaussianVAE",
      'did you mean "latentDim"',
    );
    assertThrows(
      () => new Autoencoder(null as never),
      ArgumentError,
      "Autoencoder",
      "options must be an object",
    );
    assertThrows(
      () => new GaussianVAE({ learningRate: 1e-3 } as never),
      ArgumentError,
      "adam(1e-3)",
    );
  });
  const ae = new Autoencoder({ latentDim: 2, hidden: 8 });
  const optimizer = adam(1e-3);
  const bad = tf.zeros([4, 28, 28]);
  const empty = tf.zeros([0, 784]);
  const nan = tf.fill([2, 784], NaN);
  await assertNoTensorLeak(() => {
    assertThrows(
      () => trainStep(ae, optimizer, bad),
      ArgumentError,
      "Autoencoder.loss",
      "[n, 28, 28, 1]",
    );
    assertThrows(
      () => trainStep(ae, optimizer, empty),
      ArgumentError,
      "Autoencoder.loss",
      "non-empty",
    );
    assertThrows(() => trainStep(ae, optimizer, nan), ArgumentError, "finite");
  });
  assertThrows(() => ae.reconstruct(nan), ArgumentError, "finite");
  assertThrows(() => ae.decode(tf.zeros([3, 5])), ArgumentError, "z", "shape");
  const nanZ = tf.fill([1, 2], NaN);
  assertThrows(() => ae.decode(nanZ), ArgumentError, "z", "finite");
  assertThrows(
    () => ae.evaluate(empty, { batchsize: 10 } as never),
    ArgumentError,
    "Autoencoder.evaluate",
    'did you mean "batchSize"',
  );
  const vae = new GaussianVAE({ latentDim: 2, hidden: 8 });
  assertThrows(
    () => vae.sample(2, { sed: 1 } as never),
    ArgumentError,
    "GaussianVAE.sample",
    "seed",
  );
  tf.dispose([bad, empty, nan, nanZ]);
  [ae, vae, optimizer].forEach((d) => d.dispose());
});

Deno.test("addNoise clips to [0, 1] and is seeded", () => {
  const x = fakeImages(16, 3);
  const noisy = addNoise(x, 0.5, { seed: 1 });
  const [lo, hi] = tf.tidy(
    () => [noisy.min().dataSync()[0], noisy.max().dataSync()[0]],
  );
  assert(lo >= 0 && hi <= 1);
  assertAllClose(addNoise(x, 0.5, { seed: 1 }), noisy);
  const noiseSize = tf.tidy(() => noisy.sub(x).square().mean().dataSync()[0]);
  assert(
    noiseSize > 0.05,
    `noise of std 0.5 gave a mean square of ${noiseSize}`,
  );
  assertThrows(() => addNoise(x, -0.1), ArgumentError, "addNoise", "std");
  assertThrows(
    () => addNoise(x, 0.1, { seeds: 1 } as never),
    ArgumentError,
    'did you mean "seed"',
  );
  tf.dispose([x, noisy]);
});

// ---------------------------------------------------------------------------
// Gradient estimators

Deno.test("reparameterized and score-function estimators are unbiased; the reparameterized one has far less variance", () => {
  // E (z - a)^2 = (mu - a)^2 + sigma^2: d/dmu = 2 (mu - a), d/dlog sigma = 2 sigma^2.
  const a = 2;
  const objective = {
    f: (z: number) => (z - a) ** 2,
    df: (z: number) => 2 * (z - a),
  };
  const mu = 0.5;
  const logSigma = Math.log(0.8);
  const exact = { dMu: 2 * (mu - a), dLogSigma: 2 * 0.64 };
  const opts = { mu, logSigma, trials: 20000, seed: 3 };
  const rep = gaussianGradientEstimates("reparameterization", objective, opts);
  const sf = gaussianGradientEstimates("score-function", objective, opts);
  const sfb = gaussianGradientEstimates(
    "score-function-baseline",
    objective,
    opts,
  );
  for (
    const [name, est] of [["reparam", rep], ["score", sf], [
      "baseline",
      sfb,
    ]] as const
  ) {
    const se = Math.sqrt(est.variance.dMu / 20000);
    assert(
      Math.abs(est.mean.dMu - exact.dMu) < 4 * se + 1e-9,
      `${name} dMu ${est.mean.dMu}`,
    );
    const seS = Math.sqrt(est.variance.dLogSigma / 20000);
    assert(
      Math.abs(est.mean.dLogSigma - exact.dLogSigma) < 4 * seS + 1e-9,
      `${name} dLogSigma ${est.mean.dLogSigma}`,
    );
  }
  // Closed form: Var of 2(mu - a + sigma eps) is 4 sigma^2.
  assertAllClose(rep.variance.dMu, 4 * 0.64, { rtol: 0.05 });
  assert(
    sf.variance.dMu > 5 * rep.variance.dMu,
    `score ${sf.variance.dMu} vs reparam ${rep.variance.dMu}`,
  );
  assert(sfb.variance.dMu < sf.variance.dMu, "a baseline reduces the variance");
  // Closed forms from the normal moments (b = mu - a): score function
  // (b^4 + 18 b^2 s^2 + 15 s^4) / s^2 - 4 b^2; with baseline f(mu): 8 b^2 + 15 s^2.
  const b = mu - a;
  const s2 = 0.64;
  assertAllClose(
    sf.variance.dMu,
    (b ** 4 + 18 * b * b * s2 + 15 * s2 * s2) / s2 - 4 * b * b,
    {
      rtol: 0.15,
    },
  );
  assertAllClose(sfb.variance.dMu, 8 * b * b + 15 * s2, { rtol: 0.15 });
  // Averaging S samples divides the variance by S.
  const rep10 = gaussianGradientEstimates("reparameterization", objective, {
    ...opts,
    samples: 10,
  });
  assertAllClose(rep10.variance.dMu, rep.variance.dMu / 10, { rtol: 0.1 });
  assertThrows(
    () => gaussianGradientEstimates("magic" as never, objective, opts),
    ArgumentError,
    "estimator",
  );
  assertThrows(
    () =>
      gaussianGradientEstimates("score-function", objective, {
        ...opts,
        trials: 1,
      }),
    ArgumentError,
    "trials",
  );
});

// ---------------------------------------------------------------------------
// Notebook 02's helpers (lib/course/02_gaussian_vae): the issue-18 faults only

Deno.test("codeVariance: known values; an empty batch is an ArgumentError, not uninitialised memory", async () => {
  const codes = tf.tensor2d([[0, 1], [2, 1], [4, 1]]);
  assertAllClose(codeVariance(codes), [8 / 3, 0], { atol: 1e-6 });
  const empty = tf.zeros([0, 2]) as tf.Tensor2D;
  await assertNoTensorLeak(() =>
    assertThrows(
      () => codeVariance(empty),
      ArgumentError,
      "codeVariance",
      "at least one row",
    )
  );
  tf.dispose([codes, empty]);
});

Deno.test("compareGradientEstimators names itself in its errors", () => {
  const toy = { f: (z: number) => z * z, df: (z: number) => 2 * z };
  assertThrows(
    () =>
      compareGradientEstimators(
        toy,
        { mu: 0, logSigma: 0, trails: 10 } as never,
      ),
    ArgumentError,
    "compareGradientEstimators:",
    'did you mean "trials"',
  );
});
