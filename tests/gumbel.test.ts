import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import {
  categoricalChiSquare,
  categoricalEntropy,
  estimatorMoments,
  estimatorSquaredBias,
  gumbelMax,
  gumbelSoftmax,
  gumbelSoftmaxEstimates,
  gumbelSoftmaxMomentsByTau,
  klToUniform,
  quadraticToy,
  relaxationStats,
  sampleGumbel,
  scoreFunctionEstimates,
  temperatureSchedule,
} from "../lib/gumbel.ts";
import { randomNormal } from "../lib/random.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertGradientMatches,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

const EULER_GAMMA = 0.5772156649015329;

Deno.test("sampleGumbel: finite, seeded, with the Gumbel(0, 1) mean and variance", async () => {
  await assertNoTensorLeak(() => {
    const g = sampleGumbel([100_000], { seed: 1 });
    const v = Array.from(g.dataSync());
    assert(v.every(Number.isFinite), "every sample is finite");
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) /
      (v.length - 1);
    // Standard errors: 1.28 / sqrt(1e5) = 0.004 for the mean, ~0.02 for the variance.
    assertAllClose(mean, EULER_GAMMA, { atol: 0.02, rtol: 0 });
    assertAllClose(variance, Math.PI ** 2 / 6, { atol: 0.08, rtol: 0 });
    const again = sampleGumbel([100_000], { seed: 1 });
    assertAllClose(again, g, { atol: 0, rtol: 0 });
    const other = sampleGumbel([100_000], { seed: 2 });
    assert(other.dataSync()[0] !== v[0], "another seed gives other numbers");
    tf.dispose([g, again, other]);
  });
  assertThrows(
    () => sampleGumbel([2, -1]),
    ArgumentError,
    "sampleGumbel",
    "shape[1]",
  );
  assertThrows(
    () => sampleGumbel(3 as unknown as number[]),
    ArgumentError,
    "shape",
  );
});

Deno.test("gumbelMax: 100k samples match pi by a chi-square test", async () => {
  const pi = [0.05, 0.1, 0.2, 0.25, 0.4];
  const n = 100_000;
  await assertNoTensorLeak(() => {
    // Unnormalised logits (log pi + 3): the argmax is shift invariant.
    const logits = tf.tidy(() =>
      tf.broadcastTo(tf.tensor1d(pi.map((p) => Math.log(p) + 3)), [
        n,
        pi.length,
      ])
    );
    const c = gumbelMax(logits, { seed: 7 });
    assertEquals(c.dtype, "int32");
    assertEquals(c.shape, [n]);
    const counts = new Array(pi.length).fill(0);
    for (const k of c.dataSync()) counts[k]++;
    const chi2 = counts.reduce(
      (a, o, k) => a + (o - n * pi[k]) ** 2 / (n * pi[k]),
      0,
    );
    // 99.9% quantile of chi-square with 4 degrees of freedom.
    assert(chi2 < 18.47, `chi-square ${chi2} too large for counts ${counts}`);
    tf.dispose([logits, c]);
  });
});

Deno.test("gumbelSoftmax: rows on the simplex, tau -> 0 is the Gumbel-max one-hot, large tau is uniform", () => {
  tf.tidy(() => {
    const logits = randomNormal([200, 6], { seed: 3 });
    const soft = gumbelSoftmax(logits, { tau: 0.7, seed: 11 });
    assertAllClose(soft.sum(-1), 1, { atol: 1e-5 });
    assert(soft.min().dataSync()[0] >= 0, "no negative probability");
    // Same seed, same noise: a very cold relaxation picks the Gumbel-max class.
    const cold = gumbelSoftmax(logits, { tau: 1e-3, seed: 11 });
    const index = gumbelMax(logits, { seed: 11 });
    assertAllClose(cold.argMax(-1), index, { atol: 0 });
    // Near-one-hot, except rows whose two best perturbed logits nearly tie.
    const top = Array.from(cold.max(-1).dataSync());
    assert(
      top.filter((t) => t > 0.999).length >= 195,
      "at least 195 of 200 rows are one-hot to 1e-3",
    );
    const hot = gumbelSoftmax(logits, { tau: 1e4, seed: 11 });
    assertAllClose(hot, 1 / 6, { atol: 1e-3 });
  });
});

