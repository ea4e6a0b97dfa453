/**
 * Sample-based evaluation of generative models, computed on feature vectors
 * (e.g. a classifier's penultimate layer): the Frechet distance between two
 * Gaussians fitted to the features (FID when the features come from
 * Inception), precision and recall from k-nearest-neighbour radii
 * (Kynkaanniemi et al. 2019), and the Inception Score from class
 * probabilities.
 *
 * All arithmetic is float64 JavaScript: tfjs has no eigendecomposition and
 * float32 would lose the small differences these distances are made of.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkInteger,
  checkNumber,
  checkOptions,
  toMatrix,
} from "./validate.ts";
import { type JacobiEigen, jacobiEigen } from "./linalg.ts";

/** Feature vectors: a float [n, d] tensor or a rectangular number[][]. */
export type Features = tf.Tensor2D | number[][];

interface Rows {
  data: Float64Array;
  n: number;
  d: number;
}

function readRows(
  where: string,
  name: string,
  x: unknown,
  minRows: number,
): Rows {
  let data: Float64Array;
  let n: number;
  let d: number;
  if (Array.isArray(x) && x.length > 0 && Array.isArray(x[0])) {
    // Arrays are read straight into float64 (no float32 round trip).
    n = x.length;
    d = x[0].length;
    data = new Float64Array(n * d);
    for (let i = 0; i < n; i++) {
      const row = x[i];
      if (!Array.isArray(row) || row.length !== d || d === 0) {
        throw new ArgumentError(
          where,
          `${name} must be a rectangular number[][]: row 0 has ${d} entries, row ${i} has ${
            Array.isArray(row) ? row.length : String(row)
          }`,
        );
      }
      for (let j = 0; j < d; j++) {
        const v = row[j];
        if (typeof v !== "number" || !Number.isFinite(v)) {
          throw new ArgumentError(
            where,
            `${name}[${i}][${j}] must be a finite number, got ${v}`,
          );
        }
        data[i * d + j] = v;
      }
    }
  } else {
    const { matrix, created } = toMatrix(where, name, x);
    [n, d] = matrix.shape;
    data = Float64Array.from(matrix.dataSync());
    if (created) matrix.dispose();
  }
  if (n < minRows) {
    throw new ArgumentError(
      where,
      `${name} must have at least ${minRows} rows, got ${n}`,
    );
  }
  return { data, n, d };
}

// ---------------------------------------------------------------------------
// Frechet distance

/**
 * How negative an eigenvalue of a covariance may be, relative to its largest
 * eigenvalue, and still count as the round-off of a zero eigenvalue
 * (singular covariances are common: fewer samples than features). A
 * covariance computed in float32 carries errors of about 1e-7 of its
 * largest eigenvalue; anything below -1e-6 of it is not a covariance.
 */
const PSD_TOLERANCE = 1e-6;

/** A Gaussian fitted to feature vectors: mean [d] and row-major covariance [d * d]. */
interface Gaussian {
  mean: ArrayLike<number>;
  cov: Float64Array;
  d: number;
}

// Eigenvalues of a PSD matrix, with the rounding noise of its zero
// eigenvalues (about eps * largest, of either sign) set to exactly 0: the
// square root would amplify noise of 1e-16 into errors of 1e-8.
function psdEigen(m: Float64Array, d: number): JacobiEigen {
  const eig = jacobiEigen(m, d);
  const largest = Math.max(0, ...eig.values);
  const floor = 64 * Number.EPSILON * d * largest;
  eig.values.forEach((l, k) => {
    if (l <= floor) eig.values[k] = 0;
  });
  return eig;
}

