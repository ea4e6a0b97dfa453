import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import {
  frechetDistance,
  frechetDistanceGaussians,
  inceptionScore,
  knnRadii,
  precisionRecall,
  withinClassDiversity,
} from "../lib/metrics.ts";
import { Rng } from "../lib/random.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

function gaussianRows(
  rng: Rng,
  n: number,
  mean: number[],
  std: number[],
): number[][] {
  return Array.from(
    { length: n },
    () => mean.map((m, j) => m + std[j] * rng.normal()),
  );
}

/** Correlated Gaussian feature sets x = z A + shift (the sets tasks/reference/metrics_scipy.py checks). */
function randomSets(
  seed: number,
  n: number,
  m: number,
  d: number,
): [number[][], number[][]] {
  const rng = new Rng(seed);
  const mix = (rows: number, shift: number) => {
    const a = Array.from(
      { length: d },
      () => Array.from({ length: d }, () => rng.normal() / Math.sqrt(d)),
    );
    return Array.from({ length: rows }, () => {
      const z = Array.from({ length: d }, () => rng.normal());
      return a.map((_, j) => z.reduce((s, zi, i) => s + zi * a[i][j], shift));
    });
  };
  return [mix(n, 0), mix(m, 0.3)];
}

Deno.test("frechetDistance is 0 for identical sets and |shift|^2 for a shifted copy", () => {
  const [a] = randomSets(7, 300, 2, 16);
  assertAllClose(frechetDistance(a, a), 0, { atol: 1e-9 });
  // Rank-deficient covariance (fewer points than dimensions): still exact.
  const few = a.slice(0, 6);
  const shift = Array.from({ length: 16 }, (_, j) => 0.1 * j - 0.5);
  const shifted = few.map((row) => row.map((v, j) => v + shift[j]));
  const expected = shift.reduce((s, c) => s + c * c, 0);
  assertAllClose(frechetDistance(few, few), 0, { atol: 1e-9 });
  assertAllClose(frechetDistance(few, shifted), expected, {
    rtol: 1e-8,
    atol: 1e-9,
  });
});

Deno.test("frechetDistanceGaussians matches the closed forms (diagonal and 2x2 general)", () => {
  // Diagonal covariances commute: |mu1 - mu2|^2 + sum (s1 - s2)^2.
  const s1 = [1, 4, 0.25, 9];
  const s2 = [2, 1, 1, 0.5];
  const diag = (s: number[]) =>
    s.flatMap((v, i) => s.map((_, j) => (i === j ? v * v : 0)));
  const mu1 = [0, 1, 2, 3];
  const mu2 = [1, 1, 0, 3];
  const closed = 1 + 4 + s1.reduce((acc, v, i) => acc + (v - s2[i]) ** 2, 0);
  assertAllClose(
    frechetDistanceGaussians(mu1, diag(s1), mu2, diag(s2)),
    closed,
    { rtol: 1e-12 },
  );
  // 2x2 non-commuting covariances: tr sqrt(C1 C2) = sqrt(tr(C1 C2) + 2 sqrt(det C1 det C2)).
  const c1 = [2, 0.8, 0.8, 1];
  const c2 = [1, -0.5, -0.5, 3];
  const trProd = c1[0] * c2[0] + c1[1] * c2[2] + c1[2] * c2[1] + c1[3] * c2[3];
  const det = (c: number[]) => c[0] * c[3] - c[1] * c[2];
  const trSqrt = Math.sqrt(trProd + 2 * Math.sqrt(det(c1) * det(c2)));
  const expect2 = 0.5 ** 2 + 0.2 ** 2 + (2 + 1 + 1 + 3) - 2 * trSqrt;
  assertAllClose(
    frechetDistanceGaussians([0, 0], c1, [0.5, -0.2], c2),
    expect2,
    { rtol: 1e-12 },
  );
  assertThrows(
    () => frechetDistanceGaussians([0, 0], c1, [0, 0], [1, 2, 3, 4]),
    ArgumentError,
    "second covariance must be symmetric",
  );
  assertThrows(
    () => frechetDistanceGaussians([0, 0], c1, [0], c2),
    ArgumentError,
    "second mean",
  );
  assertThrows(
    () => frechetDistanceGaussians([0, 0], [-1, 0, 0, 1], [0, 0], c2),
    ArgumentError,
    "negative variance",
  );
});

