import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import {
  categoricalEntropy,
  gumbelMax,
  gumbelSoftmax,
  gumbelSoftmaxEstimates,
  klToUniform,
  sampleGumbel,
  type SampleObjective,
  scoreFunctionEstimates,
  temperatureSchedule,
} from "../lib/gumbel.ts";
import { randomNormal, resetRandomStream } from "../lib/random.ts";
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

Deno.test("gumbelSoftmax: stable up to float32's largest logits and smallest temperatures", () => {
  tf.tidy(() => {
    // (logits + g) / tau overflowed to inf - inf = NaN here before the row
    // max was taken off first.
    const cases: [number[][], number][] = [
      [[[3e38, 1, 0]], 0.5],
      [[[3e38, -3e38, 0]], 1],
      [[[-3e38, -3e38, 3e38]], 1e-3],
      [[[0.1, 0.5, -0.2]], 1e-40],
      [[[0.1, 0.5, -0.2]], 1e-45],
    ];
    for (const [rows, tau] of cases) {
      for (const hard of [false, true]) {
        const z = gumbelSoftmax(tf.tensor2d(rows), { tau, hard, seed: 1 });
        const v = Array.from(z.dataSync());
        assert(v.every(Number.isFinite), `finite at ${rows}, tau ${tau}: ${v}`);
        assertAllClose(z.sum(-1), 1, { atol: 1e-5 });
      }
    }
    // A huge logit wins; a tiny temperature gives the Gumbel-max one-hot.
    assertAllClose(
      gumbelSoftmax(tf.tensor2d([[1, 3e38, 0]]), { tau: 0.5, seed: 1 }),
      [[0, 1, 0]],
    );
    const l = tf.tensor2d([[0.1, 0.5, -0.2]]);
    assertAllClose(
      gumbelSoftmax(l, { tau: 1e-40, seed: 4 }).argMax(-1),
      gumbelMax(l, { seed: 4 }),
      { atol: 0 },
    );
    const g = tf.grad((x: tf.Tensor) =>
      gumbelSoftmax(x, { tau: 0.5, seed: 1 }).mul(tf.tensor1d([1, 2, 3])).sum()
    )(tf.tensor2d([[3e38, 1, 0]]));
    assert(g.dataSync().every(Number.isFinite), "finite gradient");
  });
  // A temperature that float32 rounds to 0 cannot be divided by: rejected.
  assertThrows(
    () => gumbelSoftmax(tf.tensor2d([[0, 1]]), { tau: 1e-46 }),
    ArgumentError,
    "gumbelSoftmax",
    "rounds to 0",
  );
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
    assertThrows(
      () => gumbelSoftmax(ok, { tau: 1, haard: true } as never),
      ArgumentError,
      "gumbelSoftmax",
      'did you mean "hard"',
    );
    assertThrows(
      () => gumbelSoftmax(ok, null as never),
      ArgumentError,
      "gumbelSoftmax",
      "options",
    );
    assertThrows(
      () => gumbelMax(ok, { sede: 1 } as never),
      ArgumentError,
      'did you mean "seed"',
    );
    assertThrows(
      () => sampleGumbel([2], { seed: "x" as never }),
      ArgumentError,
      "sampleGumbel",
      "seed",
    );
    assertThrows(
      () => temperatureSchedule({ tauMn: 0.1 } as never),
      ArgumentError,
      'did you mean "tauMin"',
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

// A toy objective with a known answer: f(c) = ||c - t||^2 summed over the
// variables, whose expectation under q = softmax(l) has the exact gradient
// d E[f] / d l_j = q_j (f_j - sum_k q_k f_k), f_j = ||e_j - t||^2.
function quadratic(target: number[]) {
  const f: SampleObjective = (z) =>
    tf.tidy(() =>
      z.sub(tf.tensor1d(target)).square().reshape([z.shape[0], -1]).sum(1)
    );
  const norm2 = target.reduce((a, t) => a + t * t, 0);
  const valueAt = (j: number) => 1 - 2 * target[j] + norm2;
  const exactGradient = (rows: number[][]) =>
    rows.flatMap((row) => {
      const m = Math.max(...row);
      const z = row.reduce((a, l) => a + Math.exp(l - m), 0);
      const q = row.map((l) => Math.exp(l - m) / z);
      const mean = q.reduce((a, p, j) => a + p * valueAt(j), 0);
      return q.map((p, j) => p * (valueAt(j) - mean));
    });
  return { f, exactGradient, valueAt };
}

/** Mean, standard error and total variance of estimates [S, ...] (disposes them). */
function moments(estimates: tf.Tensor) {
  const s = estimates.shape[0];
  const d = estimates.size / s;
  const v = estimates.dataSync();
  estimates.dispose();
  const mean = new Array(d).fill(0);
  const variance = new Array(d).fill(0);
  for (let i = 0; i < s * d; i++) mean[i % d] += v[i] / s;
  for (let i = 0; i < s * d; i++) {
    variance[i % d] += (v[i] - mean[i % d]) ** 2 / (s - 1);
  }
  return {
    mean,
    standardError: variance.map((x) => Math.sqrt(x / s)),
    totalVariance: variance.reduce((a, b) => a + b, 0),
  };
}

Deno.test("score-function estimator is unbiased on a toy objective; Gumbel-softmax is biased with lower variance", () => {
  const toy = quadratic([0.45, 0.55, 0.1]);
  const rows = [[0.3, -0.2, 0.5], [1.5, -1.0, 0.0]];
  const exact = toy.exactGradient(rows);
  tf.tidy(() => {
    const logits = tf.tensor2d(rows);
    for (const baseline of [0, 1.5]) {
      const rf = moments(
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
    const rf = moments(
      scoreFunctionEstimates(logits, toy.f, { samples: 20_000, seed: 4 }),
    );
    const gs = moments(
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
    // The closed form itself agrees with autodiff of the exact expectation.
    const expectation = (l: tf.Tensor) =>
      tf.softmax(l).mul(tf.tensor1d([0, 1, 2].map(toy.valueAt)))
        .sum() as tf.Scalar;
    assertAllClose(tf.grad(expectation)(logits.slice([0, 0], [1, 3])), [
      exact.slice(0, 3),
    ], { atol: 1e-6 });
  });
});

Deno.test("Gumbel-softmax estimates are exactly the gradient of f at the relaxed sample", () => {
  tf.tidy(() => {
    const logits = tf.tensor1d([0.3, -0.2, 0.5]);
    const w = tf.tensor1d([1, -2, 0.5]);
    const f: SampleObjective = (z) => z.mul(w).sum(1);
    const est = gumbelSoftmaxEstimates(logits, f, {
      samples: 3,
      tau: 0.7,
      seed: 2,
    });
    // The same noise, drawn as gumbelSoftmax draws it for [3, 3] logits.
    const noise = sampleGumbel([3, 3], { seed: 2 });
    const tiled = tf.broadcastTo(logits, [3, 3]);
    const direct = tf.grad((l: tf.Tensor) =>
      gumbelSoftmax(l, { tau: 0.7, noise }).mul(w).sum()
    )(tiled);
    assertAllClose(est, direct, { atol: 1e-6 });
  });
});

Deno.test("estimators reject bad inputs before any tensor is made, and leak nothing when f is wrong", async () => {
  const toy = quadratic([0, 1]);
  const logits = tf.tensor1d([0, 1]);
  await assertNoTensorLeak(() => {
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
      () =>
        gumbelSoftmaxEstimates(logits, toy.f, {
          samples: 4,
          tau: 1,
          sed: 1,
        } as never),
      ArgumentError,
      'did you mean "seed"',
    );
    assertThrows(
      () => scoreFunctionEstimates(logits, toy.f, null as never),
      ArgumentError,
      "options",
    );
    // f returns one number instead of one per sample: a clear error, and
    // (for the Gumbel-softmax estimator, which differentiates f) no tensor
    // left behind by the gradient tape.
    for (let i = 0; i < 3; i++) {
      assertThrows(
        () => scoreFunctionEstimates(logits, (z) => z.sum(), { samples: 3 }),
        ArgumentError,
        "scoreFunctionEstimates",
        "f(samples)",
      );
      assertThrows(
        () =>
          gumbelSoftmaxEstimates(logits, (z) => z.sum(), {
            samples: 3,
            tau: 1,
          }),
        ArgumentError,
        "gumbelSoftmaxEstimates",
        "f(samples)",
      );
    }
  });
  logits.dispose();
});

Deno.test("gumbel functions leak no tensors", async () => {
  const logits = randomNormal([8, 4], { seed: 1 });
  const toy = quadratic([0, 0.5, 0.2, 0.1]);
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
      try {
        gumbelSoftmax(logits, { tau: -1 });
      } catch { /* the error path must not leak either */ }
    }
  });
  logits.dispose();
});

Deno.test("without a seed the noise advances the shared stream: new draws every call, repeatable after a reset", () => {
  tf.tidy(() => {
    const logits = tf.zeros([50, 4]);
    resetRandomStream(11);
    const a = Array.from(gumbelSoftmax(logits, { tau: 1 }).dataSync());
    const b = Array.from(gumbelSoftmax(logits, { tau: 1 }).dataSync());
    const c = Array.from(gumbelMax(logits).dataSync());
    const d = Array.from(gumbelMax(logits).dataSync());
    const g1 = Array.from(sampleGumbel([10]).dataSync());
    const g2 = Array.from(sampleGumbel([10]).dataSync());
    assertNotEquals(a, b);
    assertNotEquals(c, d);
    assertNotEquals(g1, g2);
    resetRandomStream(11);
    assertEquals(Array.from(gumbelSoftmax(logits, { tau: 1 }).dataSync()), a);
    // A seed still gives the same noise every time.
    assertAllClose(
      gumbelSoftmax(logits, { tau: 1, seed: 3 }),
      gumbelSoftmax(logits, { tau: 1, seed: 3 }),
      { atol: 0, rtol: 0 },
    );
    resetRandomStream();
  });
});

Deno.test("relaxed samples: the mean equals pi for a uniform pi at every tau, and is biased for another pi", () => {
  tf.tidy(() => {
    const n = 40_000;
    const uniform = tf.zeros([n, 4]);
    for (const tau of [0.1, 1, 10]) {
      const mean = gumbelSoftmax(uniform, { tau, seed: 5 }).mean(0);
      // By symmetry E[c_k] = 1/4; the sampling error is below 0.01.
      assertAllClose(mean, 0.25, { atol: 0.01 });
    }
    const pi = [0.1, 0.2, 0.7];
    const logits = tf.broadcastTo(tf.log(tf.tensor1d(pi)), [n, 3]);
    const gap = (tau: number) =>
      gumbelSoftmax(logits, { tau, seed: 6 }).mean(0).sub(tf.tensor1d(pi))
        .abs().sum().dataSync()[0];
    // Cold: nearly the Gumbel-max frequencies; warm: pulled to the centre.
    assert(gap(0.01) < 0.02, `gap at tau 0.01 is ${gap(0.01)}`);
    assert(gap(1) > 0.1, `gap at tau 1 is ${gap(1)}`);
  });
});