// Square root of a symmetric PSD matrix: V sqrt(L) V^T. Clipping the tiny
// negative eigenvalues that rounding gives a singular covariance is what
// makes the Frechet distance robust where a general sqrtm returns complex junk.
function sqrtPSD(m: Float64Array, d: number): Float64Array {
  const { values, vectors } = psdEigen(m, d);
  const out = new Float64Array(d * d);
  for (let k = 0; k < d; k++) {
    const r = Math.sqrt(values[k]);
    if (r === 0) continue;
    for (let i = 0; i < d; i++) {
      const vik = vectors[i * d + k] * r;
      if (vik === 0) continue;
      for (let j = 0; j < d; j++) out[i * d + j] += vik * vectors[j * d + k];
    }
  }
  return out;
}

function matmul(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let k = 0; k < d; k++) {
      const aik = a[i * d + k];
      if (aik === 0) continue;
      for (let j = 0; j < d; j++) out[i * d + j] += aik * b[k * d + j];
    }
  }
  return out;
}

/** (m + m^T) / 2: removes the asymmetry that rounding leaves in a product. */
function symmetrize(m: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      out[i * d + j] = 0.5 * (m[i * d + j] + m[j * d + i]);
    }
  }
  return out;
}

/**
 * The Frechet distance |m1 - m2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)). C1 C2
 * is not symmetric, but S C2 S with S = C1^(1/2) is, and has the same
 * eigenvalues: a symmetric eigensolver suffices.
 */
function frechet(g1: Gaussian, g2: Gaussian): number {
  const d = g1.d;
  const s = sqrtPSD(g1.cov, d);
  const middle = symmetrize(matmul(matmul(s, g2.cov, d), s, d), d);
  let traceSqrt = 0;
  for (const l of psdEigen(middle, d).values) traceSqrt += Math.sqrt(l);
  let distance = -2 * traceSqrt;
  for (let i = 0; i < d; i++) {
    distance += (g1.mean[i] - g2.mean[i]) ** 2;
    distance += g1.cov[i * d + i] + g2.cov[i * d + i];
  }
  // Rounding can push a zero distance a hair below 0.
  return Math.max(0, distance);
}

function moments(x: Rows): Gaussian {
  const { data, n, d } = x;
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) mean[j] += data[i * d + j];
  }
  for (let j = 0; j < d; j++) mean[j] /= n;
  const cov = new Float64Array(d * d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) row[j] = data[i * d + j] - mean[j];
    for (let j = 0; j < d; j++) {
      const rj = row[j];
      for (let k = j; k < d; k++) cov[j * d + k] += rj * row[k];
    }
  }
  // Unbiased (n - 1), as numpy.cov and the usual FID code use.
  for (let j = 0; j < d; j++) {
    for (let k = j; k < d; k++) {
      cov[j * d + k] /= n - 1;
      cov[k * d + j] = cov[j * d + k];
    }
  }
  return { mean, cov, d };
}

function checkGaussian(
  where: string,
  name: string,
  mean: ArrayLike<number>,
  cov: ArrayLike<number>,
  d: number,
): Gaussian {
  if (!mean || mean.length !== d) {
    throw new ArgumentError(
      where,
      `${name} mean must have ${d} entries, got ${mean?.length}`,
    );
  }
  for (let i = 0; i < d; i++) checkNumber(where, `${name} mean[${i}]`, mean[i]);
  if (!cov || cov.length !== d * d) {
    throw new ArgumentError(
      where,
      `${name} covariance must hold d * d = ${
        d * d
      } numbers (row-major), got ${cov?.length}`,
    );
  }
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      const v = cov[i * d + j];
      const w = cov[j * d + i];
      if (!Number.isFinite(v)) {
        throw new ArgumentError(
          where,
          `${name} covariance[${i}][${j}] must be finite, got ${v}`,
        );
      }
      if (Math.abs(v - w) > 1e-9 * (Math.abs(v) + Math.abs(w)) + 1e-300) {
        throw new ArgumentError(
          where,
          `${name} covariance must be symmetric, but [${i}][${j}] = ${v} and [${j}][${i}] = ${w}`,
        );
      }
    }
    if (cov[i * d + i] < 0) {
      throw new ArgumentError(
        where,
        `${name} covariance has a negative variance at [${i}][${i}]: ${
          cov[i * d + i]
        }`,
      );
    }
  }
  const c = Float64Array.from(cov);
  const { values } = jacobiEigen(c, d);
  const largest = Math.max(0, ...values.map(Math.abs));
  if (values[0] < -PSD_TOLERANCE * largest) {
    throw new ArgumentError(
      where,
      `${name} covariance is not positive semi-definite: it has the eigenvalue ${
        values[0]
      } (largest ${
        values[d - 1]
      }; round-off down to -${PSD_TOLERANCE} of the largest is allowed)`,
    );
  }
  return { mean, cov: c, d };
}

