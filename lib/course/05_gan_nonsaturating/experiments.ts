/**
 * Experiment helpers of notebook 05 (GANs): what one game needs, the
 * optimal discriminator of section 1, the generator-loss derivatives of
 * section 2, the gradient norm that reaches G, snapshots at fractions of a
 * run, and the sample-quality report of section 5. The reusable ideas (the
 * losses, the networks, `GAN` and its two objectives, the metrics) live in
 * lib/gan.ts, lib/metrics.ts and lib/classifier.ts.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BatchSampler } from "../../data.ts";
import {
  type GAN,
  type GANBatch,
  nonSaturatingGeneratorLoss,
  saturatingGeneratorLoss,
} from "../../gan.ts";
import {
  type Features,
  frechetDistance,
  inceptionScore,
  precisionRecall,
} from "../../metrics.ts";
import type { Trainable } from "../../model.ts";
import { randomNormal, type Seed } from "../../random.ts";
import {
  ArgumentError,
  checkInteger,
  checkNumber,
  checkOptions,
  checkTensor,
} from "../../validate.ts";

/** Everything one game needs: the GAN, each player's objective and optimizer, and the real batches. */
export interface GANGame {
  /** G and D. */
  gan: GAN;
  /** D's objective (G frozen). */
  dObjective: Trainable<GANBatch>;
  /** G's objective (D frozen). */
  gObjective: Trainable<GANBatch>;
  /** D's optimizer. */
  dOptimizer: tf.Optimizer;
  /** G's optimizer. */
  gOptimizer: tf.Optimizer;
  /** Real batches (`batchSampler` over the data). */
  sampler: BatchSampler<GANBatch>;
}

/** Frees what a game owns: G and D, and both optimizers. */
export function disposeGame(game: GANGame): void {
  game.gan.dispose();
  game.dOptimizer.dispose();
  game.gOptimizer.dispose();
}

/**
 * The best discriminator for a fixed generator,
 * D*(x) = p_data(x) / (p_data(x) + p_g(x)), evaluated pointwise from the two
 * densities at the same points (plain arrays of equal length, values >= 0,
 * not both 0). Equals 1/2 wherever p_g = p_data. Returns a plain array.
 */
export function optimalDiscriminator(
  pData: readonly number[],
  pG: readonly number[],
): number[] {
  const where = "optimalDiscriminator";
  for (const [name, p] of [["pData", pData], ["pG", pG]] as const) {
    if (!Array.isArray(p) || p.length === 0) {
      throw new ArgumentError(
        where,
        `${name} must be a non-empty number[] of densities, got ${String(p)}`,
      );
    }
    p.forEach((v, i) => checkNumber(where, `${name}[${i}]`, v, { min: 0 }));
  }
  if (pData.length !== pG.length) {
    throw new ArgumentError(
      where,
      `pData and pG must have the same length, got ${pData.length} and ${pG.length}`,
    );
  }
  return pData.map((p, i) => {
    if (p + pG[i] === 0) {
      throw new ArgumentError(
        where,
        `D* is undefined where both densities are 0 (index ${i})`,
      );
    }
    return p / (p + pG[i]);
  });
}

/**
 * The derivative of each generator loss with respect to D's logit v, for a
 * single fake sample, by autodiff at each given logit: saturating
 * d/dv log(1 - sigmoid(v)) = -sigmoid(v), non-saturating
 * d/dv -log sigmoid(v) = -(1 - sigmoid(v)). Returns plain arrays of
 * magnitudes |d loss / d v|.
 */
export function generatorLossGradients(
  logits: number[],
): { saturating: number[]; nonSaturating: number[] } {
  const where = "generatorLossGradients";
  if (!Array.isArray(logits) || logits.length === 0) {
    throw new ArgumentError(
      where,
      `logits must be a non-empty number[], got ${String(logits)}`,
    );
  }
  logits.forEach((v, i) => checkNumber(where, `logits[${i}]`, v));
  const n = logits.length;
  // n times the gradient of the mean: each entry is one sample's derivative.
  const perSample = (loss: (v: tf.Tensor) => tf.Scalar) =>
    tf.tidy(() => {
      const g = tf.grad((v: tf.Tensor) => tf.mul(loss(v), n))(
        tf.tensor1d(logits),
      );
      return Array.from(tf.abs(g).dataSync());
    });
  return {
    saturating: perSample(saturatingGeneratorLoss),
    nonSaturating: perSample(nonSaturatingGeneratorLoss),
  };
}

