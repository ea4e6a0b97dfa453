/**
 * Vector quantization: the nearest-codeword map and k-means (Lloyd's
 * algorithm with k-means++ seeding), vectorized over whole batches so that
 * Fashion-MNIST-sized inputs (10k x 784, K up to 256) take seconds.
 *
 * Each mechanism is a short core function (what notebook 01 shows:
 * `nearestCentroid`, `updateCentroids`, `lloyd`, `kmeansPlusPlus`) behind a
 * checked public wrapper (`quantize`, `kmeans`).
 *
 * Every returned tensor belongs to the caller, who disposes it (e.g.
 * `tf.dispose([result.centroids, result.assignments])`).
 *
 * ```ts
 * const { centroids, assignments, inertia } = kmeans(points, 3, { seed: 0 });
 * const { indices, quantized } = quantize(newPoints, centroids);
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkChoice,
  checkInteger,
  checkNumber,
  checkOptions,
  toMatrix,
} from "./validate.ts";
import { type Rng, rngOrStream, type Seed } from "./random.ts";

/** The result of `quantize`: two tensors the caller disposes. */
export interface Quantized {
  /** int32 [n]: index of the nearest codebook row of each data row. */
  indices: tf.Tensor1D;
  /** float32 [n, d]: the nearest codebook row itself (`codebook[indices]`). */
  quantized: tf.Tensor2D;
}

/**
 * The assignment step: the index of the nearest centroid of every row of
 * `x`, z_i = argmin_k ||x_i - c_k||^2, for the whole batch at once.
 */
function nearestCentroid(x: tf.Tensor2D, centroids: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    // ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2, and ||x||^2 is the same for
    // every k, so it cannot change the argmin. (Plain matMul with the
    // transposed centroids: transposed matMuls are slow on wasm.)
    const scores = centroids.square().sum(1)
      .sub(tf.matMul(x, centroids.transpose()).mul(2));
    // Identical centroids score bitwise the same; argMin keeps the first.
    return tf.argMin(scores, 1) as tf.Tensor1D;
  });
}

/**
 * Rows `codebook[indices]` as a matMul with a one-hot matrix: exact (products
 * with 0 and 1) and about ten times faster than `tf.gather` on wasm.
 */
function lookup(codebook: tf.Tensor2D, indices: tf.Tensor1D): tf.Tensor2D {
  return tf.tidy(() =>
    tf.matMul(oneHotFloat(indices, codebook.shape[0]), codebook)
  );
}

/** float32 one-hot [n, k]; tf.oneHot refuses depth 1, which K = 1 needs. */
function oneHotFloat(indices: tf.Tensor1D, k: number): tf.Tensor2D {
  return k === 1
    ? tf.ones([indices.shape[0], 1])
    : tf.oneHot(indices, k).toFloat() as tf.Tensor2D;
}

/**
 * Vector quantization: maps each row of `data` to its nearest codebook row
 * (squared Euclidean distance). Ties go to the lowest index.
 *
 * ```ts
 * const { indices, quantized } = quantize([[0, 0], [3, 3]], [[0, 1], [4, 4]]);
 * // indices [0, 1], quantized [[0, 1], [4, 4]]
 * tf.dispose([indices, quantized]);
 * ```
 *
 * @param data float32 [n, d] tensor or rectangular `number[][]` (any batch of vectors)
 * @param codebook float32 [K, d] tensor or `number[][]`: the K codewords
 * @returns `indices` (int32 [n]) and `quantized` (float32 [n, d]), tensors the caller disposes
 * @throws ArgumentError on ragged arrays, NaN/Infinity, or a codebook whose width is not d
 */
export function quantize(
  data: tf.Tensor2D | number[][],
  codebook: tf.Tensor2D | number[][],
): Quantized {
  const where = "quantize";
  const x = toMatrix(where, "data", data);
  let c: { matrix: tf.Tensor2D; created: boolean } | undefined;
  try {
    c = toMatrix(where, "codebook", codebook);
    const d = x.matrix.shape[1];
    if (c.matrix.shape[1] !== d) {
      throw new ArgumentError(
        where,
        `codebook rows must have the data's width ${d}, got codebook of shape [${
          c.matrix.shape.join(", ")
        }]`,
      );
    }
    const cb = c.matrix;
    return tf.tidy(() => {
      const indices = nearestCentroid(x.matrix, cb);
      return { indices, quantized: lookup(cb, indices) };
    });
  } finally {
    if (x.created) x.matrix.dispose();
    if (c?.created) c.matrix.dispose();
  }
}

