/**
 * The experiments of notebook 02 (the Gaussian VAE refresher): data
 * preparation for the PCA comparison, the side-by-side gradient-estimator
 * runs, the latent-space helpers, the beta sweep and the denoising test.
 * The ideas themselves (KL, reparameterization, the models, PCA) live in
 * lib/vae.ts.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkFinite,
  checkInteger,
  checkNumber,
  checkOptions,
  checkTensor,
} from "../../validate.ts";
import type { Seed } from "../../random.ts";
import {
  addNoise,
  type EvaluationReport,
  type GaussianGradientOptions,
  GaussianVAE,
  type GradientEstimates,
  gradientEstimates,
  type GradientEstimator,
  type PCAResult,
  type ScalarObjective,
} from "../../vae.ts";

// ---------------------------------------------------------------------------
// Linear autoencoder vs PCA

/**
 * Halves the resolution of images by 2x2 average pooling and flattens them:
 * the first `count` images of `images` [n, h, w, c] become a float32
 * [count, (h / 2) * (w / 2) * c] matrix (28x28 Fashion-MNIST: [count, 196]),
 * small enough for an exact PCA.
 *
 * @param images float32 [n, h, w, c] with even h and w
 * @param options.count how many leading images to use (default all)
 * @returns a new tensor; the caller disposes it
 * @throws ArgumentError for a wrong rank, odd sizes or count out of [1, n]
 */
export function downsampleImages(
  images: tf.Tensor,
  options: { count?: number } = {},
): tf.Tensor2D {
  const where = "downsampleImages";
  const { count } = checkOptions(where, options, ["count"]);
  const t = checkTensor(where, "images", images, {
    rank: 4,
    dtype: "float32",
  }) as tf.Tensor4D;
  const [n, h, w, c] = t.shape;
  if (h % 2 !== 0 || w % 2 !== 0) {
    throw new ArgumentError(
      where,
      `images must have even height and width, got shape [${t.shape}]`,
    );
  }
  const m = checkInteger(where, "options.count", count ?? n, {
    min: 1,
    max: n,
  });
  return tf.tidy(() =>
    tf.avgPool(t.slice(0, m), 2, 2, "valid").reshape([m, (h / 2) * (w / 2) * c])
  );
}

/**
 * Subtracts a mean vector from every row: `data - mean` (e.g. the `mean` of
 * a `PCAResult`), the centred data a linear autoencoder is trained on.
 *
 * @param data float32 [n, d]
 * @param mean length-d numbers
 * @returns a new [n, d] tensor; the caller disposes it
 * @throws ArgumentError if the lengths differ or `mean` is not finite
 */
export function centreRows(data: tf.Tensor2D, mean: number[]): tf.Tensor2D {
  const where = "centreRows";
  const t = checkTensor(where, "data", data, {
    rank: 2,
    dtype: "float32",
  }) as tf.Tensor2D;
  if (
    !Array.isArray(mean) || mean.length !== t.shape[1] ||
    mean.some((v) => typeof v !== "number" || !Number.isFinite(v))
  ) {
    throw new ArgumentError(
      where,
      `mean must be ${t.shape[1]} finite numbers (one per column of data)`,
    );
  }
  return tf.tidy(() => t.sub(tf.tensor1d(mean))) as tf.Tensor2D;
}

/**
 * The variance PCA leaves out: the sum of the eigenvalues beyond the kept
 * `components.length`, which is the smallest mean squared reconstruction
 * error any rank-k linear map can reach (Eckart-Young), i.e. the optimum of
 * a linear autoencoder's loss.
 *
 * @throws ArgumentError if `result` is not a `PCAResult`
 */
export function pcaResidualVariance(result: PCAResult): number {
  if (
    !result || !Array.isArray(result.eigenvalues) ||
    !Array.isArray(result.components)
  ) {
    throw new ArgumentError(
      "pcaResidualVariance",
      "result must be what pca() returns ({ eigenvalues, components, ... })",
    );
  }
  return result.eigenvalues.slice(result.components.length)
    .reduce((a, b) => a + b, 0);
}