/**
 * The norm of the gradient of `objective`'s loss on `batch` with respect to
 * its variables (no update): how much signal reaches the player. A number;
 * the batch stays the caller's.
 */
export function gradientNorm<B>(objective: Trainable<B>, batch: B): number {
  const vars = objective.trainableVariables();
  const list = Array.isArray(vars) ? vars : Object.values(vars).flat();
  return tf.tidy(() => {
    const { grads } = tf.variableGrads(() => objective.loss(batch).total, list);
    const squares = Object.values(grads).map((g) => tf.sum(tf.square(g)));
    return tf.sqrt(tf.addN(squares)).dataSync()[0];
  });
}

/**
 * An `onRecord` callback for `trainLoop` that calls `fn(round)` after every
 * `steps / parts` rounds (round counted from 1), e.g. to keep four snapshots
 * of a run: `onRecord: atFractions(steps, 4, (round) => ...)`. `steps` must
 * be a multiple of `parts`.
 */
export function atFractions(
  steps: number,
  parts: number,
  fn: (round: number) => void,
): (i: number) => void {
  const where = "atFractions";
  checkInteger(where, "steps", steps, { min: 1 });
  checkInteger(where, "parts", parts, { min: 1, max: steps });
  if (steps % parts !== 0) {
    throw new ArgumentError(
      where,
      `steps (${steps}) must be a multiple of parts (${parts})`,
    );
  }
  if (typeof fn !== "function") {
    throw new ArgumentError(where, "fn must be a function (round) => void");
  }
  return (i: number) => {
    if ((i + 1) % (steps / parts) === 0) fn(i + 1);
  };
}

/** The sample-quality numbers of one set of generated samples. */
export interface SampleScores {
  /** Frechet distance of the Gaussians fitted to the two feature sets (lower is better). */
  frechet: number;
  /** Share of generated samples inside the real k-NN manifold. */
  precision: number;
  /** Share of real samples inside the generated k-NN manifold. */
  recall: number;
  /** Inception Score of the generated samples' class probabilities. */
  inceptionScore: number;
}

const rowCount = (x: Features) =>
  x instanceof tf.Tensor ? x.shape[0] : Array.isArray(x) ? x.length : NaN;

/**
 * All sample-quality numbers at once: `frechetDistance(real, fake)`,
 * `precisionRecall(real, fake, { k })` and `inceptionScore(fakeProbs)`, for
 * real features [n, d], generated features [m, d] and the generated samples'
 * class probabilities [m, C]. Returns plain numbers (the inputs stay the
 * caller's).
 */
export function sampleScores(
  realFeatures: Features,
  fakeFeatures: Features,
  fakeProbs: Features,
  options: { k?: number } = {},
): SampleScores {
  const where = "sampleScores";
  const { k = 3 } = checkOptions(where, options, ["k"]);
  if (rowCount(fakeFeatures) !== rowCount(fakeProbs)) {
    throw new ArgumentError(
      where,
      `fakeFeatures and fakeProbs must describe the same samples, got ${
        rowCount(fakeFeatures)
      } and ${rowCount(fakeProbs)} rows`,
    );
  }
  const pr = precisionRecall(realFeatures, fakeFeatures, { k });
  return {
    frechet: frechetDistance(realFeatures, fakeFeatures),
    precision: pr.precision,
    recall: pr.recall,
    inceptionScore: inceptionScore(fakeProbs),
  };
}

/**
 * A `console.table`-ready view of named score rows: `{ [name]: { score:
 * value rounded to `digits` decimals } }`, keeping the order of the rows and
 * of their keys. Returns plain data.
 */