/** Options for `kmeans`. */
export interface KMeansOptions {
  /**
   * Seeding: `"kmeans++"` (default; greedy k-means++ as in scikit-learn:
   * each new centre is the best of 2 + floor(ln k) candidates drawn with
   * probability proportional to D(x)^2), `"random"` (k distinct data rows),
   * or explicit starting centroids as a [k, d] tensor or `number[][]` (one
   * run; e.g. to continue from an earlier codebook).
   */
  init?: "kmeans++" | "random" | tf.Tensor2D | number[][];
  /**
   * Number of restarts; the run with the lowest inertia wins. Default: 1 for
   * k-means++ and 10 for random seeding (scikit-learn's `n_init="auto"`);
   * explicit starting centroids give exactly one run.
   */
  nInit?: number;
  /** Maximum Lloyd iterations (assignment steps) per run. Default 300. */
  maxIter?: number;
  /**
   * Convergence tolerance, relative to the data: a run stops when the
   * summed squared centroid shift is at most `tol` times the mean per-feature
   * variance (scikit-learn's rule), or when no assignment changes. Default 1e-4.
   */
  tol?: number;
  /**
   * A number or an `Rng`. Default: the package's shared stream
   * (`rngOrStream`), so two unseeded calls differ.
   */
  seed?: Seed;
}

const KMEANS_OPTIONS = ["init", "nInit", "maxIter", "tol", "seed"] as const;

/** The result of `kmeans`. The two tensors belong to the caller. */
export interface KMeansResult {
  /** float32 [k, d] tensor: the final centroids. */
  centroids: tf.Tensor2D;
  /** int32 [n] tensor: index of the nearest final centroid of each row. */
  assignments: tf.Tensor1D;
  /** Sum over rows of the squared distance to the assigned centroid (a number). */
  inertia: number;
  /**
   * The objective (inertia) after each assignment step of the best run,
   * a plain array; non-increasing, its last entry is `inertia`.
   */
  history: number[];
}

// ---------------------------------------------------------------------------
// Seeding

/** A 32-bit hash of one row, from the float bits. */
function hashRow(bits: Uint32Array, start: number, d: number): number {
  let h = 0x811c9dc5;
  for (let j = 0; j < d; j++) {
    h = Math.imul(h ^ bits[start + j], 0x01000193);
  }
  return h >>> 0;
}

/**
 * Counts distinct rows, stopping as soon as `atLeast` are found (usually
 * after about `atLeast` rows, so the check is cheap on large data).
 */
function countDistinctRows(
  values: Float32Array,
  n: number,
  d: number,
  atLeast: number,
): number {
  const bits = new Uint32Array(values.buffer, values.byteOffset, n * d);
  const buckets = new Map<number, number[]>();
  let distinct = 0;
  for (let i = 0; i < n && distinct < atLeast; i++) {
    const h = hashRow(bits, i * d, d);
    const rows = buckets.get(h);
    const same = (r: number) => {
      for (let j = 0; j < d; j++) {
        if (values[r * d + j] !== values[i * d + j]) return false;
      }
      return true;
    };
    if (rows === undefined) {
      buckets.set(h, [i]);
      distinct++;
    } else if (!rows.some(same)) {
      rows.push(i);
      distinct++;
    }
  }
  return distinct;
}

/**
 * Squared distances [n, m] between the rows of `x` (with their squared
 * norms `xNorms`) and the rows of `c`, by the expansion, clipped at 0
 * (rounding can make a tiny distance negative).
 */
function squaredDistances(
  x: tf.Tensor2D,
  xNorms: tf.Tensor1D,
  c: tf.Tensor2D,
): tf.Tensor2D {
  return tf.tidy(() =>
    xNorms.reshape([-1, 1]).sub(tf.matMul(x, c.transpose()).mul(2))
      .add(c.square().sum(1)).relu() as tf.Tensor2D
  );
}

/**
 * k-means++ seeding (greedy, as scikit-learn): the first centre is a random
 * row; each next one is drawn with probability proportional to D(x)^2, the
 * squared distance to the nearest centre so far, which spreads the centres
 * over the data. Of 2 + floor(ln k) such candidates the one that leaves the
 * smallest total D(x)^2 is kept. Returns k row indices.
 */
