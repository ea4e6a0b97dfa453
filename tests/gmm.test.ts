import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { ArgumentError } from "../lib/validate.ts";
import { makeBlobs } from "../lib/datasets2d.ts";
import { Rng } from "../lib/random.ts";
import { kmeans } from "../lib/vq.ts";
import {
  disposeGMM,
  fitGMM,
  type FitGMMOptions,
  type GMM,
  gmmLogLikelihood,
  responsibilities,
  sampleGMM,
} from "../lib/gmm.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

function blobs(seed = 3) {
  return makeBlobs(600, {
    centers: [[-4, 0], [0, 4], [4, -1]],
    std: 0.8,
    seed,
  });
}

/** ln p(x) of a diagonal GMM, term by term in float64. */
function logDensity(
  x: number[],
  mu: number[][],
  v: number[][],
  w: number[],
): number {
  const terms = mu.map((m, k) => {
    let s = Math.log(w[k]);
    for (let j = 0; j < x.length; j++) {
      s -= 0.5 *
        (Math.log(2 * Math.PI * v[k][j]) + (x[j] - m[j]) ** 2 / v[k][j]);
    }
    return s;
  });
  const top = Math.max(...terms);
  return top + Math.log(terms.reduce((a, t) => a + Math.exp(t - top), 0));
}

Deno.test("gmmLogLikelihood and responsibilities match a float64 loop", () => {
  const rng = new Rng(1);
  const x = Array.from({ length: 20 }, () => [rng.normal() * 2, rng.normal()]);
  const mu = [[0, 0], [2, 1], [-1, 3]];
  const v = [[1, 0.5], [0.3, 2], [1.5, 1.5]];
  const w = [0.5, 0.2, 0.3];
  const model: GMM = {
    means: tf.tensor2d(mu),
    variances: tf.tensor2d(v),
    weights: tf.tensor1d(w),
  };
  const want = x.map((p) => logDensity(p, mu, v, w));
  assertAllClose(
    gmmLogLikelihood(model, x),
    want.reduce((a, b) => a + b) / x.length,
    { rtol: 1e-5 },
  );
  const r = responsibilities(model, x);
  const single = (k: number) => (p: number[]) =>
    logDensity(p, [mu[k]], [v[k]], [w[k]]);
  const expected = x.map((p, i) =>
    [0, 1, 2].map((k) => Math.exp(single(k)(p) - want[i]))
  );
  assertAllClose(r, expected, { atol: 1e-5 });
  r.dispose();
  disposeGMM(model);
});

Deno.test("fitGMM log-likelihood history never decreases", () => {
  const { points, labels } = blobs();
  for (const covariance of ["identity", "spherical", "diagonal"] as const) {
    for (const uniformPrior of [false, true]) {
      const fit = fitGMM(points, 3, {
        covariance,
        uniformPrior,
        seed: 2,
        tol: 1e-6,
      });
      const h = fit.history;
      assert(h.length >= 2, "EM ran");
      for (let t = 1; t < h.length; t++) {
        assert(
          h[t] >= h[t - 1] - 1e-5,
          `${covariance}/${uniformPrior}: fell at ${t}: ${h[t - 1]} -> ${h[t]}`,
        );
      }
      assertEquals(fit.logLikelihood, h.at(-1));
      assertAllClose(fit.logLikelihood, gmmLogLikelihood(fit, points), {
        rtol: 1e-6,
      });
      assertAllClose(fit.weights.sum(), 1, { atol: 1e-5 });
      if (uniformPrior) assertAllClose(fit.weights, 1 / 3, { atol: 1e-7 });
      if (covariance === "identity") {
        assertAllClose(fit.variances, 1, { atol: 0 });
      }
      if (covariance === "spherical") {
        const v = fit.variances.arraySync();
        v.forEach((row) => assertAllClose(row, row[0], { rtol: 1e-6 }));
      }
      disposeGMM(fit);
    }
  }
  tf.dispose([points, labels]);
});

