import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import {
  addNoise,
  Autoencoder,
  betaSweep,
  betaSweepTable,
  centreRows,
  codeVariance,
  compareGradientEstimators,
  denoisingError,
  downsampleImages,
  endlessImageBatches,
  gaussianGradientEstimates,
  gaussianKL,
  GaussianVAE,
  GRADIENT_ESTIMATORS,
  gradientVarianceBySamples,
  interpolateCodes,
  LinearAutoencoder,
  pca,
  pcaResidualVariance,
  principalAngles,
  reconstructionMSE,
  reparameterize,
  symmetricEigen,
} from "../lib/vae.ts";
import { randomNormal, Rng } from "../lib/random.ts";
import { batches } from "../lib/data.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertGradientMatches,
  assertNoTensorLeak,
  assertRejects,
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

Deno.test("symmetricEigen recovers a known spectrum and A v = lambda v", () => {
  const d = 6;
  const q = rotation(d, 5);
  const lambdas = [7, 3.5, 2, 1, -0.5, -4];
  // A = sum_i lambda_i q_i q_i^T
  const a = Array.from(
    { length: d },
    (_, r) =>
      Array.from(
        { length: d },
        (_, c) => lambdas.reduce((s, l, i) => s + l * q[i][r] * q[i][c], 0),
      ),
  );
  const { values, vectors } = symmetricEigen(a);
  assertAllClose(values, lambdas, { atol: 1e-10 });
  for (let i = 0; i < d; i++) {
    const av = a.map((row) =>
      row.reduce((s, x, j) => s + x * vectors[i][j], 0)
    );
    assertAllClose(av, vectors[i].map((x) => x * values[i]), { atol: 1e-10 });
    // Same direction as the planted eigenvector, up to sign.
    const dot = vectors[i].reduce((s, x, j) => s + x * q[i][j], 0);
    assertAllClose(Math.abs(dot), 1, { atol: 1e-10 });
  }
  assertThrows(
    () => symmetricEigen([[1, 2], [0, 1]]),
    ArgumentError,
    "symmetric",
  );
  assertThrows(
    () => symmetricEigen([[1, 2, 3], [2, 1]]),
    ArgumentError,
    "square",
  );
  assertThrows(() => symmetricEigen([[NaN]]), ArgumentError, "finite");
});

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

Deno.test("a trained linear autoencoder spans the top principal subspace (angles near 0)", async () => {
  const q = rotation(6, 2);
  const data = plantedData(1000, q, [3, 2, 1.5, 0.3, 0.2, 0.1], 4);
  const { components, mean } = pca(data, 3);
  const centred = tf.tensor2d(data.map((r) => r.map((v, j) => v - mean[j])));
  const lae = new LinearAutoencoder(6, 3, { learningRate: 0.05, seed: 1 });
  // The first step creates Adam's moment variables; the loop after it must not add tensors.
  const first = lae.trainStep(centred);
  let last = first;
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 600; i++) last = lae.trainStep(centred);
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
    () => lae.trainStep(tf.zeros([3, 5]) as tf.Tensor2D),
    ArgumentError,
    "centred",
  );
  lae.dispose();
  centred.dispose();
  assertThrows(() => new LinearAutoencoder(3, 4), ArgumentError, "k");
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