function kmeansPlusPlus(
  x: tf.Tensor2D,
  xNorms: tf.Tensor1D,
  k: number,
  rng: Rng,
): number[] {
  const trials = 2 + Math.floor(Math.log(k));
  const chosen = [rng.int(x.shape[0])];
  // [n, 1]: D(x)^2, each row's squared distance to its nearest centre.
  let closest = squaredDistances(x, xNorms, tf.gather(x, chosen));
  while (chosen.length < k) {
    const candidates = drawRows(closest.dataSync(), trials, rng);
    const next = tf.tidy(() => {
      const dist = squaredDistances(x, xNorms, tf.gather(x, candidates));
      // D(x)^2 if each candidate joined the centres; keep the best total.
      const d2 = tf.minimum(dist, closest);
      const best = tf.argMin(d2.sum(0)).dataSync()[0];
      return { best, closest: d2.slice([0, best], [-1, 1]) as tf.Tensor2D };
    });
    closest.dispose();
    closest = next.closest;
    chosen.push(candidates[next.best]);
  }
  closest.dispose();
  return chosen;
}

/** `count` row indices drawn with probability proportional to `weights`. */
function drawRows(
  weights: ArrayLike<number>,
  count: number,
  rng: Rng,
): number[] {
  try {
    return Array.from({ length: count }, () => rng.categorical(weights));
  } catch {
    // kmeans checked for k distinct rows and scaled the data so that
    // squared distances are finite: this is a guard, not an expected path.
    throw new Error(
      "kmeans: k-means++ found no row away from the centres chosen so far " +
        "(squared distances all zero or not finite)",
    );
  }
}

/**
 * k distinct rows by value, not just by index (a duplicate centre would
 * start life as an empty cluster), in a random order.
 */
function randomDistinctRows(
  values: Float32Array,
  n: number,
  d: number,
  k: number,
  rng: Rng,
): number[] {
  const chosen: number[] = [];
  const seen = new Set<string>();
  for (const i of rng.permutation(n)) {
    const key = values.subarray(i * d, (i + 1) * d).join(",");
    if (!seen.has(key)) {
      seen.add(key);
      chosen.push(i);
      if (chosen.length === k) break;
    }
  }
  return chosen;
}

// ---------------------------------------------------------------------------
// Lloyd's algorithm

/** One assignment step: nearest centroids and every row's squared distance to its own. */
interface Assignment {
  assignments: tf.Tensor1D;
  distances: tf.Tensor1D;
}

function assignStep(x: tf.Tensor2D, centroids: tf.Tensor2D): Assignment {
  return tf.tidy(() => {
    const assignments = nearestCentroid(x, centroids);
    // Recomputed directly (not by the expansion) so that the objective
    // carries no cancellation error.
    const distances = tf.squaredDifference(x, lookup(centroids, assignments))
      .sum(1) as tf.Tensor1D;
    return { assignments, distances };
  });
}

/**
 * The update step: every centroid moves to the mean of the rows assigned to
 * it, mu_k = (1 / n_k) sum_{i: z_i = k} x_i, the best centroid for fixed
 * assignments. `distances` (each row's squared distance to its old centroid)
 * picks the rows that restart empty clusters.
 */
function updateCentroids(
  x: tf.Tensor2D,
  assignments: tf.Tensor1D,
  distances: tf.Tensor1D,
  k: number,
): tf.Tensor2D {
  return tf.tidy(() => {
    const sums = tf.unsortedSegmentSum(x, assignments, k);
    const ones = tf.onesLike(assignments).toFloat();
    const counts = tf.unsortedSegmentSum(ones, assignments, k);
    // max(n_k, 1): an empty cluster gives 0 here, not 0/0, and restarts below.
    const means = sums.div(counts.maximum(1).reshape([k, 1])) as tf.Tensor2D;
    return restartEmptyClusters(x, means, counts.dataSync(), distances);
  });
}

/**
 * Moves each empty cluster's centroid onto one of the rows farthest from
 * their current centroid (largest distance first), so none stays empty or
 * becomes NaN.
 */