Deno.test("gumbelSoftmax: differentiable, and its gradient matches finite differences", () => {
  tf.tidy(() => {
    const logits = randomNormal([2, 4], { seed: 5 });
    const noise = sampleGumbel([2, 4], { seed: 6 });
    const weights = randomNormal([2, 4], { seed: 7 });
    assertGradientMatches(
      (l) =>
        gumbelSoftmax(l, { tau: 0.8, noise }).mul(weights).sum() as tf.Scalar,
      logits,
    );
  });
});

Deno.test("gumbelSoftmax hard: one-hot forward value with the soft sample's gradient", () => {
  tf.tidy(() => {
    const logits = randomNormal([50, 5], { seed: 8 });
    const noise = sampleGumbel([50, 5], { seed: 9 });
    const weights = randomNormal([50, 5], { seed: 10 });
    const hard = gumbelSoftmax(logits, { tau: 0.5, hard: true, noise });
    const v = hard.dataSync();
    for (let i = 0; i < v.length; i++) {
      assert(v[i] === 0 || v[i] === 1, "entries are 0 or 1");
    }
    assertAllClose(hard.sum(-1), 1, { atol: 0 });
    const soft = gumbelSoftmax(logits, { tau: 0.5, noise });
    assertAllClose(hard.argMax(-1), soft.argMax(-1), { atol: 0 });
    const gHard = tf.grad((l: tf.Tensor) =>
      gumbelSoftmax(l, { tau: 0.5, hard: true, noise }).mul(weights).sum()
    )(logits);
    const gSoft = tf.grad((l: tf.Tensor) =>
      gumbelSoftmax(l, { tau: 0.5, noise }).mul(weights).sum()
    )(logits);
    assertAllClose(gHard, gSoft, { atol: 1e-6 });
    assert(
      gSoft.abs().sum().dataSync()[0] > 1e-3,
      "the gradient is not trivially zero",
    );
  });
});

Deno.test("gumbelSoftmax: no NaN or inf for logits of +-1e4 and tau down to 1e-3", () => {
  tf.tidy(() => {
    const logits = tf.tensor2d([[1e4, -1e4, 0], [-1e4, -1e4, -1e4], [
      1e4,
      1e4,
      -1e4,
    ]]);
    for (const tau of [1e-3, 0.1, 1, 100]) {
      for (const hard of [false, true]) {
        const z = gumbelSoftmax(logits, { tau, hard, seed: 1 });
        assert(
          z.dataSync().every(Number.isFinite),
          `finite at tau ${tau}, hard ${hard}`,
        );
        assertAllClose(z.sum(-1), 1, { atol: 1e-5 });
        const g = tf.grad((l: tf.Tensor) =>
          gumbelSoftmax(l, { tau, hard, seed: 1 }).square().sum()
        )(
          logits,
        );
        assert(
          g.dataSync().every(Number.isFinite),
          `finite gradient at tau ${tau}`,
        );
      }
    }
    // The dominant logit wins whatever the noise.
    assertAllClose(
      gumbelSoftmax(logits, { tau: 1e-3, seed: 2 }).slice([0, 0], [1, 3]),
      [[1, 0, 0]],
    );
  });
});

Deno.test("gumbel functions reject bad inputs with clear errors", () => {
  tf.tidy(() => {
    const ok = tf.tensor2d([[0, 1, 2]]);
    for (const tau of [0, -1, NaN, Infinity]) {
      assertThrows(
        () => gumbelSoftmax(ok, { tau }),
        ArgumentError,
        "gumbelSoftmax",
        "tau",
      );
    }
    assertThrows(
      () => gumbelSoftmax(ok, undefined as unknown as { tau: number }),
      ArgumentError,
      "tau",
    );
    const nan = tf.tensor2d([[0, NaN, 1]]);
    const inf = tf.tensor2d([[0, Infinity, 1]]);
    for (const f of [gumbelMax, klToUniform, categoricalEntropy]) {
      assertThrows(() => f(nan), ArgumentError, "logits must be finite");
      assertThrows(() => f(inf), ArgumentError, "logits must be finite");
    }
    assertThrows(() => gumbelSoftmax(nan, { tau: 1 }), ArgumentError, "finite");
    const one = tf.tensor2d([[1], [2]]);
    for (const f of [gumbelMax, klToUniform, categoricalEntropy]) {
      assertThrows(() => f(one), ArgumentError, "K = 1");
    }
    assertThrows(() => gumbelSoftmax(one, { tau: 1 }), ArgumentError, "K = 1");
    assertThrows(
      () => gumbelMax(tf.tensor1d([1, 2], "int32")),
      ArgumentError,
      "float32",
    );
    assertThrows(
      () => gumbelMax([1, 2] as unknown as tf.Tensor),
      ArgumentError,
      "tf.Tensor",
    );
    assertThrows(
      () => gumbelSoftmax(ok, { tau: 1, noise: tf.zeros([1, 2]) }),
      ArgumentError,
      "noise",
    );
    assertThrows(
      () => gumbelSoftmax(ok, { tau: 1, hard: "yes" as unknown as boolean }),
      ArgumentError,
      "hard",
    );
  });
});