Deno.test("diagonal GMM recovers the generating blobs", () => {
  const { points, labels } = blobs(9);
  const fit = fitGMM(points, 3, { seed: 0 });
  const mu = fit.means.arraySync();
  for (const c of [[-4, 0], [0, 4], [4, -1]]) {
    const d = Math.min(...mu.map((m) => Math.hypot(m[0] - c[0], m[1] - c[1])));
    assert(d < 0.2, `mean ${c} found within ${d}`);
  }
  // Each fitted variance is close to 0.8^2 = 0.64 (600 points per 3 blobs).
  assertAllClose(fit.variances, 0.64, { rtol: 0.2 });
  assertAllClose(fit.weights, 1 / 3, { atol: 0.02 });
  disposeGMM(fit);
  tf.dispose([points, labels]);
});

Deno.test("identity covariance + uniform prior: most probable component = nearest mean", () => {
  const { points, labels } = blobs(4);
  const fit = fitGMM(points, 3, {
    covariance: "identity",
    uniformPrior: true,
    seed: 1,
  });
  const r = responsibilities(fit, points);
  const byGMM = Array.from(r.argMax(1).dataSync());
  const means = fit.means.arraySync();
  const xs = points.arraySync();
  const nearest = xs.map((x) => {
    const d = means.map((m) => (x[0] - m[0]) ** 2 + (x[1] - m[1]) ** 2);
    return d.indexOf(Math.min(...d));
  });
  assertEquals(byGMM, nearest);
  tf.dispose([r, points, labels]);
  disposeGMM(fit);
});

Deno.test("hard EM with identity covariance and uniform prior is k-means", () => {
  const { points, labels } = blobs(6);
  // Both start from the same k-means++ seeding; hard EM then runs Lloyd.
  const km = kmeans(points, 3, { seed: 5 });
  const hard = fitGMM(points, 3, {
    covariance: "identity",
    uniformPrior: true,
    hard: true,
    seed: 5,
    tol: 0,
    maxIter: 20,
  });
  const sortRows = (m: number[][]) => m.slice().sort((a, b) => a[0] - b[0]);
  assertAllClose(
    sortRows(hard.means.arraySync()),
    sortRows(km.centroids.arraySync()),
    {
      atol: 1e-4,
    },
  );
  // The hard-EM objective is -inertia/(2n) minus constants.
  const n = 600;
  const constant = -Math.log(3) - Math.log(2 * Math.PI);
  assertAllClose(hard.history.at(-1)!, -km.inertia / (2 * n) + constant, {
    rtol: 1e-5,
  });
  for (let t = 1; t < hard.history.length; t++) {
    assert(
      hard.history[t] >= hard.history[t - 1] - 1e-6,
      "hard EM objective non-decreasing",
    );
  }
  disposeGMM(hard);
  tf.dispose([km.centroids, km.assignments, points, labels]);
});

Deno.test("a one-component GMM is the Gaussian fit of the data", () => {
  const data = [[0, 1], [2, 1], [1, 4], [1, 2]];
  for (const hard of [false, true]) {
    const fit = fitGMM(data, 1, { hard });
    assertAllClose(fit.means, [[1, 2]], { atol: 1e-6 });
    // Maximum-likelihood (biased) variances, plus the 1e-6 floor.
    assertAllClose(fit.variances, [[0.5 + 1e-6, 1.5 + 1e-6]], { rtol: 1e-5 });
    const s = sampleGMM(fit, 3);
    assertEquals(Array.from(s.z.dataSync()), [0, 0, 0]);
    tf.dispose([s.samples, s.z]);
    disposeGMM(fit);
  }
});