function restartEmptyClusters(
  x: tf.Tensor2D,
  means: tf.Tensor2D,
  counts: ArrayLike<number>,
  distances: tf.Tensor1D,
): tf.Tensor2D {
  const k = means.shape[0];
  const empty: number[] = [];
  for (let j = 0; j < k; j++) if (counts[j] === 0) empty.push(j);
  if (empty.length === 0) return means;
  return tf.tidy(() => {
    const far = tf.topk(distances, Math.min(empty.length, x.shape[0])).indices
      .dataSync();
    const mask = new Float32Array(k);
    const pick = new Int32Array(k);
    empty.forEach((j, e) => {
      mask[j] = 1;
      pick[j] = far[e % far.length];
    });
    const m = tf.tensor2d(mask, [k, 1]);
    return means.mul(tf.scalar(1).sub(m)).add(tf.gather(x, pick).mul(m));
  });
}

/** Sum of a tensor's values in float64 (plain number). */
function total(t: tf.Tensor): number {
  const v = t.dataSync();
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return s;
}

/** True when any row changed its cluster. */
function anyChanged(before: tf.Tensor1D, after: tf.Tensor1D): boolean {
  return tf.tidy(() => tf.notEqual(before, after).any().dataSync()[0] !== 0);
}

/**
 * Lloyd's algorithm from `start`: assign every row to its nearest centroid,
 * move every centroid to the mean of its rows, repeat. Neither step can
 * raise the inertia. Stops after `maxIter` assignment steps, when no
 * assignment changes, or when the centroids moved less than `shiftTol`.
 * Always ends on an assignment step, so centroids, assignments and the
 * last inertia in `history` belong together.
 */
function lloyd(
  x: tf.Tensor2D,
  start: tf.Tensor2D,
  maxIter: number,
  shiftTol: number,
): Omit<KMeansResult, "inertia"> {
  const k = start.shape[0];
  let centroids = start.clone();
  let step = assignStep(x, centroids);
  const history = [total(step.distances)];
  for (let it = 1; it < maxIter; it++) {
    const next = updateCentroids(x, step.assignments, step.distances, k);
    const shift = tf.tidy(() => total(next.sub(centroids).square().sum()));
    const previous = step;
    tf.dispose([centroids, previous.distances]);
    centroids = next;
    step = assignStep(x, centroids);
    history.push(total(step.distances));
    const changed = anyChanged(previous.assignments, step.assignments);
    previous.assignments.dispose();
    if (shift <= shiftTol || !changed) break;
  }
  step.distances.dispose();
  return { centroids, assignments: step.assignments, history };
}

// ---------------------------------------------------------------------------
// The public function

/**
 * Power of two that brings the data's largest magnitude near 1 when its
 * squares would overflow (or underflow) float32, else 1. Scaling by a power
 * of two is exact, and k-means commutes with scaling.
 */
function exactScale(values: Float32Array): number {
  let largest = 0;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]);
    if (a > largest) largest = a;
  }
  const safe = largest === 0 || (largest < 2 ** 50 && largest > 2 ** -50);
  return safe ? 1 : 2 ** -Math.round(Math.log2(largest));
}

/**
 * k-means clustering by Lloyd's algorithm: alternately assign each row to
 * its nearest centroid and move each centroid to the mean of its rows, which
 * never increases the inertia (sum of squared distances to the assigned
 * centroids). The best of `nInit` seeded restarts is returned.
 *
 * An empty cluster (no row assigned) is restarted at the row farthest from
 * its current centroid (several empty clusters take the farthest rows in
 * decreasing order), instead of producing NaN. Data whose squares would
 * overflow float32 (values beyond ~1e15) are clustered at an exact
 * power-of-two scale and scaled back.
 *
 * ```ts
 * const r = kmeans(points, 3, { seed: 0 });
 * console.log(r.inertia, r.history);
 * tf.dispose([r.centroids, r.assignments]);
 * ```
 *
 * @param data float32 [n, d] tensor or rectangular `number[][]`
 * @param k number of clusters: a positive integer, at most the number of distinct rows
 * @param options see `KMeansOptions`
 * @returns centroids and assignments as tensors (the caller disposes them:
 *   `tf.dispose([r.centroids, r.assignments])`), inertia and history as plain numbers
 * @throws ArgumentError on bad k, NaN/Infinity, ragged arrays or bad options
 */
