/**
 * Vector quantization: the nearest-codeword map and k-means (Lloyd's
 * algorithm with k-means++ seeding), vectorized over whole batches so that
 * Fashion-MNIST-sized inputs (10k x 784, K up to 256) take seconds.
 *
 * Squared distances use ||x||^2 - 2 x.c + ||c||^2 with one plain matMul
 * against the transposed codebook (computed once per call: transposed
 * matMuls are slow on wasm). The centroid update sums the rows of each
 * cluster with `tf.unsortedSegmentSum`.
 *
 * Every returned tensor belongs to the caller, who disposes it (e.g.
 * `tf.dispose([result.centroids, result.assignments])`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkChoice,
  checkInteger,
  checkNumber,
  toMatrix,
} from "./validate.ts";
import { Rng, rngFrom, type Seed } from "./random.ts";

/** The result of `quantize`: two tensors the caller disposes. */
export interface Quantized {
  /** int32 [n]: index of the nearest codebook row of each data row. */
  indices: tf.Tensor1D;
  /** float32 [n, d]: the nearest codebook row itself (`codebook[indices]`). */
  quantized: tf.Tensor2D;
}

/**
 * Index of the nearest codebook row for each row of `x`. The ||x||^2 term
 * does not change the argmin, so it is left out; identical codebook rows get
 * bitwise-identical scores and `argMin` keeps the first (lowest index).
 */
function nearest(
  x: tf.Tensor2D,
  codebookT: tf.Tensor2D,
  codeNorms: tf.Tensor1D,
): tf.Tensor1D {
  return tf.tidy(() =>
    tf.argMin(codeNorms.sub(tf.matMul(x, codebookT).mul(2)), 1) as tf.Tensor1D
  );
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
      const indices = nearest(x.matrix, cb.transpose(), cb.square().sum(1));
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
  /** Maximum Lloyd iterations per run. Default 300. */
  maxIter?: number;
  /**
   * Convergence tolerance, relative to the data: a run stops when the
   * summed squared centroid shift is at most `tol` times the mean per-feature
   * variance (scikit-learn's rule), or when no assignment changes. Default 1e-4.
   */
  tol?: number;
  /** A number or an `Rng`. Default 0. */
  seed?: Seed;
}

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
 * Chooses k initial centre row indices. k-means++: each new centre is drawn
 * with probability proportional to the squared distance to the nearest
 * centre chosen so far (greedy: the best of several candidates by the
 * resulting potential). Requires at least k distinct rows (checked).
 */