Deno.test("sampleGMM moments match the model within sampling error", () => {
  const model: GMM = {
    means: tf.tensor2d([[-3, 1], [2, 2], [0, -4]]),
    variances: tf.tensor2d([[0.25, 1], [1, 4], [2, 0.5]]),
    weights: tf.tensor1d([0.2, 0.5, 0.3]),
  };
  const n = 20000;
  const { samples, z } = sampleGMM(model, n, { seed: 7 });
  assertEquals(samples.shape, [n, 2]);
  assertEquals(z.dtype, "int32");
  const zs = z.dataSync();
  const xs = samples.arraySync();
  const mu = model.means.arraySync();
  const v = model.variances.arraySync();
  const w = [0.2, 0.5, 0.3];
  for (let k = 0; k < 3; k++) {
    const rows = xs.filter((_, i) => zs[i] === k);
    const p = rows.length / n;
    // Frequency within 4 standard errors of the weight.
    assert(
      Math.abs(p - w[k]) < 4 * Math.sqrt(w[k] * (1 - w[k]) / n),
      `P(z=${k}) = ${p}`,
    );
    for (let j = 0; j < 2; j++) {
      const mean = rows.reduce((s, r) => s + r[j], 0) / rows.length;
      const variance = rows.reduce((s, r) => s + (r[j] - mean) ** 2, 0) /
        (rows.length - 1);
      const se = Math.sqrt(v[k][j] / rows.length);
      assert(
        Math.abs(mean - mu[k][j]) < 4 * se,
        `mean ${k},${j}: ${mean} vs ${mu[k][j]}`,
      );
      // The sample variance has standard error ~ v * sqrt(2 / m).
      assert(
        Math.abs(variance - v[k][j]) < 4 * v[k][j] * Math.sqrt(2 / rows.length),
        `variance ${k},${j}: ${variance} vs ${v[k][j]}`,
      );
    }
  }
  // Same seed, same samples.
  const once = sampleGMM(model, 50, { seed: 7 });
  const again = sampleGMM(model, 50, { seed: 7 });
  assertAllClose(again.samples, once.samples, { atol: 0, rtol: 0 });
  assertAllClose(again.z, once.z, { atol: 0, rtol: 0 });
  tf.dispose([samples, z, once.samples, once.z, again.samples, again.z]);
  disposeGMM(model);
});

Deno.test("fitGMM, responsibilities and sampleGMM do not leak", async () => {
  const { points, labels } = blobs();
  await assertNoTensorLeak(() => {
    for (const hard of [false, true]) {
      const fit = fitGMM(points, 3, { hard, maxIter: 5 });
      const r = responsibilities(fit, points);
      gmmLogLikelihood(fit, points);
      const s = sampleGMM(fit, 10);
      tf.dispose([r, s.samples, s.z]);
      disposeGMM(fit);
    }
  });
  tf.dispose([points, labels]);
});

Deno.test("GMM functions reject bad input with clear errors", () => {
  const rng = new Rng(2);
  const data = Array.from({ length: 10 }, () => [rng.normal(), rng.normal()]);
  assertThrows(
    () => fitGMM(data, 0),
    ArgumentError,
    "fitGMM",
    "k",
    "positive integer",
  );
  assertThrows(() => fitGMM(data, 11), ArgumentError, "fitGMM", "k", "10");
  assertThrows(
    () => fitGMM([[1, 1], [1, 1], [2, 2]], 3),
    ArgumentError,
    "fitGMM",
    "distinct",
  );
  assertThrows(
    () => fitGMM([[1, NaN], [0, 0]], 1),
    ArgumentError,
    "fitGMM",
    "finite",
  );
  assertThrows(
    () => fitGMM([[1, 2], [3]], 1),
    ArgumentError,
    "fitGMM",
    "rectangular",
  );
  assertThrows(
    () => fitGMM(data, 2, { covariance: "full" as "diagonal" }),
    ArgumentError,
    "covariance",
  );
  assertThrows(
    () => fitGMM(data, 2, { varianceFloor: 0 }),
    ArgumentError,
    "varianceFloor",
  );
  const model = fitGMM(data, 2);
  assertThrows(
    () => responsibilities(model, [[1, 2, 3]]),
    ArgumentError,
    "responsibilities",
    "width 2",
  );
  assertThrows(
    () => gmmLogLikelihood(model, [[1, Infinity]]),
    ArgumentError,
    "finite",
  );
  assertThrows(() => sampleGMM(model, 0), ArgumentError, "sampleGMM", "n");
  assertThrows(
    () => sampleGMM({ ...model, weights: tf.tensor1d([1, 1, 1]) }, 3),
    ArgumentError,
    "model.weights",
  );
  disposeGMM(model);
});