Deno.test("frechetDistance of large samples approaches the Gaussians' closed form", () => {
  const rng = new Rng(12);
  const a = gaussianRows(rng, 20000, [0, 0, 0], [1, 2, 0.5]);
  const b = gaussianRows(rng, 20000, [1, 0, 0], [1, 1, 0.5]);
  // |mu1 - mu2|^2 + (2 - 1)^2 = 2; the sampling error is a few hundredths.
  assertAllClose(frechetDistance(a, b), 2, { atol: 0.05 });
});

Deno.test("frechetDistance matches scipy.linalg.sqrtm on random correlated features", () => {
  // Values from tasks/reference/metrics_scipy.py (numpy.cov + scipy.linalg.sqrtm,
  // float64) on exactly these sets; see that script to regenerate them.
  const scipy: [number, number, number, number, number, number][] = [
    [1, 50, 60, 5, 3.193103559731, 1e-10],
    [2, 200, 150, 20, 12.855040032558, 1e-10],
    [3, 100, 100, 64, 49.016073530407, 1e-10],
    // Singular covariances (n < d): scipy's sqrtm is only good to ~1e-8 there.
    [4, 30, 40, 64, 68.8840498726, 1e-7],
  ];
  for (const [seed, n, m, d, ref, rtol] of scipy) {
    const [a, b] = randomSets(seed, n, m, d);
    assertAllClose(frechetDistance(a, b), ref, {
      rtol,
      message: `case seed ${seed}, d ${d}`,
    });
  }
});

Deno.test("frechetDistance accepts tensors and does not leak", async () => {
  const [a, b] = randomSets(3, 40, 50, 4);
  const ta = tf.tensor2d(a);
  const tb = tf.tensor2d(b);
  const fromTensors = await assertNoTensorLeak(() => frechetDistance(ta, tb));
  // Tensors are float32: equal to the float64 value up to float32 rounding.
  assertAllClose(fromTensors, frechetDistance(a, b), { rtol: 1e-5 });
  await assertNoTensorLeak(() => precisionRecall(ta, tb));
  tf.dispose([ta, tb]);
});

Deno.test("frechetDistance rejects bad inputs with clear errors", () => {
  assertThrows(
    () => frechetDistance([[1, 2]], [[1, 2], [3, 4]]),
    ArgumentError,
    "at least 2 rows",
  );
  assertThrows(
    () => frechetDistance([[1, 2], [3, 4]], [[1, 2, 3], [3, 4, 5]]),
    ArgumentError,
    "same width",
  );
  assertThrows(
    () => frechetDistance([[1, NaN], [3, 4]], [[1, 2], [3, 4]]),
    ArgumentError,
    "[0][1]",
  );
  assertThrows(
    () => frechetDistance([[1, 2], [3]], [[1, 2], [3, 4]]),
    ArgumentError,
    "rectangular",
  );
  assertThrows(
    () => frechetDistance("x" as never, [[1]]),
    ArgumentError,
    "featuresA",
  );
});

Deno.test("precisionRecall: 1 on identical sets, falls when one set is shifted", () => {
  const rng = new Rng(5);
  const real = gaussianRows(rng, 400, [0, 0, 0, 0], [1, 1, 1, 1]);
  assertEquals(precisionRecall(real, real), { precision: 1, recall: 1 });
  const near = real.map((r) => r.map((v) => v + 0.5));
  const far = real.map((r) => r.map((v) => v + 3));
  const pNear = precisionRecall(real, near);
  const pFar = precisionRecall(real, far);
  assert(pNear.precision < 1 && pNear.recall < 1, JSON.stringify(pNear));
  assert(
    pFar.precision < pNear.precision && pFar.recall < pNear.recall,
    JSON.stringify(pFar),
  );
  assert(pFar.precision < 0.2, JSON.stringify(pFar));
  // A collapsed generator (all samples near one real point): precise, no recall.
  const collapsed = Array.from(
    { length: 50 },
    (_, i) => real[0].map((v) => v + 1e-3 * (i % 5)),
  );
  const pc = precisionRecall(real, collapsed);
  assertEquals(pc.precision, 1);
  assert(pc.recall < 0.05, JSON.stringify(pc));
});