export function scoreTable(
  rows: readonly ({ name: string } & Record<string, number | string>)[],
  options: { digits?: number } = {},
): Record<string, Record<string, number>> {
  const where = "scoreTable";
  const { digits = 3 } = checkOptions(where, options, ["digits"]);
  checkInteger(where, "digits", digits, { min: 0, max: 20 });
  if (!Array.isArray(rows) || rows.length === 0) {
    throw new ArgumentError(where, "rows must be a non-empty array");
  }
  const table: Record<string, Record<string, number>> = {};
  rows.forEach((row, i) => {
    const { name, ...scores } = row ?? {};
    if (typeof name !== "string") {
      throw new ArgumentError(where, `rows[${i}].name must be a string`);
    }
    table[name] = Object.fromEntries(
      Object.entries(scores).map(([key, v]) => {
        checkNumber(where, `rows[${i}].${key}`, v);
        return [key, Number((v as number).toFixed(digits))];
      }),
    );
  });
  return table;
}

/**
 * The `count` largest k-NN radii (e.g. from `knnRadii`) with their row
 * indices, largest first (ties keep the lower index first). Returns plain
 * data.
 */
export function largestRadii(
  radii: readonly number[],
  count: number,
): { index: number; radius: number }[] {
  const where = "largestRadii";
  if (!Array.isArray(radii) || radii.length === 0) {
    throw new ArgumentError(where, "radii must be a non-empty number[]");
  }
  radii.forEach((r, i) => checkNumber(where, `radii[${i}]`, r, { min: 0 }));
  checkInteger(where, "count", count, { min: 1, max: radii.length });
  return radii
    .map((radius, index) => ({ index, radius }))
    .sort((a, b) => b.radius - a.radius)
    .slice(0, count);
}

/**
 * Section 4: the share of dark pixels (below `threshold`, default 0.05) of
 * images [n, h, w, c] in [0, 1]. Fashion-MNIST's items lie on a black
 * background, so about half of a real image's pixels are dark; a G whose D
 * accepts noisy backgrounds (the co-adaptation of the lecture) leaves fewer.
 * Returns a number; the images stay the caller's.
 */
export function darkPixelShare(images: tf.Tensor, threshold = 0.05): number {
  const where = "darkPixelShare";
  checkTensor(where, "images", images, { rank: 4, dtype: "float32" });
  checkNumber(where, "threshold", threshold, { min: 0, max: 1 });
  return tf.tidy(() =>
    tf.mean(tf.cast(tf.less(images, threshold), "float32")).dataSync()[0]
  );
}

/**
 * Section 4: noise vectors on straight lines between pairs of random z, for
 * a latent interpolation: `pairs` lines of `steps` points each, line after
 * line ([pairs * steps, noiseDim]); each line runs from one draw
 * z_0 ~ N(0, I) to another z_1 through (1 - t) z_0 + t z_1. Without a
 * seed, the package's shared stream continues. The caller disposes it.
 */
export function interpolationNoise(
  noiseDim: number,
  options: { pairs?: number; steps?: number; seed?: Seed } = {},
): tf.Tensor2D {
  const where = "interpolationNoise";
  const { pairs = 3, steps = 10, seed } = checkOptions(where, options, [
    "pairs",
    "steps",
    "seed",
  ]);
  checkInteger(where, "noiseDim", noiseDim, { min: 1 });
  checkInteger(where, "pairs", pairs, { min: 1 });
  checkInteger(where, "steps", steps, { min: 2 });
  return tf.tidy(() => {
    const ends = randomNormal([pairs, 2, noiseDim], { seed });
    const t = tf.linspace(0, 1, steps).reshape([1, steps, 1]);
    const z0 = ends.slice([0, 0, 0], [pairs, 1, noiseDim]);
    const z1 = ends.slice([0, 1, 0], [pairs, 1, noiseDim]);
    const line = tf.add(tf.mul(tf.sub(1, t), z0), tf.mul(t, z1));
    return line.reshape([pairs * steps, noiseDim]) as tf.Tensor2D;
  });
}