Deno.test("klToUniform and categoricalEntropy: closed form, 0 at uniform, log K at one-hot", () => {
  tf.tidy(() => {
    const rows = [[0.3, -1.2, 2.0, 0.1], [5, 5, 5, 5], [1e4, 0, 0, 0], [
      -800,
      0,
      0,
      0,
    ]];
    const logits = tf.tensor2d(rows);
    const kl = klToUniform(logits).dataSync();
    const h = categoricalEntropy(logits).dataSync();
    for (const [i, row] of rows.entries()) {
      const m = Math.max(...row);
      const z = row.reduce((a, l) => a + Math.exp(l - m), 0);
      const q = row.map((l) => Math.exp(l - m) / z);
      const entropy = -q.reduce((a, p) => a + (p > 0 ? p * Math.log(p) : 0), 0);
      assertAllClose(h[i], entropy, { atol: 1e-5, rtol: 1e-5 });
      assertAllClose(kl[i], Math.log(4) - entropy, { atol: 1e-5, rtol: 1e-5 });
    }
    assertAllClose(kl[1], 0, { atol: 1e-6 });
    assertAllClose(kl[2], Math.log(4), { atol: 1e-6 });
    assertAllClose(h[2], 0, { atol: 1e-6 });
    // Shape: every axis but the last is kept.
    assertEquals(klToUniform(tf.zeros([2, 3, 5])).shape, [2, 3]);
  });
});

Deno.test("temperatureSchedule: exponential decay with a floor", () => {
  const byRate = temperatureSchedule({ tau0: 2, tauMin: 0.5, rate: 0.01 });
  assertAllClose(byRate(0), 2);
  assertAllClose(byRate(50), 2 * Math.exp(-0.5), { rtol: 1e-12 });
  assertAllClose(byRate(10_000), 0.5);
  const bySteps = temperatureSchedule({ tau0: 1, tauMin: 0.25, steps: 100 });
  assertAllClose(bySteps(100), 0.25, { rtol: 1e-12 });
  assertAllClose(bySteps(50), 0.5, { rtol: 1e-12 });
  assertAllClose(temperatureSchedule()(1000), 1);
  assertThrows(() => temperatureSchedule({ tau0: 0 }), ArgumentError, "tau0");
  assertThrows(
    () => temperatureSchedule({ tau0: 1, tauMin: 2 }),
    ArgumentError,
    "tauMin",
  );
  assertThrows(
    () => temperatureSchedule({ rate: 1, steps: 3 }),
    ArgumentError,
    "not both",
  );
  assertThrows(() => temperatureSchedule({ rate: -1 }), ArgumentError, "rate");
  assertThrows(() => byRate(-1), ArgumentError, "step");
});

Deno.test("score-function estimator is unbiased on a toy objective; Gumbel-softmax is biased with lower variance", () => {
  tf.tidy(() => {
    const toy = quadraticToy([0.45, 0.55, 0.1]);
    const logits = tf.tensor2d([[0.3, -0.2, 0.5], [1.5, -1.0, 0.0]]);
    const exact = toy.exactGradient(logits);
    for (const baseline of [0, 1.5]) {
      const rf = estimatorMoments(
        scoreFunctionEstimates(logits, toy.f, {
          samples: 20_000,
          seed: 3,
          baseline,
        }),
      );
      rf.mean.forEach((m, i) => {
        assert(
          Math.abs(m - exact[i]) < 3 * rf.standardError[i],
          `REINFORCE coordinate ${i} (baseline ${baseline}): mean ${m}, exact ${
            exact[i]
          }, se ${rf.standardError[i]}`,
        );
      });
    }
    const rf = estimatorMoments(
      scoreFunctionEstimates(logits, toy.f, { samples: 20_000, seed: 4 }),
    );
    const gs = estimatorMoments(
      gumbelSoftmaxEstimates(logits, toy.f, {
        samples: 20_000,
        tau: 1,
        seed: 4,
      }),
    );
    assert(
      gs.totalVariance < rf.totalVariance,
      "the relaxation has lower variance",
    );
    const bias = gs.mean.map((m, i) =>
      Math.abs(m - exact[i]) / gs.standardError[i]
    );
    assert(
      Math.max(...bias) > 10,
      `the relaxation at tau = 1 is biased (max |bias|/se ${
        Math.max(...bias)
      })`,
    );
    // The closed form itself agrees with a finite difference of the exact expectation.
    const expectation = (l: tf.Tensor) =>
      tf.softmax(l).mul(tf.tensor1d([0, 1, 2].map(toy.valueAt)))
        .sum() as tf.Scalar;
    const row = tf.tensor1d([0.3, -0.2, 0.5]);
    assertAllClose(tf.grad(expectation)(row), exact.slice(0, 3), {
      atol: 1e-6,
    });
  });
});