Deno.test("precisionRecall matches a hand-worked 1D example", () => {
  // k = 1: real radii are all 1; fake radii: -2 -> 2.5, 0.5 -> 2.5, 3.9 -> 3.4, 10 -> 6.1.
  // Precision: 0.5 (near 0) and 3.9 (near 3) lie in a real ball: 2 of 4.
  // Recall: every real point lies in some fake ball.
  const real = [[0], [1], [2], [3]];
  const fake = [[0.5], [3.9], [10], [-2]];
  assertEquals(precisionRecall(real, fake, { k: 1 }), {
    precision: 0.5,
    recall: 1,
  });
  // k = 3 widens every ball: real radii become 2 or 3, so -2 (2 from 0) is inside too.
  assertEquals(precisionRecall(real, fake, { k: 3 }).precision, 0.75);
});

Deno.test("precisionRecall rejects bad inputs", () => {
  const a = [[0], [1], [2], [3]];
  assertThrows(
    () => precisionRecall(a, a, { k: 4 }),
    ArgumentError,
    "at least 5 rows",
  );
  assertThrows(() => precisionRecall(a, a, { k: 0 }), ArgumentError, "k");
  assertThrows(
    () => precisionRecall(a, a, null as never),
    ArgumentError,
    "precisionRecall",
    "options",
  );
  assertThrows(
    () => precisionRecall(a, [[0, 1], [1, 1], [2, 2], [3, 3]]),
    ArgumentError,
    "same width",
  );
});

Deno.test("inceptionScore: 1 without diversity, C for confident even classes, closed form for two classes", () => {
  const same = Array.from({ length: 5 }, () => [0.2, 0.3, 0.5]);
  assertAllClose(inceptionScore(same), 1, { rtol: 1e-12 });
  const oneHot = Array.from(
    { length: 40 },
    (_, i) => [0, 1, 2, 3].map((c) => (c === i % 4 ? 1 : 0)),
  );
  assertAllClose(inceptionScore(oneHot), 4, { rtol: 1e-12 });
  const p = 0.9;
  const two = [[p, 1 - p], [1 - p, p]];
  const kl = Math.log(2) + p * Math.log(p) + (1 - p) * Math.log(1 - p);
  assertAllClose(inceptionScore(two), Math.exp(kl), { rtol: 1e-12 });
  assertThrows(() => inceptionScore([[0.5, 0.6]]), ArgumentError, "sum to 1");
  assertThrows(() => inceptionScore([[1.5, -0.5]]), ArgumentError, ">= 0");
});

Deno.test("knnRadii: distance to the k-th nearest other point", () => {
  const pts = [[0], [1], [3], [7]];
  // Neighbours of 0: 1, 3, 7; of 1: 0 (1), 3 (2), 7 (6); of 3: 1 (2), 0 (3), 7 (4); of 7: 3, 1, 0.
  assertEquals(knnRadii(pts, { k: 1 }), [1, 1, 2, 4]);
  assertEquals(knnRadii(pts, { k: 3 }), [7, 6, 4, 7]);
  assertThrows(() => knnRadii(pts, { k: 4 }), ArgumentError, "at least 5 rows");
  assertThrows(
    () => knnRadii(pts, { K: 1 } as never),
    ArgumentError,
    "knnRadii",
    'did you mean "k"',
  );
  // An outlier has the largest ball.
  const features = [[0, 0], [0, 1], [1, 0], [1, 1], [10, 10]];
  const radii = knnRadii(features, { k: 2 });
  assertEquals(radii.indexOf(Math.max(...radii)), 4);
});