/**
 * The Frechet (2-Wasserstein) distance between N(mean1, cov1) and
 * N(mean2, cov2): |mean1 - mean2|^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2)).
 * Covariances are row-major d x d arrays, symmetric positive semi-definite:
 * eigenvalues down to -1e-6 times the largest are taken as round-off of a
 * singular covariance (and count as 0); a more negative one is an error.
 * Returns a number.
 *
 * @example
 * frechetDistanceGaussians([0, 0], [1, 0, 0, 4], [3, 4], [1, 0, 0, 4]); // 25
 * @throws ArgumentError for a covariance that is not symmetric PSD
 */
export function frechetDistanceGaussians(
  mean1: ArrayLike<number>,
  cov1: ArrayLike<number>,
  mean2: ArrayLike<number>,
  cov2: ArrayLike<number>,
): number {
  const where = "frechetDistanceGaussians";
  const d = mean1?.length ?? 0;
  if (d === 0) {
    throw new ArgumentError(where, "mean1 must be a non-empty array");
  }
  return frechet(
    checkGaussian(where, "first", mean1, cov1, d),
    checkGaussian(where, "second", mean2, cov2, d),
  );
}

/**
 * The Frechet distance between two sets of feature vectors ([n, d] and
 * [m, d], n, m >= 2): fit a Gaussian (mean, unbiased covariance) to each set
 * and compare them with `frechetDistanceGaussians`. With Inception features
 * this is the FID; here any feature extractor can be used (e.g.
 * `classifierFeatures`). 0 for identical sets; lower is better. Returns a
 * number.
 */
export function frechetDistance(
  featuresA: Features,
  featuresB: Features,
): number {
  const where = "frechetDistance";
  const a = readRows(where, "featuresA", featuresA, 2);
  const b = readRows(where, "featuresB", featuresB, 2);
  if (a.d !== b.d) {
    throw new ArgumentError(
      where,
      `featuresA and featuresB must have the same width, got ${a.d} and ${b.d}`,
    );
  }
  // Sample covariances are PSD by construction: no eigenvalue check needed.
  return frechet(moments(a), moments(b));
}

// ---------------------------------------------------------------------------
// Precision and recall

function squaredDistance(
  a: Float64Array,
  i: number,
  b: Float64Array,
  j: number,
  d: number,
): number {
  let s = 0;
  const oi = i * d;
  const oj = j * d;
  for (let t = 0; t < d; t++) {
    const diff = a[oi + t] - b[oj + t];
    s += diff * diff;
  }
  return s;
}

// Squared distance from each point to its k-th nearest other point of the same set.
function kthNeighbourRadii(x: Rows, k: number): Float64Array {
  const { data, n, d } = x;
  const radii = new Float64Array(n);
  const best = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    best.fill(Infinity);
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const s = squaredDistance(data, i, data, j, d);
      if (s < best[k - 1]) {
        // Insertion into the sorted list of the k smallest.
        let p = k - 1;
        while (p > 0 && best[p - 1] > s) {
          best[p] = best[p - 1];
          p--;
        }
        best[p] = s;
      }
    }
    radii[i] = best[k - 1];
  }
  return radii;
}

