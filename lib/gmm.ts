/**
 * Gaussian mixture models fitted by EM, in log space, vectorized over whole
 * batches. With `covariance: "identity"` and `uniformPrior: true` the model
 * is the shallow VQ "VAE" of the course: P(z) = U(1..K),
 * P(x | z) = N(mu_z, I), and the most probable component of x is its
 * nearest mean (the deterministic encoder Q(z | x)).
 *
 * Log densities of diagonal Gaussians are expanded as
 * sum_j x_j^2 / v_kj - 2 x_j mu_kj / v_kj + mu_kj^2 / v_kj, i.e. two plain
 * matMuls against [d, K] matrices built once per EM step (transposed
 * matMuls are slow on wasm), then combined with log-sum-exp.
 *
 * Every returned tensor belongs to the caller: `disposeGMM(model)` frees the
 * tensors of a model.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkChoice,
  checkInteger,
  checkNumber,
  checkTensor,
  toMatrix,
} from "./validate.ts";
import { randomNormal, Rng, rngFrom, type Seed } from "./random.ts";
import { kmeans } from "./vq.ts";

/** Covariance structure of every component. */
export type CovarianceType = "identity" | "spherical" | "diagonal";

/** The covariance structures `fitGMM` accepts. */
export const COVARIANCE_TYPES: readonly CovarianceType[] = Object.freeze([
  "identity",
  "spherical",
  "diagonal",
]);

/** A Gaussian mixture with diagonal covariances. All tensors belong to the caller. */
export interface GMM {
  /** float32 [K, d]: component means mu_k. */
  means: tf.Tensor2D;
  /**
   * float32 [K, d]: per-coordinate variances of each component (all ones for
   * `"identity"`, constant along each row for `"spherical"`).
   */
  variances: tf.Tensor2D;
  /** float32 [K]: mixing weights P(z = k), summing to 1. */
  weights: tf.Tensor1D;
}

/** The result of `fitGMM`: the model plus training figures (plain numbers). */
export interface GMMFit extends GMM {
  /** The covariance structure that was fitted. */
  covariance: CovarianceType;
  /**
   * Average per-sample log-likelihood (1/n) sum_i ln p(x_i) of the training
   * data under the final model, natural log: scikit-learn's `score(X)`.
   */
  logLikelihood: number;
  /**
   * The EM objective before each M-step and once more at the end: the
   * average log-likelihood (non-decreasing), or for `hard: true` the
   * average complete-data log-likelihood (1/n) sum_i ln p(x_i, z_i) with
   * z_i the most probable component (also non-decreasing).
   */
  history: number[];
  /** True when the objective changed by less than `tol` before `maxIter` steps. */
  converged: boolean;
}

/** Options for `fitGMM`. */
export interface FitGMMOptions {
  /** Covariance structure. Default `"diagonal"`. */
  covariance?: CovarianceType;
  /** Keep P(z) = 1/K fixed instead of learning the weights. Default false. */
  uniformPrior?: boolean;
  /**
   * Hard EM: the E-step assigns each row wholly to its most probable
   * component instead of splitting it by responsibility. With identity
   * covariance and a uniform prior this is exactly k-means. Default false.
   */
  hard?: boolean;
  /**
   * Number of EM runs, each from its own k-means initialisation; the run
   * with the highest final log-likelihood wins (scikit-learn's `n_init`).
   * Default 1.
   */
  nInit?: number;
  /** Maximum EM iterations. Default 100. */
  maxIter?: number;
  /**
   * Stop when the objective (average log-likelihood per sample) changes by
   * less than `tol` between iterations (scikit-learn's rule). Default 1e-3.
   */
  tol?: number;
  /**
   * Added to every fitted variance (scikit-learn's `reg_covar`), so a
   * component whose rows agree exactly on a coordinate keeps a finite
   * density. Default 1e-6.
   */
  varianceFloor?: number;
  /** Seed of the k-means initialisation (a number or an `Rng`). Default 0. */
  seed?: Seed;
}

/** float32 one-hot [n, k]; tf.oneHot refuses depth 1, which K = 1 needs. */
function oneHotFloat(indices: tf.Tensor1D, k: number): tf.Tensor2D {
  return k === 1
    ? tf.ones([indices.shape[0], 1])
    : tf.oneHot(indices, k).toFloat() as tf.Tensor2D;
}