// ---------------------------------------------------------------------------
// Gradient estimators side by side

/** The three estimators of `gaussianGradientEstimates`, in display order. */
export const GRADIENT_ESTIMATORS: readonly GradientEstimator[] = Object.freeze(
  ["reparameterization", "score-function", "score-function-baseline"] as const,
);

/**
 * Runs `gaussianGradientEstimates` once per estimator with the same options
 * (and seed), so the estimators can be compared side by side.
 *
 * @returns plain numbers, keyed by estimator name in `GRADIENT_ESTIMATORS` order
 * @throws ArgumentError as `gaussianGradientEstimates`, naming this function
 */
export function compareGradientEstimators(
  objective: ScalarObjective,
  options: GaussianGradientOptions,
): Record<GradientEstimator, GradientEstimates> {
  return Object.fromEntries(
    GRADIENT_ESTIMATORS.map((e) => [
      e,
      gradientEstimates("compareGradientEstimators", e, objective, options),
    ]),
  ) as Record<GradientEstimator, GradientEstimates>;
}

/**
 * The variance of the d/dmu estimate of each estimator as a function of the
 * number of samples averaged inside one estimate: entry [e][i] is
 * `gaussianGradientEstimates(e, objective, { ...options, samples:
 * sampleCounts[i] }).variance.dMu` (about variance(1 sample) / S).
 *
 * @returns plain arrays keyed by estimator name, one value per sample count
 * @throws ArgumentError for an empty `sampleCounts` or as `gaussianGradientEstimates`
 */
export function gradientVarianceBySamples(
  objective: ScalarObjective,
  options: GaussianGradientOptions,
  sampleCounts: number[],
): Record<GradientEstimator, number[]> {
  const where = "gradientVarianceBySamples";
  if (!Array.isArray(sampleCounts) || sampleCounts.length === 0) {
    throw new ArgumentError(
      where,
      "sampleCounts must be a non-empty array of positive integers",
    );
  }
  sampleCounts.forEach((s, i) =>
    checkInteger(where, `sampleCounts[${i}]`, s, { min: 1 })
  );
  if (options === null || typeof options !== "object") {
    throw new ArgumentError(
      where,
      `options must be an object with mu and logSigma, got ${options}`,
    );
  }
  return Object.fromEntries(
    GRADIENT_ESTIMATORS.map((e) => [
      e,
      sampleCounts.map((s) =>
        gradientEstimates(where, e, objective, { ...options, samples: s })
          .variance.dMu
      ),
    ]),
  ) as Record<GradientEstimator, number[]>;
}

// ---------------------------------------------------------------------------
// Latent spaces

/**
 * The variance of each latent dimension over the rows of `codes` [n, d]
 * (population variance, as `tf.moments`): how far the codes spread compared
 * with the prior N(0, I), whose variance is 1.
 *
 * @returns d plain numbers
 * @throws ArgumentError for a non-matrix, no rows, or NaN/Infinity
 */
export function codeVariance(codes: tf.Tensor2D): number[] {
  const where = "codeVariance";
  const t = checkTensor(where, "codes", codes, { rank: 2, dtype: "float32" });
  // Moments over zero rows are not defined (wasm returns uninitialised memory).
  if (t.shape[0] === 0) {
    throw new ArgumentError(where, "codes must have at least one row, got 0");
  }
  checkFinite(where, "codes", t);
  return Array.from(tf.tidy(() => tf.moments(t, 0).variance.dataSync()));
}

/**
 * A straight path in latent space from row `i` to row `j` of `codes`
 * [n, d]: `steps` evenly spaced points (1 - t) z_i + t z_j, t from 0 to 1.
 * Decode it to see what lies between two images.
 *
 * @returns a new [steps, d] tensor; the caller disposes it
 * @throws ArgumentError for out-of-range rows or steps < 2
 */