/**
 * Each set's manifold is the union of balls around its points, reaching
 * each point's k-th nearest neighbour. Precision: the share of fakes inside
 * the real manifold; recall: the share of reals inside the fake manifold.
 */
function knnPrecisionRecall(
  real: Rows,
  fake: Rows,
  k: number,
): { precision: number; recall: number } {
  const realRadii = kthNeighbourRadii(real, k); // squared radii
  const fakeRadii = kthNeighbourRadii(fake, k);
  const fakeInside = new Uint8Array(fake.n); // fake j lies in some real ball
  const realInside = new Uint8Array(real.n); // real i lies in some fake ball
  for (let i = 0; i < real.n; i++) {
    for (let j = 0; j < fake.n; j++) {
      const s = squaredDistance(real.data, i, fake.data, j, real.d);
      if (s <= realRadii[i]) fakeInside[j] = 1;
      if (s <= fakeRadii[j]) realInside[i] = 1;
    }
  }
  const share = (x: Uint8Array) => x.reduce((s, v) => s + v, 0) / x.length;
  return { precision: share(fakeInside), recall: share(realInside) };
}

function checkK(where: string, options: { k?: number } | undefined): number {
  const { k = 3 } = checkOptions(where, options, ["k"]);
  return checkInteger(where, "k", k, { min: 1 });
}

/**
 * The k-NN ball radii precision and recall use: for each row of `features`
 * ([n, d], n > k), the Euclidean distance to its k-th nearest other row.
 * Useful to spot outliers, whose large balls can vouch for many unrelated
 * samples. Returns a plain array.
 */
export function knnRadii(
  features: Features,
  options: { k?: number } = {},
): number[] {
  const where = "knnRadii";
  const k = checkK(where, options);
  const x = readRows(where, "features", features, k + 1);
  return Array.from(kthNeighbourRadii(x, k), Math.sqrt);
}

/**
 * Improved precision and recall (Kynkaanniemi et al. 2019). Each set
 * approximates its manifold by the union of balls around its points, each
 * ball reaching the point's k-th nearest neighbour in the same set.
 * Precision: the share of `fake` points inside the real manifold (are the
 * samples realistic?). Recall: the share of `real` points inside the fake
 * manifold (does the model cover the data?). Both are 1 for identical sets.
 * Inputs [n, d] and [m, d] with n, m > k. Returns plain numbers.
 *
 * @example
 * precisionRecall(realFeatures, fakeFeatures, { k: 3 }); // { precision, recall }
 */
export function precisionRecall(
  real: Features,
  fake: Features,
  options: { k?: number } = {},
): { precision: number; recall: number } {
  const where = "precisionRecall";
  const k = checkK(where, options);
  const r = readRows(where, "real", real, k + 1);
  const f = readRows(where, "fake", fake, k + 1);
  if (r.d !== f.d) {
    throw new ArgumentError(
      where,
      `real and fake must have the same width, got ${r.d} and ${f.d}`,
    );
  }
  return knnPrecisionRecall(r, f, k);
}

// ---------------------------------------------------------------------------
// Within-class diversity

/** Mean Euclidean distance over the pairs i < j of the listed rows (a set's spread). */
function meanPairwiseDistance(x: Rows, rows: number[]): number {
  let sum = 0;
  for (let a = 0; a < rows.length; a++) {
    for (let b = a + 1; b < rows.length; b++) {
      sum += Math.sqrt(squaredDistance(x.data, rows[a], x.data, rows[b], x.d));
    }
  }
  return sum / (rows.length * (rows.length - 1) / 2);
}

/**
 * Within-class diversity: for each class, the mean Euclidean distance
 * between two different feature vectors of that class, and their mean over
 * the classes present. A conditional GAN that ignores its noise gives
 * nearly the same sample for every z of a class: its diversity collapses
 * towards 0 while the real data's stays large, so the ratio of the two
 * measures collapse inside the classes, which precision, recall and the
 * Frechet distance of all classes together can hide. `labels` are integer
 * classes, one per row ([n] tensor or array); classes with fewer than 2
 * rows are skipped (NaN in `perClass`). Returns plain numbers.
 *
 * @example
 * const real = withinClassDiversity(testFeatures, test.labels);
 * const fake = withinClassDiversity(sampleFeatures, sampleLabels);
 * fake.mean / real.mean; // 1 when G varies as much as the data
 */