/** Disposes the three tensors of a GMM (or of a `fitGMM` result). */
export function disposeGMM(model: GMM): void {
  tf.dispose([model.means, model.variances, model.weights]);
}

function checkModel(where: string, model: unknown, width?: number): GMM {
  if (model === null || typeof model !== "object") {
    throw new ArgumentError(
      where,
      `model must be an object { means, variances, weights }, got ${model}`,
    );
  }
  const m = model as Partial<GMM>;
  const means = checkTensor(where, "model.means", m.means, {
    rank: 2,
    dtype: "float32",
  }) as tf.Tensor2D;
  const [k, d] = means.shape;
  checkTensor(where, "model.variances", m.variances, {
    shape: [k, d],
    dtype: "float32",
  });
  checkTensor(where, "model.weights", m.weights, {
    shape: [k],
    dtype: "float32",
  });
  if (width !== undefined && width !== d) {
    throw new ArgumentError(
      where,
      `data rows must have the model's width ${d}, got width ${width}`,
    );
  }
  return m as GMM;
}

/**
 * ln P(z = k) + ln N(x_i | mu_k, diag v_k) for every row and component:
 * float32 [n, K].
 */
function logJoint(x: tf.Tensor2D, model: GMM): tf.Tensor2D {
  return tf.tidy(() => {
    const d = x.shape[1];
    const precision = model.variances.reciprocal();
    const precisionT = precision.transpose();
    const scaledMeansT = model.means.mul(precision).transpose();
    const quad = tf.matMul(x.square(), precisionT)
      .sub(tf.matMul(x, scaledMeansT).mul(2))
      .add(model.means.square().mul(precision).sum(1));
    const logNorm = model.variances.log().sum(1).add(d * Math.log(2 * Math.PI));
    return quad.add(logNorm).mul(-0.5).add(model.weights.log()) as tf.Tensor2D;
  });
}

/**
 * Posterior responsibilities P(z = k | x_i) of each component for each row,
 * computed in log space (softmax of the log joint).
 *
 * @param model a `GMM` (e.g. from `fitGMM`)
 * @param data float32 [n, d] tensor or `number[][]`
 * @returns float32 [n, K] tensor, rows summing to 1 (the caller disposes it)
 */
export function responsibilities(
  model: GMM,
  data: tf.Tensor2D | number[][],
): tf.Tensor2D {
  const where = "responsibilities";
  const { matrix, created } = toMatrix(where, "data", data);
  try {
    checkModel(where, model, matrix.shape[1]);
    return tf.tidy(() => tf.softmax(logJoint(matrix, model), 1) as tf.Tensor2D);
  } finally {
    if (created) matrix.dispose();
  }
}

/**
 * Average per-sample log-likelihood (1/n) sum_i ln p(x_i) of `data` under
 * `model`, natural log (scikit-learn's `GaussianMixture.score`).
 *
 * @returns a plain number
 */
export function gmmLogLikelihood(
  model: GMM,
  data: tf.Tensor2D | number[][],
): number {
  const where = "gmmLogLikelihood";
  const { matrix, created } = toMatrix(where, "data", data);
  try {
    checkModel(where, model, matrix.shape[1]);
    return tf.tidy(() =>
      tf.logSumExp(logJoint(matrix, model), 1).mean().dataSync()[0]
    );
  } finally {
    if (created) matrix.dispose();
  }
}

/** The M-step: new parameters from responsibilities `r` [n, K]. */
function mStep(
  x: tf.Tensor2D,
  r: tf.Tensor2D,
  covariance: CovarianceType,
  uniformPrior: boolean,
  floor: number,
): GMM {
  return tf.tidy(() => {
    const [n, d] = x.shape;
    const k = r.shape[1];
    // A tiny count (scikit-learn adds 10 * eps) keeps an empty component's
    // mean at 0 instead of 0/0 = NaN.
    const counts = r.sum(0).add(1e-6);
    const rt = r.transpose();
    const means = tf.matMul(rt, x).div(counts.reshape([k, 1])) as tf.Tensor2D;
    let variances: tf.Tensor2D;
    if (covariance === "identity") {
      variances = tf.ones([k, d]);
    } else {
      // E_r[x^2] - mu^2, floored at zero before adding the variance floor
      // (float32 rounding can make the difference slightly negative).
      const diag = tf.matMul(rt, x.square()).div(counts.reshape([k, 1]))
        .sub(means.square()).relu();
      variances =
        (covariance === "spherical" ? diag.mean(1, true).tile([1, d]) : diag)
          .add(floor) as tf.Tensor2D;
    }
    const weights = uniformPrior
      ? tf.fill([k], 1 / k) as tf.Tensor1D
      : counts.div(n) as tf.Tensor1D;
    return { means, variances, weights };
  });
}