export function interpolateCodes(
  codes: tf.Tensor2D,
  i: number,
  j: number,
  options: { steps?: number } = {},
): tf.Tensor2D {
  const where = "interpolateCodes";
  const { steps = 10 } = checkOptions(where, options, ["steps"]);
  checkTensor(where, "codes", codes, { rank: 2, dtype: "float32" });
  const [n, d] = codes.shape;
  checkInteger(where, "i", i, { min: 0, max: n - 1 });
  checkInteger(where, "j", j, { min: 0, max: n - 1 });
  checkInteger(where, "options.steps", steps, { min: 2 });
  return tf.tidy(() => {
    const t = tf.linspace(0, 1, steps).reshape([steps, 1]);
    return codes.slice([i, 0], [1, d]).mul(tf.sub(1, t)).add(
      codes.slice([j, 0], [1, d]).mul(t),
    );
  }) as tf.Tensor2D;
}

// ---------------------------------------------------------------------------
// Test error, the beta sweep

/** Anything with `evaluate(images)` (an `Autoencoder` or a `GaussianVAE`). */
export interface Evaluator {
  /** Reconstruction error and rate on `images`. */
  evaluate(images: tf.Tensor): EvaluationReport;
}

/**
 * The reconstruction MSE per pixel of several models on the same images,
 * evaluated in the key order of `models`.
 *
 * @returns plain numbers with the keys of `models`
 * @throws ArgumentError if a model has no `evaluate` method
 */
export function reconstructionMSE(
  models: Record<string, Evaluator>,
  images: tf.Tensor,
): Record<string, number> {
  const where = "reconstructionMSE";
  if (models === null || typeof models !== "object") {
    throw new ArgumentError(where, "models must be an object keyed by name");
  }
  const entries = Object.entries(models);
  for (const [name, m] of entries) {
    if (!m || typeof m.evaluate !== "function") {
      throw new ArgumentError(
        where,
        `models["${name}"] must have an evaluate(images) method`,
      );
    }
  }
  checkTensor(where, "images", images, { dtype: "float32" });
  return Object.fromEntries(
    entries.map(([name, m]) => [name, m.evaluate(images).mse]),
  );
}

/** One model of a beta sweep (plain numbers, plus an optional tensor). */
export interface BetaSweepPoint {
  /** The beta-VAE weight. */
  beta: number;
  /** Mean KL(q(z|x) || N(0, I)) in nats per image on the test images. */
  rate: number;
  /** Reconstruction MSE per pixel on the test images (the distortion). */
  mse: number;
  /** Mean KL of each latent dimension, nats. */
  rateByDim: number[];
  /** Latent dimensions with at least 0.01 nats. */
  activeUnits: number;
  /** With `options.reconstruct`: this model's reconstructions of those images (caller disposes). */
  reconstruction?: tf.Tensor;
}

/** Options of `betaSweep`. */
export interface BetaSweepOptions {
  /** Trains a fresh model (e.g. the notebook's `fit`); called once per beta, in order. */
  fit: (model: GaussianVAE, beta: number) => Promise<unknown>;
  /** Images the trained models are evaluated on (the test set). */
  images: tf.Tensor;
  /** Latent dimension (default 16). */
  latentDim?: number;
  /** Seed of every model (default 2): the models differ only in beta. */
  seed?: number;
  /** Optional images to reconstruct with each model (kept in the result). */
  reconstruct?: tf.Tensor;
}

/**
 * The beta-VAE sweep: for each beta, a new `GaussianVAE({ latentDim, seed,
 * beta })` is trained by `fit`, evaluated on `images` (rate, distortion,
 * rate per dimension, active units) and disposed. Traces the
 * rate-distortion curve; a large beta collapses the posterior (rate 0).
 *
 * @returns one point per beta; their `reconstruction` tensors (if any) belong to the caller
 * @throws ArgumentError for an empty or non-positive `betas`, a missing `fit` or bad options
 */
