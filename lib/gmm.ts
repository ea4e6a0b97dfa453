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
 * Each step of EM is a short core function (what notebook 01 shows:
 * `logJointDensity`, `eStep`, `mStep`, `drawFromMixture`) behind a checked
 * public wrapper (`fitGMM`, `responsibilities`, `gmmLogLikelihood`,
 * `sampleGMM`).
 *
 * Every returned tensor belongs to the caller: `disposeGMM(model)` frees the
 * tensors of a model.
 *
 * ```ts
 * const fit = fitGMM(points, 3, { covariance: "diagonal", seed: 0 });
 * const { samples, z } = sampleGMM(fit, 100, { seed: 1 });
 * tf.dispose([samples, z]);
 * disposeGMM(fit);
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkBoolean,
  checkChoice,
  checkFinite,
  checkInteger,
  checkNumber,
  checkOptions,
  checkSize,
  checkTensor,
  toMatrix,
} from "./validate.ts";
import { randomNormal, type Rng, rngOrStream, type Seed } from "./random.ts";
import { kmeans } from "./vq.ts";

/** Covariance structure of every component. */
export type CovarianceType = "identity" | "spherical" | "diagonal";

const COVARIANCE_TYPES: readonly CovarianceType[] = [
  "identity",
  "spherical",
  "diagonal",
];

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
  /**
   * Seed of the k-means initialisation (a number or an `Rng`). Default: the
   * package's shared stream (`rngOrStream`), so two unseeded calls differ.
   */
  seed?: Seed;
}

const FIT_OPTIONS = [
  "covariance",
  "uniformPrior",
  "hard",
  "nInit",
  "maxIter",
  "tol",
  "varianceFloor",
  "seed",
] as const;

/** float32 one-hot [n, k]; tf.oneHot refuses depth 1, which K = 1 needs. */
function oneHotFloat(indices: tf.Tensor1D, k: number): tf.Tensor2D {
  return k === 1
    ? tf.ones([indices.shape[0], 1])
    : tf.oneHot(indices, k).toFloat() as tf.Tensor2D;
}

/** Disposes the three tensors of a GMM (or of a `fitGMM` result). */
export function disposeGMM(model: GMM): void {
  const parts = model === null || typeof model !== "object"
    ? []
    : [model.means, model.variances, model.weights];
  if (parts.length === 0 || parts.some((t) => !(t instanceof tf.Tensor))) {
    throw new ArgumentError(
      "disposeGMM",
      `model must be a GMM { means, variances, weights } of tensors, got ${model}`,
    );
  }
  tf.dispose(parts);
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

// ---------------------------------------------------------------------------
// The E-step

/**
 * ln P(z = k) + ln N(x_i | mu_k, diag v_k) for every row i and component k,
 * float32 [n, K]. The squared distance sum_j (x_ij - mu_kj)^2 / v_kj is
 * expanded into two plain matMuls against [d, K] matrices, so no [n, K, d]
 * tensor is built.
 */
function logJointDensity(x: tf.Tensor2D, model: GMM): tf.Tensor2D {
  return tf.tidy(() => {
    const { variances, weights } = model;
    // Measured from the centre of the means: the expansion then subtracts
    // numbers the size of the spread, not of the data's offset (float32).
    const centre = model.means.mean(0, true);
    const [xc, means] = [x.sub(centre), model.means.sub(centre)];
    const precision = variances.reciprocal(); // 1 / v_kj
    const distance = tf.matMul(xc.square(), precision.transpose())
      .sub(tf.matMul(xc, means.mul(precision).transpose()).mul(2))
      .add(means.square().mul(precision).sum(1));
    const logDet = variances.log().sum(1); // ln det(diag v_k)
    const logNorm = logDet.add(x.shape[1] * Math.log(2 * Math.PI));
    return distance.add(logNorm).mul(-0.5).add(weights.log()) as tf.Tensor2D;
  });
}

/** What an E-step returns: responsibilities [n, K] and the EM objective (a scalar). */
interface Expectation {
  responsibilities: tf.Tensor2D;
  objective: tf.Scalar;
}

/**
 * The E-step: responsibilities r_ik = P(z = k | x_i) = P(z = k, x_i) / p(x_i)
 * and the average log-likelihood (1/n) sum_i ln p(x_i), in log space.
 * ln p(x_i) = ln sum_k exp(a_ik) is computed as m_i + ln sum_k exp(a_ik - m_i)
 * with m_i = max_k a_ik (log-sum-exp): on images the a_ik are thousands of
 * nats, and exp(a_ik) itself would overflow or round to 0.
 */
function eStep(x: tf.Tensor2D, model: GMM): Expectation {
  return tf.tidy(() => {
    const logJoint = logJointDensity(x, model); // a_ik = ln P(z = k, x_i)
    const top = logJoint.max(1, true); // m_i
    const logEvidence = logJoint.sub(top).exp().sum(1, true).log().add(top);
    return {
      responsibilities: logJoint.sub(logEvidence).exp() as tf.Tensor2D,
      objective: logEvidence.mean() as tf.Scalar,
    };
  });
}

/**
 * Hard EM's E-step: each row wholly to its most probable component; the
 * objective is the average complete-data log-likelihood ln P(z_i, x_i).
 */
function hardEStep(x: tf.Tensor2D, model: GMM): Expectation {
  return tf.tidy(() => {
    const logJoint = logJointDensity(x, model);
    const k = logJoint.shape[1];
    return {
      responsibilities: oneHotFloat(tf.argMax(logJoint, 1) as tf.Tensor1D, k),
      objective: logJoint.max(1).mean() as tf.Scalar,
    };
  });
}

/**
 * Posterior responsibilities P(z = k | x_i) of each component for each row,
 * computed in log space (the E-step of EM).
 *
 * @param model a `GMM` (e.g. from `fitGMM`)
 * @param data float32 [n, d] tensor or `number[][]`
 * @returns float32 [n, K] tensor, rows summing to 1 (the caller disposes it)
 * @throws ArgumentError on a malformed model, bad data or a width mismatch
 */
export function responsibilities(
  model: GMM,
  data: tf.Tensor2D | number[][],
): tf.Tensor2D {
  const where = "responsibilities";
  const { matrix, created } = toMatrix(where, "data", data);
  try {
    checkModel(where, model, matrix.shape[1]);
    checkDensity(where, model);
    return tf.tidy(() => eStep(matrix, model).responsibilities);
  } finally {
    if (created) matrix.dispose();
  }
}

/**
 * Average per-sample log-likelihood (1/n) sum_i ln p(x_i) of `data` under
 * `model`, natural log (scikit-learn's `GaussianMixture.score`).
 *
 * @returns a plain number
 * @throws ArgumentError on a malformed model, bad data or a width mismatch
 */
export function gmmLogLikelihood(
  model: GMM,
  data: tf.Tensor2D | number[][],
): number {
  const where = "gmmLogLikelihood";
  const { matrix, created } = toMatrix(where, "data", data);
  try {
    checkModel(where, model, matrix.shape[1]);
    checkDensity(where, model);
    return tf.tidy(() => eStep(matrix, model).objective.dataSync()[0]);
  } finally {
    if (created) matrix.dispose();
  }
}

// ---------------------------------------------------------------------------
// The M-step

/** What the M-step needs to know besides the data and the responsibilities. */
interface MStepSettings {
  covariance: CovarianceType;
  uniformPrior: boolean;
  varianceFloor: number;
}

/**
 * The M-step: the parameters that maximise the expected complete-data
 * log-likelihood under responsibilities r [n, K]. With n_k = sum_i r_ik:
 * mu_k = sum_i r_ik x_i / n_k, v_kj = sum_i r_ik (x_ij - mu_kj)^2 / n_k
 * (plus the floor; averaged over j for "spherical"), P(z = k) = n_k / n.
 */
function mStep(x: tf.Tensor2D, r: tf.Tensor2D, settings: MStepSettings): GMM {
  return tf.tidy(() => {
    const [n, k] = r.shape;
    // A tiny count (scikit-learn adds 10 eps) keeps an empty component's
    // mean at 0 instead of 0/0 = NaN.
    const counts = r.sum(0).add(1e-6) as tf.Tensor1D;
    const perCount = counts.reshape([k, 1]);
    const means: tf.Tensor2D = tf.matMul(r.transpose(), x).div(perCount);
    let variances: tf.Tensor2D = tf.onesLike(means);
    if (settings.covariance !== "identity") {
      const spread = weightedSquaredDeviations(x, r, means).div(perCount);
      variances = (settings.covariance === "spherical"
        ? spread.mean(1, true).tile([1, x.shape[1]])
        : spread).add(settings.varianceFloor);
    }
    const weights: tf.Tensor1D = settings.uniformPrior
      ? tf.fill([k], 1 / k)
      : counts.div(n);
    return { means, variances, weights };
  });
}

/**
 * sum_i r_ik (x_i - mu_k)^2 for every component k, float32 [K, d]: the
 * centred ("two-pass") form, one component at a time. The one-pass shortcut
 * E_r[x^2] - mu^2 subtracts two nearly equal float32 numbers when the mean
 * is large next to the spread, and loses most of the variance's digits.
 */
function weightedSquaredDeviations(
  x: tf.Tensor2D,
  r: tf.Tensor2D,
  means: tf.Tensor2D,
): tf.Tensor2D {
  return tf.tidy(() => {
    const rT = r.transpose();
    const rows: tf.Tensor[] = [];
    for (let k = 0; k < means.shape[0]; k++) {
      // One component at a time: an [n, K, d] tensor could fill the memory.
      rows.push(tf.tidy(() => {
        const squares = tf.squaredDifference(x, means.slice([k, 0], [1, -1]));
        return tf.matMul(rT.slice([k, 0], [1, -1]), squares);
      }));
    }
    return tf.concat(rows, 0) as tf.Tensor2D;
  });
}

// ---------------------------------------------------------------------------
// EM

/** Everything one EM run needs besides the data. */
interface EMSettings extends MStepSettings {
  hard: boolean;
  maxIter: number;
  tol: number;
}

/** One EM run from a k-means initialisation drawn from `rng`. */
function emRun(
  x: tf.Tensor2D,
  k: number,
  settings: EMSettings,
  rng: Rng,
): GMMFit {
  const start = kmeansResponsibilities(x, k, rng);
  let model = mStep(x, start, settings);
  start.dispose();
  const history: number[] = [];
  let converged = false;
  try {
    for (let it = 0; it < settings.maxIter; it++) {
      const e = settings.hard ? hardEStep(x, model) : eStep(x, model);
      const value = e.objective.dataSync()[0];
      const next = mStep(x, e.responsibilities, settings);
      tf.dispose([e.objective, e.responsibilities]);
      disposeGMM(model);
      model = next;
      const previous = history.at(-1);
      history.push(value);
      if (!Number.isFinite(value)) {
        throw new Error(
          `fitGMM: the log-likelihood became ${value} at iteration ${it}`,
        );
      }
      if (previous !== undefined && Math.abs(value - previous) < settings.tol) {
        converged = true;
        break;
      }
    }
    const final = tf.tidy(() => {
      const lj = logJointDensity(x, model);
      return tf.stack([tf.logSumExp(lj, 1).mean(), lj.max(1).mean()]);
    });
    const [logLikelihood, complete] = final.dataSync();
    final.dispose();
    history.push(settings.hard ? complete : logLikelihood);
    return {
      ...model,
      covariance: settings.covariance,
      logLikelihood,
      history,
      converged,
    };
  } catch (e) {
    disposeGMM(model);
    throw e;
  }
}

/** One-hot responsibilities [n, k] of one k-means++ run (EM's starting point). */
function kmeansResponsibilities(
  x: tf.Tensor2D,
  k: number,
  rng: Rng,
): tf.Tensor2D {
  let init;
  try {
    init = kmeans(x, k, { seed: rng, nInit: 1 });
  } catch (e) {
    // Report k-means' complaint (e.g. too few distinct rows) as ours.
    if (e instanceof ArgumentError) {
      throw new ArgumentError("fitGMM", e.message.replace(/^kmeans: /, ""));
    }
    throw e;
  }
  const oneHot = tf.tidy(() => oneHotFloat(init.assignments, k));
  tf.dispose([init.centroids, init.assignments]);
  return oneHot;
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
 * ```ts
 * const vq = fitGMM(points, 12, { covariance: "identity", uniformPrior: true, seed: 0 });
 * console.log(vq.logLikelihood, vq.history.length);
 * disposeGMM(vq);
 * ```
 *
 * @param data float32 [n, d] tensor or rectangular `number[][]`
 * @param k number of components: a positive integer, at most the number of distinct rows
 * @param options see `FitGMMOptions`
 * @returns the model tensors (`means`, `variances`, `weights`; the caller
 *   disposes them with `disposeGMM(fit)`) and plain-number figures
 * @throws ArgumentError on bad k, NaN/Infinity, values whose squares overflow
 *   float32, ragged arrays or bad options
 */
export function fitGMM(
  data: tf.Tensor2D | number[][],
  k: number,
  options: FitGMMOptions = {},
): GMMFit {
  const where = "fitGMM";
  const o = checkOptions(where, options, FIT_OPTIONS);
  const covariance = checkChoice(
    where,
    "covariance",
    o.covariance ?? "diagonal",
    COVARIANCE_TYPES,
  );
  const settings: EMSettings = {
    covariance,
    uniformPrior: checkBoolean(where, "uniformPrior", o.uniformPrior ?? false),
    hard: checkBoolean(where, "hard", o.hard ?? false),
    maxIter: checkInteger(where, "maxIter", o.maxIter ?? 100, { min: 1 }),
    tol: checkNumber(where, "tol", o.tol ?? 1e-3, { min: 0 }),
    varianceFloor: checkNumber(
      where,
      "varianceFloor",
      o.varianceFloor ?? 1e-6,
      { min: 0, minExclusive: covariance !== "identity" },
    ),
  };
  const nInit = checkInteger(where, "nInit", o.nInit ?? 1, {
    min: 1,
    max: 1000,
  });
  const rng = rngOrStream(o.seed, where);
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
    checkSquaresFit(where, x);
    // EM runs on the data minus its mean (a shift changes nothing in a
    // mixture but float32 rounding: with a large mean, the squares in the
    // E-step and the sums in the M-step would lose the spread's digits).
    const centre = tf.tidy(() => x.mean(0, true) as tf.Tensor2D);
    const centred = tf.tidy(() => x.sub(centre) as tf.Tensor2D);
    try {
      const best = bestOfRuns(centred, k, nInit, settings, rng);
      const means = tf.tidy(() => best.means.add(centre) as tf.Tensor2D);
      best.means.dispose();
      return { ...best, means };
    } finally {
      tf.dispose([centre, centred]);
    }
  } finally {
    if (created) x.dispose();
  }
}

/** `nInit` EM runs, each from its own k-means start; keeps the highest log-likelihood. */
function bestOfRuns(
  x: tf.Tensor2D,
  k: number,
  nInit: number,
  settings: EMSettings,
  rng: Rng,
): GMMFit {
  let best: GMMFit | null = null;
  try {
    for (let r = 0; r < nInit; r++) {
      const run = emRun(x, k, settings, rng);
      if (best === null || run.logLikelihood > best.logLikelihood) {
        if (best) disposeGMM(best);
        best = run;
      } else {
        disposeGMM(run);
      }
    }
  } catch (e) {
    if (best) disposeGMM(best);
    throw e;
  }
  return best!;
}

/**
 * Rejects data whose squares, summed over a row, would overflow float32
 * (a Gaussian density needs them): the user should rescale, not get NaN.
 */
function checkSquaresFit(where: string, x: tf.Tensor2D): void {
  const largest = tf.tidy(() => x.abs().max().dataSync()[0]);
  const d = x.shape[1];
  if (4 * d * largest ** 2 > 3.4e38) {
    const scale = 2 ** Math.round(Math.log2(largest));
    throw new ArgumentError(
      where,
      `data values reach ${
        largest.toExponential(2)
      }: their squares summed over ${d} ` +
        `coordinates overflow float32; divide the data by a constant first (e.g. ${scale})`,
    );
  }
}

// ---------------------------------------------------------------------------
// Sampling

/** The result of `sampleGMM`: tensors the caller disposes. */
export interface GMMSamples {
  /** float32 [n, d]: the samples x. */
  samples: tf.Tensor2D;
  /** int32 [n]: the component z each sample was drawn from. */
  z: tf.Tensor1D;
}

/**
 * Ancestral sampling: z ~ P(z), a categorical draw from the weights (uniform,
 * z ~ U(1..K), for the shallow VQ "VAE"), then x = mu_z + sqrt(v_z) * eps
 * with eps ~ N(0, I).
 */
function drawFromMixture(model: GMM, n: number, rng: Rng): GMMSamples {
  const weights = model.weights.dataSync();
  const z = Int32Array.from({ length: n }, () => rng.categorical(weights));
  return tf.tidy(() => {
    const zT = tf.tensor1d(z, "int32");
    // Rows mu_z and v_z as a one-hot matMul: much faster than gather on wasm.
    const pick = oneHotFloat(zT, weights.length);
    const mu = tf.matMul(pick, model.means);
    const sd = tf.matMul(pick, model.variances).sqrt();
    const eps = randomNormal(mu.shape, { seed: rng });
    return { samples: mu.add(sd.mul(eps)) as tf.Tensor2D, z: zT };
  });
}

/** Throws unless every value of `t` is finite and >= 0. */
/**
 * A model the E-step can evaluate as a density: finite means, variances > 0
 * and weights >= 0 that sum to 1 (else the log-likelihood is a number that
 * is no log-likelihood, or NaN).
 */
function checkDensity(where: string, model: GMM): void {
  checkFinite(where, "model.means", model.means);
  checkNonNegative(where, "model.variances", model.variances);
  if (model.variances.dataSync().some((v) => v === 0)) {
    throw new ArgumentError(where, "model.variances must be > 0");
  }
  checkNonNegative(where, "model.weights", model.weights);
  const total = Array.from(model.weights.dataSync()).reduce((a, b) => a + b);
  if (Math.abs(total - 1) > 1e-3) {
    throw new ArgumentError(
      where,
      `model.weights must sum to 1, got ${total.toPrecision(6)}`,
    );
  }
}

function checkNonNegative(where: string, name: string, t: tf.Tensor): void {
  const v = t.dataSync();
  const width = t.shape[1] ?? 1;
  for (let i = 0; i < v.length; i++) {
    if (!(v[i] >= 0) || !Number.isFinite(v[i])) {
      const at = t.rank === 2
        ? `[${Math.floor(i / width)}][${i % width}]`
        : `[${i}]`;
      throw new ArgumentError(
        where,
        `${name} must be finite and >= 0, but ${name}${at} is ${v[i]}`,
      );
    }
  }
}

/**
 * Ancestral sampling: z ~ P(z) (the mixing weights), then
 * x ~ N(mu_z, diag v_z). For the shallow VQ "VAE" that is a uniformly chosen
 * centroid plus unit Gaussian noise.
 *
 * ```ts
 * const { samples, z } = sampleGMM(vq, 600, { seed: 3 });
 * ```
 *
 * @param model a `GMM` (means, variances, weights)
 * @param n number of samples (positive integer)
 * @param options.seed a number or an `Rng`. Default: the package's shared
 *   stream (`rngOrStream`), so two unseeded calls draw different samples.
 * @returns samples float32 [n, d] and z int32 [n] (tensors the caller disposes)
 * @throws ArgumentError on a malformed model (negative or non-finite
 *   variances or weights, weights all zero), a bad n or bad options
 */
export function sampleGMM(
  model: GMM,
  n: number,
  options: { seed?: Seed } = {},
): GMMSamples {
  const where = "sampleGMM";
  const { seed } = checkOptions(where, options, ["seed"]);
  checkModel(where, model);
  checkInteger(where, "n", n, { min: 1 });
  checkSize(where, "n * d", n * model.means.shape[1]);
  const rng = rngOrStream(seed, where);
  checkFinite(where, "model.means", model.means);
  checkNonNegative(where, "model.variances", model.variances);
  checkNonNegative(where, "model.weights", model.weights);
  if (!model.weights.dataSync().some((w) => w > 0)) {
    throw new ArgumentError(where, "model.weights must not all be zero");
  }
  return drawFromMixture(model, n, rng);
}