/** One EM run from a k-means initialisation drawn from `rng`. */
function emRun(
  x: tf.Tensor2D,
  k: number,
  covariance: CovarianceType,
  uniformPrior: boolean,
  hard: boolean,
  maxIter: number,
  tol: number,
  floor: number,
  rng: Rng,
): GMMFit {
  const where = "fitGMM";
  let init;
  try {
    init = kmeans(x, k, { seed: rng, nInit: 1 });
  } catch (e) {
    // Report k-means' complaint (e.g. too few distinct rows) as ours.
    if (e instanceof ArgumentError) {
      throw new ArgumentError(where, e.message.replace(/^kmeans: /, ""));
    }
    throw e;
  }
  const oneHot = tf.tidy(() => oneHotFloat(init.assignments, k));
  tf.dispose([init.centroids, init.assignments]);
  let model = mStep(x, oneHot, covariance, uniformPrior, floor);
  oneHot.dispose();
  const history: number[] = [];
  let converged = false;
  try {
    for (let it = 0; it < maxIter; it++) {
      const [r, objective] = tf.tidy(() => {
        const lj = logJoint(x, model);
        if (hard) {
          return [
            oneHotFloat(tf.argMax(lj, 1) as tf.Tensor1D, k),
            lj.max(1).mean(),
          ];
        }
        const lse = tf.logSumExp(lj, 1, true);
        return [lj.sub(lse).exp(), lse.mean()];
      }) as [tf.Tensor2D, tf.Scalar];
      const value = objective.dataSync()[0];
      objective.dispose();
      const next = mStep(x, r, covariance, uniformPrior, floor);
      r.dispose();
      disposeGMM(model);
      model = next;
      const previous = history.at(-1);
      history.push(value);
      if (!Number.isFinite(value)) {
        throw new Error(
          `fitGMM: the log-likelihood became ${value} at iteration ${it}`,
        );
      }
      if (previous !== undefined && Math.abs(value - previous) < tol) {
        converged = true;
        break;
      }
    }
    const final = tf.tidy(() => {
      const lj = logJoint(x, model);
      return tf.stack([tf.logSumExp(lj, 1).mean(), lj.max(1).mean()]);
    });
    const [logLikelihood, complete] = final.dataSync();
    final.dispose();
    history.push(hard ? complete : logLikelihood);
    return {
      means: model.means,
      variances: model.variances,
      weights: model.weights,
      covariance,
      logLikelihood,
      history,
      converged,
    };
  } catch (e) {
    disposeGMM(model);
    throw e;
  }
}

/**
 * Fits a Gaussian mixture by expectation-maximisation, initialised from
 * k-means (one k-means++ run per EM run, like scikit-learn). Each iteration computes
 * responsibilities from the current parameters (E-step, in log space) and
 * re-estimates means, variances and weights from them (M-step); the average
 * log-likelihood never decreases.
 *
 * `covariance: "identity", uniformPrior: true` is the shallow VQ "VAE":
 * P(z) = U(1..K), P(x | z) = N(mu_z, I); adding `hard: true` makes the
 * training loop k-means.
 *
 * @param data float32 [n, d] tensor or rectangular `number[][]`
 * @param k number of components: a positive integer, at most the number of distinct rows
 * @param options see `FitGMMOptions`
 * @returns the model tensors (`means`, `variances`, `weights`; the caller
 *   disposes them with `disposeGMM(fit)`) and plain-number figures
 * @throws ArgumentError on bad k, NaN/Infinity, ragged arrays or bad options
 */