export async function betaSweep(
  betas: number[],
  options: BetaSweepOptions,
): Promise<BetaSweepPoint[]> {
  const where = "betaSweep";
  if (!Array.isArray(betas) || betas.length === 0) {
    throw new ArgumentError(where, "betas must be a non-empty number[]");
  }
  betas.forEach((b, i) =>
    checkNumber(where, `betas[${i}]`, b, { min: 0, minExclusive: true })
  );
  if (options === undefined) {
    throw new ArgumentError(
      where,
      "options must be an object with fit and images",
    );
  }
  const { fit, images, latentDim = 16, seed = 2, reconstruct } = checkOptions(
    where,
    options,
    ["fit", "images", "latentDim", "seed", "reconstruct"],
  );
  if (typeof fit !== "function") {
    throw new ArgumentError(
      where,
      "options.fit must be a function (model, beta) => Promise that trains the model",
    );
  }
  checkTensor(where, "options.images", images, { dtype: "float32" });
  checkInteger(where, "options.latentDim", latentDim, { min: 1 });
  checkNumber(where, "options.seed", seed);
  if (reconstruct !== undefined) {
    checkTensor(where, "options.reconstruct", reconstruct, {
      dtype: "float32",
    });
  }
  const points: BetaSweepPoint[] = [];
  for (const beta of betas) {
    const model = new GaussianVAE({ latentDim, seed, beta });
    try {
      await fit(model, beta);
      const ev = model.evaluate(images);
      points.push({
        beta,
        rate: ev.rate,
        mse: ev.mse,
        rateByDim: ev.rateByDim,
        activeUnits: ev.activeUnits,
        ...(reconstruct
          ? { reconstruction: model.reconstruct(reconstruct) }
          : {}),
      });
    } finally {
      model.dispose();
    }
  }
  return points;
}

/**
 * The rows of a beta sweep formatted for `console.table`: beta, rate
 * (2 decimals), test MSE (4 decimals) and active dimensions.
 */
export function betaSweepTable(
  points: BetaSweepPoint[],
): Record<string, number | string>[] {
  if (!Array.isArray(points)) {
    throw new ArgumentError(
      "betaSweepTable",
      "points must be betaSweep()'s result",
    );
  }
  return points.map(({ beta, rate, mse, activeUnits }) => ({
    beta,
    "rate (nats)": rate.toFixed(2),
    "test MSE": mse.toFixed(4),
    "active dims": activeUnits,
  }));
}

// ---------------------------------------------------------------------------
// Denoising

/** Anything that reconstructs images: an `Autoencoder` or a `GaussianVAE`. */
export interface Reconstructor {
  /** Returns reconstructions of the input's shape. */
  reconstruct(images: tf.Tensor): tf.Tensor;
}

/**
 * Denoising error: corrupts `images` with `addNoise(images, noiseStd)`,
 * reconstructs them with `model`, and returns the mean squared error per
 * pixel against the clean images, plus the error of the noisy input itself
 * (the baseline a denoiser should beat). Plain numbers.
 *
 * @param options.seed the noise (without one, each call draws new noise)
 */
export function denoisingError(
  model: Reconstructor,
  images: tf.Tensor,
  noiseStd: number,
  options: { seed?: Seed } = {},
): { mse: number; noisyMse: number } {
  const where = "denoisingError";
  const { seed } = checkOptions(where, options, ["seed"]);
  if (!model || typeof (model as Reconstructor).reconstruct !== "function") {
    throw new ArgumentError(
      where,
      "model must have a reconstruct(images) method (an Autoencoder or a GaussianVAE)",
    );
  }
  checkTensor(where, "images", images, { dtype: "float32", minRank: 2 });
  checkNumber(where, "noiseStd", noiseStd, { min: 0 });
  const [mse, noisyMse] = tf.tidy(() => {
    const noisy = addNoise(images, noiseStd, { seed });
    const out = model.reconstruct(noisy);
    return [
      out.sub(images).square().mean().dataSync()[0],
      noisy.sub(images).square().mean().dataSync()[0],
    ];
  });
  return { mse, noisyMse };
}