function seedCentres(
  x: tf.Tensor2D,
  xNorms: tf.Tensor1D,
  k: number,
  init: "kmeans++" | "random",
  rng: Rng,
  values: Float32Array,
): number[] {
  const [n, d] = x.shape;
  if (init === "random") {
    // Distinct rows by value, not just by index: a duplicate centre would
    // start life as an empty cluster.
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
  const trials = 2 + Math.floor(Math.log(k));
  const first = rng.int(n);
  const chosen = [first];
  // Closest squared distance of every row to the chosen centres.
  let closest = tf.tidy(() => {
    const c = x.slice([first, 0], [1, d]);
    return xNorms.sub(tf.matMul(x, c.transpose()).reshape([n]).mul(2))
      .add(c.square().sum()).relu() as tf.Tensor1D;
  });
  try {
    for (let c = 1; c < k; c++) {
      const weights = closest.dataSync();
      let candidates: number[];
      try {
        candidates = Array.from(
          { length: trials },
          () => rng.categorical(weights),
        );
      } catch {
        // All remaining weight is zero: every row coincides with a chosen
        // centre. Cannot happen with >= k distinct rows, kept as a guard.
        throw new ArgumentError(
          "kmeans",
          `k must not exceed the number of distinct rows`,
        );
      }
      const next = tf.tidy(() => {
        const cand = tf.gather(x, candidates);
        const dist = xNorms.reshape([n, 1])
          .sub(tf.matMul(x, cand.transpose()).mul(2))
          .add(cand.square().sum(1)).relu();
        const potential = tf.minimum(dist, closest.reshape([n, 1]));
        const best = tf.argMin(potential.sum(0)).dataSync()[0];
        return {
          best,
          closest: potential.slice([0, best], [n, 1]).reshape([n]),
        };
      });
      closest.dispose();
      closest = next.closest as tf.Tensor1D;
      chosen.push(candidates[next.best]);
    }
  } finally {
    closest.dispose();
  }
  return chosen;
}

/** One Lloyd run from the given centre indices. */
function lloyd(
  x: tf.Tensor2D,
  start: tf.Tensor2D,
  maxIter: number,
  shiftTol: number,
): KMeansResult {
  const n = x.shape[0];
  const k = start.shape[0];
  // A private copy: the loop disposes superseded centroids.
  let centroids = start.clone();
  let assignments: tf.Tensor1D | null = null;
  const history: number[] = [];
  // Assignment step: indices plus every row's squared distance to its centre.
  const assign = (c: tf.Tensor2D) =>
    tf.tidy(() => {
      const idx = nearest(x, c.transpose(), c.square().sum(1));
      // Distances recomputed directly (not by the expansion) so the
      // objective carries no cancellation error.
      const sq = tf.squaredDifference(x, lookup(c, idx)).sum(1) as tf.Tensor1D;
      return { idx, sq };
    });
  const total = (sq: tf.Tensor1D) => {
    const v = sq.dataSync();
    let s = 0;
    for (let i = 0; i < v.length; i++) s += v[i];
    return s;
  };
  try {
    for (let it = 0; it < maxIter; it++) {
      const { idx, sq } = assign(centroids);
      history.push(total(sq));
      const changed = assignments === null ||
        tf.tidy(() => tf.notEqual(idx, assignments!).any().dataSync()[0]) !==
          0;
      assignments?.dispose();
      assignments = idx;
      // Stopping right after an assignment step keeps the assignments
      // consistent with the returned centroids.
      if (!changed || it === maxIter - 1) {
        sq.dispose();
        break;
      }
      // Update step: each centroid moves to the mean of its rows.
      const [next, shiftT] = tf.tidy(() => {
        const sums = tf.unsortedSegmentSum(x, idx, k);
        const counts = tf.unsortedSegmentSum(
          tf.onesLike(idx).toFloat(),
          idx,
          k,
        ).dataSync();
        const empty: number[] = [];
        for (let j = 0; j < k; j++) if (counts[j] === 0) empty.push(j);
        let next = sums.div(
          tf.tensor2d(Array.from(counts, (c) => Math.max(c, 1)), [k, 1]),
        ) as tf.Tensor2D;
        if (empty.length > 0) {
          // Re-seed each empty cluster with one of the rows farthest from
          // their current centre (largest first), so no centroid is 0/0.
          const far = tf.topk(sq, Math.min(empty.length, n)).indices
            .dataSync();
          const mask = new Float32Array(k);
          const pick = new Int32Array(k);
          empty.forEach((j, e) => {
            mask[j] = 1;
            pick[j] = far[e % far.length];
          });
          const m = tf.tensor2d(mask, [k, 1]);
          next = next.mul(tf.scalar(1).sub(m)).add(tf.gather(x, pick).mul(m));
        }
        return [next, next.sub(centroids).square().sum()];
      }) as [tf.Tensor2D, tf.Scalar];
      sq.dispose();
      const shift = shiftT.dataSync()[0];
      shiftT.dispose();
      centroids.dispose();
      centroids = next;
      if (shift <= shiftTol) {
        // Converged: one last assignment step so that centroids,
        // assignments and inertia belong together.
        const last = assign(centroids);
        history.push(total(last.sq));
        last.sq.dispose();
        assignments.dispose();
        assignments = last.idx;
        break;
      }
    }
    return {
      centroids,
      assignments: assignments!,
      inertia: history[history.length - 1],
      history,
    };
  } catch (e) {
    centroids.dispose();
    assignments?.dispose();
    throw e;
  }
}

/**
 * k-means clustering by Lloyd's algorithm: alternately assign each row to
 * its nearest centroid and move each centroid to the mean of its rows, which
 * never increases the inertia (sum of squared distances to the assigned
 * centroids). The best of `nInit` seeded restarts is returned.
 *
 * An empty cluster (no row assigned) is re-seeded with the row farthest from
 * its current centroid (several empty clusters take the farthest rows in
 * decreasing order), instead of producing NaN.
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
  const explicit = Array.isArray(options.init) ||
    options.init instanceof tf.Tensor;
  const init = explicit ? "given" : checkChoice(
    where,
    "init",
    options.init ?? "kmeans++",
    ["kmeans++", "random"] as const,
  );
  const nInit = checkInteger(
    where,
    "nInit",
    options.nInit ?? (init === "random" ? 10 : 1),
    { min: 1 },
  );
  const maxIter = checkInteger(where, "maxIter", options.maxIter ?? 300, {
    min: 1,
  });
  const tol = checkNumber(where, "tol", options.tol ?? 1e-4, { min: 0 });
  if (
    options.seed !== undefined && !(options.seed instanceof Rng)
  ) checkNumber(where, "seed", options.seed);
  checkInteger(where, "k", k, { min: 1 });
  const { matrix: x, created } = toMatrix(where, "data", data);
  try {
    const [n, d] = x.shape;
    if (k > n) {
      throw new ArgumentError(
        where,
        `k must be at most the number of data rows (${n}), got ${k}`,
      );
    }
    const values = x.dataSync() as Float32Array;
    const distinct = countDistinctRows(values, n, d, k);
    if (distinct < k) {
      throw new ArgumentError(
        where,
        `k must be at most the number of distinct data rows (${distinct}), got ${k}`,
      );
    }
    let given: tf.Tensor2D | null = null;
    if (explicit) {
      const g = toMatrix(where, "init", options.init);
      given = g.created ? g.matrix : g.matrix.clone();
      if (given.shape[0] !== k || given.shape[1] !== d) {
        const shape = given.shape.join(", ");
        given.dispose();
        throw new ArgumentError(
          where,
          `init centroids must have shape [${k}, ${d}], got [${shape}]`,
        );
      }
    }
    const rng = rngFrom(options.seed);
    const xNorms = tf.tidy(() => x.square().sum(1) as tf.Tensor1D);
    // scikit-learn's tolerance: relative to the mean per-feature variance.
    const shiftTol = tol *
      tf.tidy(() => tf.moments(x, 0).variance.mean().dataSync()[0]);
    let best: KMeansResult | null = null;
    try {
      for (let r = 0; r < (given ? 1 : nInit); r++) {
        const start = given ?? tf.tidy(() =>
          tf.gather(
            x,
            seedCentres(
              x,
              xNorms,
              k,
              init as "kmeans++" | "random",
              rng,
              values,
            ),
          ) as tf.Tensor2D
        );
        let run: KMeansResult;
        try {
          run = lloyd(x, start, maxIter, shiftTol);
        } finally {
          start.dispose();
        }
        if (best === null || run.inertia < best.inertia) {
          if (best) tf.dispose([best.centroids, best.assignments]);
          best = run;
        } else {
          tf.dispose([run.centroids, run.assignments]);
        }
      }
    } finally {
      xNorms.dispose();
      given?.dispose();
    }
    return best!;
  } finally {
    if (created) x.dispose();
  }
}

// ---------------------------------------------------------------------------
// Experiments of notebook 01: small loops over `kmeans` settings that return
// plain numbers (no tensors), so the notebook cells stay short.

/** Throws unless `values` is a non-empty array of integers >= `min`. */
function checkIntegerList(
  where: string,
  name: string,
  values: unknown,
  min: number,
): number[] {
  if (!Array.isArray(values) || values.length === 0) {
    throw new ArgumentError(
      where,
      `${name} must be a non-empty array of integers, got ${
        Array.isArray(values) ? "an empty array" : String(values)
      }`,
    );
  }
  values.forEach((v, i) => checkInteger(where, `${name}[${i}]`, v, { min }));
  return values;
}

/** One stage of Lloyd's algorithm, as plain arrays (see `lloydSnapshots`). */
export interface LloydSnapshot {
  /** Number of assignment steps run. */
  steps: number;
  /**
   * The centroids the last of those assignment steps used, [k][d] (the
   * starting centroids for `steps = 1`).
   */
  centroids: number[][];
  /** Index of the nearest of those centroids for every row, length n. */
  assignments: number[];
  /** The inertia (sum of squared errors) of these assignments. */
  inertia: number;
}

/**
 * Lloyd's algorithm stopped after each of the given numbers of assignment
 * steps, all from the same explicit start (`tol: 0`, so no run stops early
 * on a small shift): the first iterations of k-means, for drawing.
 *
 * @param data float32 [n, d] tensor or `number[][]`
 * @param init the k starting centroids, [k, d] (`number[][]` or tensor); k is its row count
 * @param steps assignment-step counts, positive integers (e.g. `[1, 2, 3, 6]`)
 * @returns one `LloydSnapshot` per entry of `steps`: plain arrays, no tensors to dispose
 * @throws ArgumentError on an empty or non-integer `steps`, or bad data/init (from `kmeans`)
 */
export function lloydSnapshots(
  data: tf.Tensor2D | number[][],
  init: tf.Tensor2D | number[][],
  steps: number[],
): LloydSnapshot[] {
  const where = "lloydSnapshots";
  checkIntegerList(where, "steps", steps, 1);
  const k = init instanceof tf.Tensor ? init.shape[0] : init?.length;
  if (!k) {
    throw new ArgumentError(
      where,
      "init must be a non-empty [k, d] number[][] or tensor",
    );
  }
  return steps.map((maxIter) => {
    const r = kmeans(data, k, { init, maxIter, tol: 0 });
    const snapshot = {
      steps: maxIter,
      centroids: r.centroids.arraySync(),
      assignments: Array.from(r.assignments.dataSync()),
      inertia: r.inertia,
    };
    tf.dispose([r.centroids, r.assignments]);
    return snapshot;
  });
}

/**
 * Final inertia of single k-means runs (`nInit: 1`), one per seed: shows how
 * much the result of Lloyd's algorithm depends on its seeding.
 *
 * @param data float32 [n, d] tensor or `number[][]`
 * @param k number of clusters
 * @param seeds one seed per run (integers >= 0)
 * @param init the seeding, `"kmeans++"` or `"random"`
 * @returns the final inertia of each run, a plain array aligned with `seeds`
 * @throws ArgumentError on bad seeds, init, k or data
 */
export function seedInertias(
  data: tf.Tensor2D | number[][],
  k: number,
  seeds: number[],
  init: "kmeans++" | "random",
): number[] {
  const where = "seedInertias";
  checkInteger(where, "k", k, { min: 1 });
  checkIntegerList(where, "seeds", seeds, 0);
  checkChoice(where, "init", init, ["kmeans++", "random"] as const);
  return seeds.map((seed) => {
    const r = kmeans(data, k, { init, nInit: 1, seed });
    tf.dispose([r.centroids, r.assignments]);
    return r.inertia;
  });
}

/**
 * The distortion (mean squared quantization error per row, inertia / n) of
 * a k-means codebook of each size in `ks`: the points of a rate-distortion
 * curve, at a rate of log2 K bits per row.
 *
 * @param data float32 [n, d] tensor or `number[][]`
 * @param ks codebook sizes, positive integers (at most the distinct rows)
 * @param options passed to every `kmeans` call (e.g. `{ seed: 0, nInit: 3 }`)
 * @returns the distortion for each K, a plain array aligned with `ks`
 * @throws ArgumentError on bad ks, options or data
 */
export function kmeansDistortion(
  data: tf.Tensor2D | number[][],
  ks: number[],
  options: KMeansOptions = {},
): number[] {
  checkIntegerList("kmeansDistortion", "ks", ks, 1);
  return ks.map((k) => {
    const r = kmeans(data, k, options);
    const n = r.assignments.shape[0];
    tf.dispose([r.centroids, r.assignments]);
    return r.inertia / n;
  });
}