Deno.test("estimators and toy reject bad inputs", () => {
  tf.tidy(() => {
    const toy = quadraticToy([0, 1]);
    const logits = tf.tensor1d([0, 1]);
    assertThrows(
      () => scoreFunctionEstimates(logits, toy.f, { samples: 0 }),
      ArgumentError,
      "samples",
    );
    assertThrows(
      () => gumbelSoftmaxEstimates(logits, toy.f, { samples: 4, tau: 0 }),
      ArgumentError,
      "tau",
    );
    assertThrows(
      () => scoreFunctionEstimates(logits, (z) => z.sum(), { samples: 3 }),
      ArgumentError,
      "f(samples)",
    );
    assertThrows(() => quadraticToy([1]), ArgumentError, "target");
    assertThrows(
      () => toy.exactGradient(tf.tensor1d([0, 1, 2])),
      ArgumentError,
      "2 classes",
    );
    assertThrows(
      () => estimatorMoments(tf.zeros([1, 3])),
      ArgumentError,
      "2 samples",
    );
  });
});

Deno.test("gumbel functions leak no tensors", async () => {
  const logits = randomNormal([8, 4], { seed: 1 });
  const toy = quadraticToy([0, 0.5, 0.2, 0.1]);
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 5; i++) {
      tf.dispose([
        sampleGumbel([3, 4], { seed: i }),
        gumbelMax(logits, { seed: i }),
        gumbelSoftmax(logits, { tau: 0.5, seed: i }),
        gumbelSoftmax(logits, { tau: 0.5, hard: true, seed: i }),
        klToUniform(logits),
        categoricalEntropy(logits),
        scoreFunctionEstimates(logits, toy.f, { samples: 5, seed: i }),
        gumbelSoftmaxEstimates(logits, toy.f, {
          samples: 5,
          tau: 0.5,
          seed: i,
        }),
        tf.grad((l: tf.Tensor) =>
          gumbelSoftmax(l, { tau: 0.5, hard: true, seed: i }).sum()
        )(logits),
      ]);
      toy.exactGradient(logits);
      try {
        gumbelSoftmax(logits, { tau: -1 });
      } catch { /* the error path must not leak either */ }
    }
  });
  logits.dispose();
});

Deno.test("categoricalChiSquare: counts, frequencies and Pearson's statistic by hand", () => {
  tf.tidy(() => {
    // 10 draws of K = 3: counts [2, 3, 5] against pi = [0.5, 0.25, 0.25].
    const classes = tf.tensor1d([0, 1, 2, 2, 1, 2, 0, 2, 1, 2], "int32");
    const { counts, frequencies, chi2 } = categoricalChiSquare(classes, [
      0.5,
      0.25,
      0.25,
    ]);
    assertEquals(counts, [2, 3, 5]);
    assertAllClose(frequencies, [0.2, 0.3, 0.5], { atol: 1e-12 });
    // (2-5)^2/5 + (3-2.5)^2/2.5 + (5-2.5)^2/2.5 = 1.8 + 0.1 + 2.5
    assertAllClose(chi2, 4.4, { rtol: 1e-12 });
    // Exact frequencies give 0; any 2-d shape of indices is accepted.
    const exact = tf.tensor2d([[0, 1], [0, 1]], [2, 2], "int32");
    assertAllClose(categoricalChiSquare(exact, [0.5, 0.5]).chi2, 0);
  });
  const ok = tf.tensor1d([0, 1], "int32");
  assertThrows(
    () => categoricalChiSquare(ok, [0.5, 0.6]),
    ArgumentError,
    "categoricalChiSquare",
    "sum to 1",
  );
  assertThrows(() => categoricalChiSquare(ok, [1]), ArgumentError, "pi");
  assertThrows(
    () => categoricalChiSquare(ok, [1, 0]),
    ArgumentError,
    "pi[1]",
  );
  assertThrows(
    () => categoricalChiSquare(tf.tensor1d([0, 3], "int32"), [0.5, 0.5]),
    ArgumentError,
    "[0, 2)",
  );
  assertThrows(
    () => categoricalChiSquare(tf.tensor1d([0, 1]), [0.5, 0.5]),
    ArgumentError,
    "int32",
  );
  ok.dispose();
});