/** Well-separated blobs around `offset`, float32-rounded, with their labels. */
function offsetBlobs(offset: number, seed = 0) {
  const rng = new Rng(seed);
  const centres = [[0, 0, 0], [10, 0, 0], [0, 10, 0]];
  const spread = [1, 0.5, 0.1];
  const labels = Array.from({ length: 600 }, (_, i) => i % 3);
  const x = labels.map((z) =>
    centres[z].map((c, j) => Math.fround(offset + c + spread[j] * rng.normal()))
  );
  return { x, labels };
}

/** Per-cluster mean and (biased) variance in float64, the two-pass way. */
function clusterMoments(x: number[][], labels: number[], k: number) {
  return Array.from({ length: k }, (_, z) => {
    const rows = x.filter((_, i) => labels[i] === z);
    const mean = rows[0].map((_, j) =>
      rows.reduce((s, r) => s + r[j], 0) / rows.length
    );
    const variance = mean.map((m, j) =>
      rows.reduce((s, r) => s + (r[j] - m) ** 2, 0) / rows.length
    );
    return { mean, variance };
  });
}

Deno.test("M-step variances are centred: a mean of 1000 costs no digits (float64 two-pass within 8 float32 ulps)", () => {
  // On these data scikit-learn's GaussianMixture (float64, one pass) is
  // within 2.3e-7 of the float64 two-pass variances. fitGMM's float32
  // weighted sums are within 0.7 ulps of 2^-23 with OpenBLAS's Cooperlake
  // kernel, 2.0 with its Haswell kernel and 5.0 with the wasm matMul, at
  // either offset; the float32 one-pass E[x^2] - mu^2 was off by a factor
  // ~100 at offset 0, and at offset 1000 it would lose every digit of the
  // 0.01 variance (1000^2 eps = 0.06).
  for (const offset of [0, 1000]) {
    const { x, labels } = offsetBlobs(offset);
    const want = clusterMoments(x, labels, 3);
    for (const hard of [true, false]) {
      const fit = fitGMM(x, 3, { hard, seed: 0, tol: 0, maxIter: 5 });
      const means = fit.means.arraySync();
      const variances = fit.variances.arraySync();
      for (const { mean, variance } of want) {
        // The component that found this blob.
        const k = means.findIndex((m) =>
          m.every((v, j) => Math.abs(v - mean[j]) < 1)
        );
        assert(k >= 0, `blob at ${mean} found`);
        assertAllClose(means[k], mean, { atol: 4 * 2 ** -24 * (offset + 10) });
        assertAllClose(variances[k], variance.map((v) => v + 1e-6), {
          rtol: 8 * 2 ** -23,
          atol: 0,
        });
      }
      // The E-step is measured from the means' centre: the log-likelihood
      // of float64 to float32's rounding of terms up to ~10 (measured: 0.2e-6
      // to 2.3e-6 on the three matMul paths above). Uncentred, a mean near
      // 1000 carries an error of ulp(1000) = 6e-5 into (x - mu)^2 / 0.01:
      // ~5e-4 of the log-likelihood.
      const w = fit.weights.arraySync();
      const want64 = x.reduce((s, p) =>
        s + logDensity(p, means, variances, w), 0) /
        x.length;
      assertAllClose(gmmLogLikelihood(fit, x), want64, { rtol: 4e-6 });
      assertAllClose(fit.logLikelihood, want64, { rtol: 4e-6 });
      disposeGMM(fit);
    }
  }
});