export function withinClassDiversity(
  features: Features,
  labels: tf.Tensor | ArrayLike<number>,
): { perClass: number[]; mean: number } {
  const where = "withinClassDiversity";
  const x = readRows(where, "features", features, 2);
  const ys = readLabels(where, labels, x.n);
  const byClass = new Map<number, number[]>();
  ys.forEach((y, i) => {
    if (!byClass.has(y)) byClass.set(y, []);
    byClass.get(y)!.push(i);
  });
  const numClasses = Math.max(...ys) + 1;
  const perClass = Array.from({ length: numClasses }, (_, c) => {
    const rows = byClass.get(c) ?? [];
    return rows.length < 2 ? NaN : meanPairwiseDistance(x, rows);
  });
  const present = perClass.filter((v) => !Number.isNaN(v));
  if (present.length === 0) {
    throw new ArgumentError(where, "no class has two or more rows");
  }
  const mean = present.reduce((a, b) => a + b, 0) / present.length;
  return { perClass, mean };
}

function readLabels(where: string, labels: unknown, n: number): number[] {
  let ys: number[];
  if (labels instanceof Object && "dataSync" in labels) {
    const t = labels as tf.Tensor;
    if (t.rank !== 1) {
      throw new ArgumentError(
        where,
        `labels must be a rank-1 tensor, got shape [${t.shape}]`,
      );
    }
    ys = Array.from(t.dataSync());
  } else if (
    labels !== null && typeof labels === "object" && "length" in labels
  ) {
    ys = Array.from(labels as ArrayLike<number>);
  } else {
    throw new ArgumentError(
      where,
      "labels must be a rank-1 tensor or an array of classes",
    );
  }
  if (ys.length !== n) {
    throw new ArgumentError(
      where,
      `labels must have one class per feature row (${n}), got ${ys.length}`,
    );
  }
  const bad = ys.findIndex((y) => !Number.isInteger(y) || y < 0);
  if (bad >= 0) {
    throw new ArgumentError(
      where,
      `labels must be integers >= 0, but labels[${bad}] is ${ys[bad]}`,
    );
  }
  return ys;
}

// ---------------------------------------------------------------------------
// Inception Score

/**
 * The Inception Score exp(E_x KL(p(y|x) || p(y))) from class probabilities
 * [n, C] (rows: a classifier's softmax on generated samples; p(y) is their
 * mean). It is high when each sample is classified confidently (sharp) and
 * the classes are used evenly (diverse); it lies in [1, C]. Returns a number.
 */
export function inceptionScore(probs: Features): number {
  const where = "inceptionScore";
  const p = readRows(where, "probs", probs, 1);
  const { data, n, d } = p;
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let c = 0; c < d; c++) {
      const v = data[i * d + c];
      if (v < 0) {
        throw new ArgumentError(
          where,
          `probs[${i}][${c}] is ${v}; probabilities must be >= 0`,
        );
      }
      sum += v;
    }
    if (Math.abs(sum - 1) > 1e-3) {
      throw new ArgumentError(
        where,
        `each row of probs must sum to 1 (apply softmax first), but row ${i} sums to ${sum}`,
      );
    }
  }
  const marginal = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < d; c++) marginal[c] += data[i * d + c] / n;
  }
  let kl = 0;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < d; c++) {
      const v = data[i * d + c];
      // 0 log 0 = 0; v > 0 implies marginal[c] > 0.
      if (v > 0) kl += v * (Math.log(v) - Math.log(marginal[c]));
    }
  }
  return Math.exp(kl / n);
}