export function fitGMM(
  data: tf.Tensor2D | number[][],
  k: number,
  options: FitGMMOptions = {},
): GMMFit {
  const where = "fitGMM";
  const covariance = checkChoice(
    where,
    "covariance",
    options.covariance ?? "diagonal",
    COVARIANCE_TYPES,
  );
  const uniformPrior = options.uniformPrior ?? false;
  const hard = options.hard ?? false;
  if (typeof uniformPrior !== "boolean") {
    throw new ArgumentError(
      where,
      `uniformPrior must be a boolean, got ${uniformPrior}`,
    );
  }
  if (typeof hard !== "boolean") {
    throw new ArgumentError(where, `hard must be a boolean, got ${hard}`);
  }
  const nInit = checkInteger(where, "nInit", options.nInit ?? 1, { min: 1 });
  const maxIter = checkInteger(where, "maxIter", options.maxIter ?? 100, {
    min: 1,
  });
  const tol = checkNumber(where, "tol", options.tol ?? 1e-3, { min: 0 });
  const floor = checkNumber(
    where,
    "varianceFloor",
    options.varianceFloor ?? 1e-6,
    { min: 0, minExclusive: covariance !== "identity" },
  );
  if (options.seed !== undefined && !(options.seed instanceof Rng)) {
    checkNumber(where, "seed", options.seed);
  }
  checkInteger(where, "k", k, { min: 1 });
  const { matrix: x, created } = toMatrix(where, "data", data);
  try {
    const n = x.shape[0];
    if (k > n) {
      throw new ArgumentError(
        where,
        `k must be at most the number of data rows (${n}), got ${k}`,
      );
    }
    const rng = rngFrom(options.seed);
    let best: GMMFit | null = null;
    for (let r = 0; r < nInit; r++) {
      const run = emRun(
        x,
        k,
        covariance,
        uniformPrior,
        hard,
        maxIter,
        tol,
        floor,
        rng,
      );
      if (best === null || run.logLikelihood > best.logLikelihood) {
        if (best) disposeGMM(best);
        best = run;
      } else {
        disposeGMM(run);
      }
    }
    return best!;
  } finally {
    if (created) x.dispose();
  }
}

/** The result of `sampleGMM`: tensors the caller disposes. */
export interface GMMSamples {
  /** float32 [n, d]: the samples x. */
  samples: tf.Tensor2D;
  /** int32 [n]: the component z each sample was drawn from. */
  z: tf.Tensor1D;
}

/**
 * Ancestral sampling: z ~ P(z) (the mixing weights), then
 * x ~ N(mu_z, diag v_z). For the shallow VQ "VAE" that is a uniformly chosen
 * centroid plus unit Gaussian noise.
 *
 * @param model a `GMM` (means, variances, weights)
 * @param n number of samples (positive integer)
 * @param options.seed a number or an `Rng`. Default 0.
 * @returns samples float32 [n, d] and z int32 [n] (tensors the caller disposes)
 */
export function sampleGMM(
  model: GMM,
  n: number,
  { seed = 0 }: { seed?: Seed } = {},
): GMMSamples {
  const where = "sampleGMM";
  checkModel(where, model);
  checkInteger(where, "n", n, { min: 1 });
  if (!(seed instanceof Rng)) checkNumber(where, "seed", seed);
  const rng = rngFrom(seed);
  const weights = model.weights.dataSync();
  const [k, d] = model.means.shape;
  // Inverse-CDF sampling from the cumulative weights (binary search).
  const cumulative = new Float64Array(k);
  let total = 0;
  for (let j = 0; j < k; j++) {
    if (!(weights[j] >= 0) || !Number.isFinite(weights[j])) {
      throw new ArgumentError(
        where,
        `model.weights must be finite and >= 0, but weights[${j}] is ${
          weights[j]
        }`,
      );
    }
    total += weights[j];
    cumulative[j] = total;
  }
  if (!(total > 0)) {
    throw new ArgumentError(where, "model.weights must not all be zero");
  }
  const z = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng.uniform() * total;
    let lo = 0;
    let hi = k - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    // Skip zero-weight components that share the same cumulative value.
    while (weights[lo] === 0 && lo < k - 1) lo++;
    z[i] = lo;
  }
  return tf.tidy(() => {
    const zT = tf.tensor1d(z, "int32");
    // Row lookups as a one-hot matMul: much faster than gather on wasm.
    const oneHot = oneHotFloat(zT, k);
    const mu = tf.matMul(oneHot, model.means);
    const sd = tf.matMul(oneHot, model.variances).sqrt();
    const noise = randomNormal([n, d], { seed: rng });
    return { samples: mu.add(sd.mul(noise)) as tf.Tensor2D, z: zT };
  });
}