Deno.test("frechetDistanceGaussians rejects a covariance that is not PSD, accepts round-off below 0", () => {
  // Eigenvalues -1 and 3: symmetric, positive diagonal, not a covariance.
  const indefinite = [1, 2, 2, 1];
  assertThrows(
    () => frechetDistanceGaussians([0, 0], indefinite, [0, 0], indefinite),
    ArgumentError,
    "frechetDistanceGaussians",
    "first covariance is not positive semi-definite",
  );
  assertThrows(
    () => frechetDistanceGaussians([0, 0], [1, 0, 0, 1], [0, 0], indefinite),
    ArgumentError,
    "second covariance",
  );
  // A singular covariance v v^T (eigenvalues 0, 0, 14) pushed 1e-9 of its
  // largest eigenvalue below 0 along u (u orthogonal to v): round-off, accepted.
  const v = [1, 2, 3];
  const u = [2, -1, 0].map((x) => x / Math.sqrt(5));
  const singular = v.flatMap((a) => v.map((b) => a * b));
  const rounded = singular.map((c, ij) =>
    c - 14e-9 * u[Math.floor(ij / 3)] * u[ij % 3]
  );
  const m = [0.5, 0, -1];
  assertAllClose(frechetDistanceGaussians(m, rounded, m, singular), 0, {
    atol: 1e-7,
  });
  // Pushed 1e-4 of it below 0: rejected.
  const broken = singular.map((c, ij) =>
    c - 14e-4 * u[Math.floor(ij / 3)] * u[ij % 3]
  );
  assertThrows(
    () => frechetDistanceGaussians(m, broken, m, singular),
    ArgumentError,
    "eigenvalue",
  );
});

Deno.test("withinClassDiversity: mean pairwise distance per class, closed forms", async () => {
  // Class 0 at 0, 3, 4 on a line (distances 3, 4, 1); class 1 two points 5 apart.
  const features = [[0, 0], [3, 0], [0, 0], [4, 0], [3, 4]];
  const labels = [0, 0, 1, 0, 1];
  const d = withinClassDiversity(features, labels);
  assertAllClose(d.perClass, [8 / 3, 5], { rtol: 1e-12 });
  assertAllClose(d.mean, (8 / 3 + 5) / 2, { rtol: 1e-12 });
  // A collapsed class (all rows equal) has diversity 0; a missing class is NaN and skipped.
  const collapsed = withinClassDiversity([[1, 1], [1, 1], [0, 2], [2, 0]], [
    0,
    0,
    2,
    2,
  ]);
  assertEquals(collapsed.perClass[0], 0);
  assert(Number.isNaN(collapsed.perClass[1]));
  assertAllClose(collapsed.mean, Math.sqrt(8) / 2, { rtol: 1e-12 });
  // For Gaussian features the mean distance is sqrt(2) E|N(0, I_d)|: about sqrt(2 d).
  const rng = new Rng(5);
  const many = gaussianRows(
    rng,
    1500,
    [0, 0, 0, 0, 0, 0, 0, 0],
    Array(8).fill(1),
  );
  const spread = withinClassDiversity(many, many.map(() => 0)).mean;
  assertAllClose(spread, Math.sqrt(2) * 2.7416, { rtol: 0.02 }); // E|N(0, I_8)| = 2.7416
  // Tensors work and nothing leaks.
  const t = tf.tensor2d(features);
  const y = tf.tensor1d(labels, "int32");
  await assertNoTensorLeak(() => {
    assertAllClose(withinClassDiversity(t, y).mean, d.mean, { rtol: 1e-6 });
  });
  tf.dispose([t, y]);
});

Deno.test("withinClassDiversity rejects bad labels", () => {
  const f = [[0, 0], [1, 1], [2, 2]];
  assertThrows(
    () => withinClassDiversity(f, [0, 1]),
    ArgumentError,
    "withinClassDiversity",
    "one class per feature row",
  );
  assertThrows(
    () => withinClassDiversity(f, [0, 1.5, 0]),
    ArgumentError,
    "labels[1]",
  );
  assertThrows(
    () => withinClassDiversity(f, [0, 1, 2]),
    ArgumentError,
    "two or more",
  );
  assertThrows(
    () => withinClassDiversity(f, null as never),
    ArgumentError,
    "labels",
  );
});
