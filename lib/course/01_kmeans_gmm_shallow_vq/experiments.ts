/**
 * Experiments of notebook 01: small loops over `kmeans` settings that return
 * plain numbers (no tensors), so the notebook cells stay short.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { kmeans, type KMeansOptions } from "../../vq.ts";
import { ArgumentError, checkChoice, checkInteger } from "../../validate.ts";

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
 * steps, all from the same explicit start: one
 * `kmeans(data, k, { init, maxIter: steps, tol: 0 })` per entry (`tol: 0`,
 * so no run stops early on a small shift): the first iterations of k-means,
 * for drawing.
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

/**
 * Least-squares slope of log2(ys) against log2(xs): on a rate-distortion
 * sweep (`xs` the codebook sizes, `ys` their distortions) it is how many
 * bits of distortion one more bit of rate removes (-1: every doubling of K
 * halves the distortion).
 *
 * ```ts
 * logLogSlope([4, 8, 16], [1, 0.5, 0.25]); // -1
 * ```
 *
 * @param xs positive numbers (at least two distinct)
 * @param ys positive numbers, aligned with `xs`
 * @returns the fitted slope, a plain number
 * @throws ArgumentError on arrays of different lengths, fewer than two distinct xs, or non-positive values
 */
export function logLogSlope(xs: number[], ys: number[]): number {
  const where = "logLogSlope";
  if (!Array.isArray(xs) || !Array.isArray(ys) || xs.length !== ys.length) {
    throw new ArgumentError(
      where,
      "xs and ys must be arrays of the same length",
    );
  }
  [...xs, ...ys].forEach((v, i) => {
    if (!(typeof v === "number" && v > 0 && Number.isFinite(v))) {
      throw new ArgumentError(
        where,
        `values must be positive finite numbers, got ${v} (entry ${i})`,
      );
    }
  });
  const u = xs.map(Math.log2);
  const w = ys.map(Math.log2);
  const mu = u.reduce((a, b) => a + b, 0) / u.length;
  const mw = w.reduce((a, b) => a + b, 0) / w.length;
  let cov = 0;
  let varU = 0;
  u.forEach((ui, i) => {
    cov += (ui - mu) * (w[i] - mw);
    varU += (ui - mu) ** 2;
  });
  if (varU === 0) {
    throw new ArgumentError(where, "xs must hold at least two distinct values");
  }
  return cov / varU;
}