Deno.test("relaxationStats: one-hot and unbiased as tau -> 0, the simplex centre for large tau", async () => {
  const pi = [0.2, 0.3, 0.5];
  const taus = [0.05, 1, 1000];
  const stats = await assertNoTensorLeak(() =>
    relaxationStats(pi, taus, { samples: 4000, seed: 3 })
  );
  assertEquals(stats.map((s) => s.tau), taus);
  // Near tau = 0: almost one-hot, mean close to pi (Gumbel-max is exact).
  assert(stats[0].maxCoord > 0.95, `maxCoord ${stats[0].maxCoord}`);
  assert(stats[0].meanGap < 0.05, `meanGap ${stats[0].meanGap}`);
  // Large tau: the centre of the simplex, so max = 1/3 and the gap is
  // ||(1/3, 1/3, 1/3) - pi||_1 = 0.1333 + 0.0333 + 0.1667.
  assertAllClose(stats[2].maxCoord, 1 / 3, { atol: 1e-3 });
  assertAllClose(stats[2].meanGap, 1 / 3, { atol: 1e-3 });
  assert(stats[0].maxCoord > stats[1].maxCoord, "colder is more one-hot");
  // The same numbers as computing them directly from gumbelSoftmax.
  tf.tidy(() => {
    const logits = tf.broadcastTo(tf.log(tf.tensor1d(pi)), [4000, 3]);
    const z = gumbelSoftmax(logits, { tau: 1, seed: 3 });
    assertAllClose(stats[1].maxCoord, z.max(1).mean().dataSync()[0], {
      rtol: 1e-6,
    });
  });
  assertThrows(
    () => relaxationStats(pi, [], { samples: 10 }),
    ArgumentError,
    "relaxationStats",
    "taus",
  );
  assertThrows(
    () => relaxationStats(pi, [0], { samples: 10 }),
    ArgumentError,
    "taus[0]",
  );
  assertThrows(
    () => relaxationStats([0.5, 0.6], [1], { samples: 10 }),
    ArgumentError,
    "sum to 1",
  );
  assertThrows(
    () => relaxationStats(pi, [1], { samples: 0 }),
    ArgumentError,
    "samples",
  );
});

Deno.test("gumbelSoftmaxMomentsByTau: one estimatorMoments per tau, without leaks", async () => {
  const toy = quadraticToy([0.45, 0.55, 0.1]);
  const logits = tf.tensor1d([0.3, -0.2, 0.5]);
  const byTau = await assertNoTensorLeak(() =>
    gumbelSoftmaxMomentsByTau(logits, toy.f, {
      taus: [0.5, 2],
      samples: 500,
      seed: 6,
    })
  );
  assertEquals(byTau.length, 2);
  const direct = tf.tidy(() =>
    estimatorMoments(
      gumbelSoftmaxEstimates(logits, toy.f, { samples: 500, tau: 2, seed: 6 }),
    )
  );
  assertAllClose(byTau[1].mean, direct.mean, { atol: 0, rtol: 0 });
  assertAllClose(byTau[1].totalVariance, direct.totalVariance, { rtol: 0 });
  assertThrows(
    () => gumbelSoftmaxMomentsByTau(logits, toy.f, { taus: [], samples: 5 }),
    ArgumentError,
    "taus",
  );
  logits.dispose();
});

Deno.test("estimatorSquaredBias: squared distance to the exact gradient", () => {
  assertAllClose(estimatorSquaredBias([1, 2, 3], [1, 0, 1]), 8);
  assertAllClose(estimatorSquaredBias([0.5, -0.5], [0.5, -0.5]), 0);
  assertThrows(
    () => estimatorSquaredBias([1, 2], [1]),
    ArgumentError,
    "estimatorSquaredBias",
    "same length",
  );
  assertThrows(
    () => estimatorSquaredBias([1, NaN], [1, 2]),
    ArgumentError,
    "mean[1]",
  );
  assertThrows(() => estimatorSquaredBias([], []), ArgumentError, "mean");
});