export function kmeans(
  data: tf.Tensor2D | number[][],
  k: number,
  options: KMeansOptions = {},
): KMeansResult {
  const where = "kmeans";
  const o = checkOptions(where, options, KMEANS_OPTIONS);
  const explicit = Array.isArray(o.init) || o.init instanceof tf.Tensor;
  const init = explicit ? "given" : checkChoice(
    where,
    "init",
    o.init ?? "kmeans++",
    [
      "kmeans++",
      "random",
    ] as const,
  );
  const nInit = checkInteger(
    where,
    "nInit",
    o.nInit ?? (init === "random" ? 10 : 1),
    { min: 1, max: 1000 },
  );
  const maxIter = checkInteger(where, "maxIter", o.maxIter ?? 300, { min: 1 });
  const tol = checkNumber(where, "tol", o.tol ?? 1e-4, { min: 0 });
  const rng = rngOrStream(o.seed, where);
  checkInteger(where, "k", k, { min: 1 });
  const owned: tf.Tensor[] = [];
  try {
    const given = toMatrix(where, "data", data);
    if (given.created) owned.push(given.matrix);
    const [n, d] = given.matrix.shape;
    if (k > n) {
      throw new ArgumentError(
        where,
        `k must be at most the number of data rows (${n}), got ${k}`,
      );
    }
    let start: tf.Tensor2D | null = null;
    if (explicit) {
      const s = toMatrix(where, "init", o.init);
      if (s.created) owned.push(s.matrix);
      if (s.matrix.shape[0] !== k || s.matrix.shape[1] !== d) {
        throw new ArgumentError(
          where,
          `init centroids must have shape [${k}, ${d}], got [${
            s.matrix.shape.join(", ")
          }]`,
        );
      }
      start = s.matrix;
    }
    const scale = exactScale(given.matrix.dataSync() as Float32Array);
    const x = scale === 1
      ? given.matrix
      : given.matrix.mul(scale) as tf.Tensor2D;
    if (x !== given.matrix) owned.push(x);
    if (start && scale !== 1) owned.push(start = start.mul(scale));
    const values = x.dataSync() as Float32Array;
    const distinct = countDistinctRows(values, n, d, k);
    if (distinct < k) {
      throw new ArgumentError(
        where,
        `k must be at most the number of distinct data rows (${distinct}), got ${k}`,
      );
    }
    const best = bestOfRuns(x, k, values, {
      init: init as "kmeans++" | "random",
      start,
      runs: start ? 1 : nInit,
      maxIter,
      tol,
      rng,
    });
    if (scale === 1) return best;
    const centroids = tf.tidy(() => best.centroids.div(scale) as tf.Tensor2D);
    best.centroids.dispose();
    const unscale = (v: number) => v / (scale * scale);
    return {
      centroids,
      assignments: best.assignments,
      inertia: unscale(best.inertia),
      history: best.history.map(unscale),
    };
  } finally {
    tf.dispose(owned);
  }
}

/** Runs Lloyd `runs` times from fresh seedings (or once from `start`); keeps the lowest inertia. */
function bestOfRuns(
  x: tf.Tensor2D,
  k: number,
  values: Float32Array,
  { init, start, runs, maxIter, tol, rng }: {
    init: "kmeans++" | "random";
    start: tf.Tensor2D | null;
    runs: number;
    maxIter: number;
    tol: number;
    rng: Rng;
  },
): KMeansResult {
  const [n, d] = x.shape;
  const xNorms = tf.tidy(() => x.square().sum(1) as tf.Tensor1D);
  // scikit-learn's tolerance: relative to the mean per-feature variance.
  const shiftTol = tol *
    tf.tidy(() => tf.moments(x, 0).variance.mean().dataSync()[0]);
  let best: KMeansResult | null = null;
  try {
    for (let r = 0; r < runs; r++) {
      const from = start ?? tf.tidy(() =>
        tf.gather(
          x,
          init === "random"
            ? randomDistinctRows(values, n, d, k, rng)
            : kmeansPlusPlus(x, xNorms, k, rng),
        ) as tf.Tensor2D
      );
      let run: KMeansResult;
      try {
        const r = lloyd(x, from, maxIter, shiftTol);
        run = { ...r, inertia: r.history.at(-1)! };
      } finally {
        if (from !== start) from.dispose();
      }
      if (best === null || run.inertia < best.inertia) {
        if (best) tf.dispose([best.centroids, best.assignments]);
        best = run;
      } else {
        tf.dispose([run.centroids, run.assignments]);
      }
    }
  } catch (e) {
    if (best) tf.dispose([best.centroids, best.assignments]);
    throw e;
  } finally {
    xNorms.dispose();
  }
  return best!;
}