Deno.test("Autoencoder and GaussianVAE train (loss falls), are seeded and do not leak", async () => {
  const x = fakeImages(64, 1);
  for (
    const make of [
      () =>
        new Autoencoder({
          latentDim: 2,
          hidden: 32,
          learningRate: 3e-3,
          seed: 1,
        }),
      () =>
        new GaussianVAE({
          latentDim: 2,
          hidden: 32,
          learningRate: 3e-3,
          seed: 1,
        }),
    ]
  ) {
    const a = make();
    const b = make();
    const first = a.trainStep(x);
    assertEquals(b.trainStep(x), first, "same seed, same step");
    let last = first;
    await assertNoTensorLeak(() => {
      for (let i = 0; i < 60; i++) last = a.trainStep(x);
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
    assertThrows(() => a.trainStep(x), ArgumentError, "disposed");
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
  const step = vae.trainStep(x);
  assertAllClose(step.loss, step.mse * 784 + 0.4 * step.rate, { rtol: 1e-4 });
  const s = vae.sample(5, { seed: 1 });
  assertEquals(s.shape, [5, 28, 28, 1]);
  const range = tf.tidy(() => [s.min().dataSync()[0], s.max().dataSync()[0]]);
  assert(
    range[0] >= 0 && range[1] <= 1,
    "sigmoid decoder outputs pixels in [0, 1]",
  );
  tf.dispose([mu, logVar, s]);
  vae.dispose();
  x.dispose();
});

Deno.test("image models reject bad arguments with clear errors", () => {
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
  const ae = new Autoencoder({ latentDim: 2, hidden: 8 });
  const bad = tf.zeros([4, 28, 28]);
  const nan = tf.fill([2, 784], NaN);
  assertThrows(
    () => ae.trainStep(bad),
    ArgumentError,
    "Autoencoder.trainStep",
    "[n, 28, 28, 1]",
  );
  assertThrows(() => ae.reconstruct(nan), ArgumentError, "finite");
  assertThrows(() => ae.decode(tf.zeros([3, 5])), ArgumentError, "z", "shape");
  const nanZ = tf.fill([1, 2], NaN);
  assertThrows(() => ae.decode(nanZ), ArgumentError, "z", "finite");
  nanZ.dispose();
  assertThrows(
    () => ae.trainStep(tf.zeros([2, 784]), { noiseStd: -1 }),
    ArgumentError,
    "noiseStd",
  );
  tf.dispose([bad, nan]);
  ae.dispose();
});

Deno.test("addNoise clips to [0, 1]; denoisingError at noise 0 equals the reconstruction error", () => {
  const x = fakeImages(16, 3);
  const noisy = addNoise(x, 0.5, { seed: 1 });
  const [lo, hi] = tf.tidy(
    () => [noisy.min().dataSync()[0], noisy.max().dataSync()[0]],
  );
  assert(lo >= 0 && hi <= 1);
  assertAllClose(addNoise(x, 0.5, { seed: 1 }), noisy);
  const ae = new Autoencoder({ latentDim: 2, hidden: 8 });
  const clean = denoisingError(ae, x, 0);
  assertAllClose(clean.mse, ae.evaluate(x).mse, { rtol: 1e-4 });
  assertEquals(clean.noisyMse, 0);
  const loud = denoisingError(ae, x, 0.5, { seed: 2 });
  assert(loud.noisyMse > 0.05, `noisy input error ${loud.noisyMse}`);
  assertThrows(
    () => denoisingError({} as never, x, 0.1),
    ArgumentError,
    "reconstruct",
  );
  assertThrows(() => addNoise(x, -0.1), ArgumentError, "std");
  tf.dispose([x, noisy]);
  ae.dispose();
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
// Notebook 02 helpers

Deno.test("downsampleImages averages 2x2 blocks and flattens; centreRows subtracts the mean", async () => {
  // Image k has the constant value k in every pixel but (0, 0) = k + 4.
  const imgs = tf.tidy(() =>
    tf.stack([0, 1, 2].map((k) =>
      tf.fill([4, 4, 1], k).add(
        tf.tensor3d([[[4], [0], [0], [0]], [[0], [0], [0], [0]], [
          [0],
          [0],
          [0],
          [0],
        ], [[0], [0], [0], [0]]]),
      )
    ))
  );
  const small = await assertNoTensorLeak(
    () => downsampleImages(imgs, { count: 2 }),
    { allowed: 1 },
  );
  assertEquals(small.shape, [2, 4]);
  assertAllClose(small, [[1, 0, 0, 0], [2, 1, 1, 1]]);
  const centred = centreRows(small, [1.5, 0.5, 0.5, 0.5]);
  assertAllClose(centred, [[-0.5, -0.5, -0.5, -0.5], [0.5, 0.5, 0.5, 0.5]]);
  assertEquals(downsampleImages(imgs).shape, [3, 4]);
  assertThrows(
    () => downsampleImages(imgs, { count: 4 }),
    ArgumentError,
    "count",
  );
  assertThrows(
    () => downsampleImages(tf.zeros([1, 3, 4, 1])),
    ArgumentError,
    "even",
  );
  assertThrows(() => centreRows(small, [1, 2]), ArgumentError, "mean");
  tf.dispose([imgs, small, centred]);
});

Deno.test("pcaResidualVariance is the sum of the dropped eigenvalues (the rank-k optimum)", () => {
  const result = pca(
    [[2, 0, 0], [-2, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 0.5], [0, 0, -0.5]],
    1,
  );
  // Covariance diag(8, 2, 0.5) / 5: drop the last two.
  assertAllClose(pcaResidualVariance(result), (2 + 0.5) / 5, { atol: 1e-6 });
  assertAllClose(
    pcaResidualVariance({ ...result, components: [] }),
    (8 + 2 + 0.5) / 5,
    { atol: 1e-6 },
  );
  assertThrows(
    () => pcaResidualVariance({} as never),
    ArgumentError,
    "pcaResidualVariance",
  );
});

Deno.test("compareGradientEstimators and gradientVarianceBySamples match gaussianGradientEstimates; variance falls like 1/S", () => {
  const toy = {
    f: (z: number) => (z - 2) ** 2,
    df: (z: number) => 2 * (z - 2),
  };
  const at = { mu: 0.5, logSigma: Math.log(0.8), trials: 2000, seed: 1 };
  const all = compareGradientEstimators(toy, at);
  assertEquals(Object.keys(all), [...GRADIENT_ESTIMATORS]);
  for (const e of GRADIENT_ESTIMATORS) {
    assertEquals(all[e].dMu, gaussianGradientEstimates(e, toy, at).dMu);
  }
  const counts = [1, 16];
  const bySamples = gradientVarianceBySamples(toy, at, counts);
  for (const e of GRADIENT_ESTIMATORS) {
    assertEquals(
      bySamples[e][1],
      gaussianGradientEstimates(e, toy, { ...at, samples: 16 }).variance.dMu,
    );
    const ratio = bySamples[e][0] / bySamples[e][1];
    assert(ratio > 10 && ratio < 24, `${e}: variance ratio ${ratio}, want ~16`);
  }
  // Reparameterized: f'(z) = 2(z - 2), variance 4 sigma^2 per sample.
  assertAllClose(bySamples.reparameterization[0], 4 * 0.64, { rtol: 0.1 });
  assertThrows(
    () => gradientVarianceBySamples(toy, at, []),
    ArgumentError,
    "sampleCounts",
  );
});

Deno.test("endlessImageBatches walks seeded epochs (seed + e), keeping the short last batch", async () => {
  const images = tf.range(0, 10).reshape([10, 1]);
  const stream = endlessImageBatches(images, 4, { seed: 3 });
  const expected = [
    ...batches(10, 4, { seed: 3 }),
    ...batches(10, 4, { seed: 4 }),
  ].map((b) => Array.from(b));
  const got: number[][] = [];
  await assertNoTensorLeak(() => {
    for (let i = 0; i < expected.length; i++) {
      const b = stream.next();
      got.push(Array.from(b.dataSync()));
      b.dispose();
    }
  });
  assertEquals(got, expected);
  assertEquals(got.map((b) => b.length), [4, 4, 2, 4, 4, 2]);
  assertThrows(
    () => endlessImageBatches(images, 0),
    ArgumentError,
    "batchSize",
  );
  assertThrows(
    () => endlessImageBatches(tf.zeros([0, 2]), 1),
    ArgumentError,
    "empty",
  );
  images.dispose();
});

Deno.test("codeVariance and interpolateCodes: known values, endpoints and midpoint", async () => {
  const codes = tf.tensor2d([[0, 1], [2, 1], [4, 1]]);
  assertAllClose(codeVariance(codes), [8 / 3, 0], { atol: 1e-6 });
  const path = await assertNoTensorLeak(
    () => interpolateCodes(codes, 0, 2, { steps: 5 }),
    { allowed: 1 },
  );
  assertEquals(path.shape, [5, 2]);
  assertAllClose(path, [[0, 1], [1, 1], [2, 1], [3, 1], [4, 1]], {
    atol: 1e-6,
  });
  assertEquals(interpolateCodes(codes, 1, 0).shape, [10, 2]);
  assertThrows(() => interpolateCodes(codes, 0, 3), ArgumentError, "j");
  assertThrows(
    () => interpolateCodes(codes, 0, 1, { steps: 1 }),
    ArgumentError,
    "steps",
  );
  tf.dispose([codes, path]);
});

Deno.test("reconstructionMSE and betaSweep evaluate models in order; the sweep disposes its models", async () => {
  const images = randomNormal([16, 784], { seed: 4 }).sigmoid();
  const ae = new Autoencoder({ latentDim: 2, hidden: 8, seed: 1 });
  const mse = reconstructionMSE({ a: ae, b: ae }, images);
  assertEquals(Object.keys(mse), ["a", "b"]);
  assertEquals(mse.a, ae.evaluate(images).mse);
  assertThrows(
    () => reconstructionMSE({ bad: {} as never }, images),
    ArgumentError,
    "bad",
  );
  ae.dispose();
  const fitted: number[] = [];
  const before = tf.memory().numTensors;
  const sweep = await betaSweep([0.5, 2], {
    fit: (model, beta) => {
      fitted.push(beta);
      model.trainStep(images);
      return Promise.resolve();
    },
    images,
    latentDim: 3,
    reconstruct: images.slice(0, 2),
  });
  assertEquals(fitted, [0.5, 2]);
  assertEquals(sweep.map((p) => p.beta), [0.5, 2]);
  for (const p of sweep) {
    assertEquals(p.rateByDim.length, 3);
    assertAllClose(p.rate, p.rateByDim.reduce((a, b) => a + b, 0), {
      rtol: 1e-4,
    });
    assertEquals(p.reconstruction!.shape, [2, 784]);
  }
  // The same seed and beta give the same model: the result is reproducible.
  const again = await betaSweep([0.5], {
    fit: (model) => Promise.resolve(model.trainStep(images)),
    images,
    latentDim: 3,
  });
  assertEquals(again[0].mse, sweep[0].mse);
  assertEquals(again[0].reconstruction, undefined);
  tf.dispose(sweep.map((p) => p.reconstruction!));
  // The models are gone; the slice of `images` given to reconstruct is the only new tensor.
  assertEquals(tf.memory().numTensors - before, 1);
  assertEquals(
    betaSweepTable(sweep)[0]["rate (nats)"],
    sweep[0].rate.toFixed(2),
  );
  await assertRejects(
    () => betaSweep([], { fit: () => Promise.resolve(), images }),
    ArgumentError,
    "betas",
  );
  await assertRejects(
    () => betaSweep([1], { images } as never),
    ArgumentError,
    "fit",
  );
  images.dispose();
});