Deno.test("fitGMM rejects data whose squares overflow float32", () => {
  const x = [[0, 1e20], [1, 2e20], [3, 0]];
  assertThrows(() => fitGMM(x, 1), ArgumentError, "fitGMM", "overflow");
});

Deno.test("sampleGMM rejects negative or non-finite variances and weights", () => {
  const model = (variances: number[][], weights = [0.5, 0.5]): GMM => ({
    means: tf.tensor2d([[0, 0], [1, 1]]),
    variances: tf.tensor2d(variances),
    weights: tf.tensor1d(weights),
  });
  const cases: [GMM, string][] = [
    [model([[1, 1], [-0.5, 1]]), "model.variances[1][0] is -0.5"],
    [model([[1, NaN], [1, 1]]), "model.variances[0][1] is NaN"],
    [model([[1, 1], [1, 1]], [0.5, -0.1]), "model.weights[1] is -0.1"],
    [model([[1, 1], [1, 1]], [0, 0]), "must not all be zero"],
  ];
  for (const [m, message] of cases) {
    const before = tf.memory().numTensors;
    assertThrows(
      () => sampleGMM(m, 5, { seed: 0 }),
      ArgumentError,
      "sampleGMM",
      message,
    );
    assertEquals(tf.memory().numTensors, before, message);
    disposeGMM(m);
  }
});

Deno.test("GMM options objects are checked: null, typos", () => {
  const data = [[0, 0], [1, 1], [2, 0], [5, 5]];
  assertThrows(
    () => fitGMM(data, 2, null as unknown as FitGMMOptions),
    ArgumentError,
    "fitGMM",
    "options",
  );
  assertThrows(
    () => fitGMM(data, 2, { covarianceType: "diagonal" } as FitGMMOptions),
    ArgumentError,
    "fitGMM",
    "covarianceType",
    "covariance",
  );
  assertThrows(
    () => fitGMM(data, 2, { hard: "yes" as unknown as boolean }),
    ArgumentError,
    "fitGMM",
    "hard",
  );
  const model = fitGMM(data, 2, { seed: 0 });
  assertThrows(
    () => sampleGMM(model, 3, null as unknown as { seed?: number }),
    ArgumentError,
    "sampleGMM",
    "options",
  );
  assertThrows(
    () => sampleGMM(model, 3, { sed: 1 } as { seed?: number }),
    ArgumentError,
    "sampleGMM",
    "sed",
    "seed",
  );
  disposeGMM(model);
});

Deno.test("a throwing fitGMM leaves the tensor count unchanged", () => {
  const data = tf.tensor2d([[0, 0], [1, 1], [2, 0], [5, 5]]);
  const before = tf.memory().numTensors;
  for (
    const call of [
      () => fitGMM(data, 5),
      () => fitGMM(tf.tensor2d([[1, 1], [1, 1], [2, 2]]), 3),
      () => fitGMM(data, 2, { varianceFloor: -1 }),
      () => fitGMM(tf.tensor2d([[1e20, 0], [0, 1]]), 1),
    ]
  ) {
    assertThrows(call, ArgumentError, "fitGMM");
  }
  // The two tensors made in the calls themselves are the only new ones.
  assertEquals(tf.memory().numTensors, before + 2);
  data.dispose();
});

Deno.test("unseeded sampleGMM calls draw different samples; a seed repeats", () => {
  const model: GMM = {
    means: tf.tensor2d([[0], [5]]),
    variances: tf.tensor2d([[1], [1]]),
    weights: tf.tensor1d([0.5, 0.5]),
  };
  const draw = (options: { seed?: number }) => {
    const s = sampleGMM(model, 4, options);
    const v = Array.from(s.samples.dataSync());
    tf.dispose([s.samples, s.z]);
    return v;
  };
  const [a, b] = [draw({}), draw({})];
  assert(a.some((v, i) => v !== b[i]), "two unseeded draws were equal");
  assertEquals(draw({ seed: 5 }), draw({ seed: 5 }));
  disposeGMM(model);
});
