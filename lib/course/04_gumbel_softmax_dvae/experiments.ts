/**
 * The experiments of notebook 04 (Gumbel-softmax and the dVAE), as
 * plain-number summaries: a chi-square test of Gumbel-max samples, what the
 * temperature does to relaxed samples, moments of gradient estimators on a
 * toy objective with a known answer, and the encoder-gradient statistics,
 * code usage and reconstruction error of a trained `DVAE`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { DVAE } from "../../dvae.ts";
import {
  gumbelSoftmax,
  gumbelSoftmaxEstimates,
  type SampleObjective,
} from "../../gumbel.ts";
import { rngOrStream, type Seed } from "../../random.ts";
import {
  ArgumentError,
  checkChoice,
  checkInteger,
  checkNumber,
  checkOptions,
  checkTensor,
} from "../../validate.ts";

/**
 * Pearson's chi-square test of categorical samples against probabilities
 * `pi`: the counts of each class among `classes` (int32 indices in
 * [0, K), any shape, e.g. from `gumbelMax`), their frequencies and
 * chi2 = sum_k (O_k - n pi_k)^2 / (n pi_k), which has K - 1 degrees of
 * freedom when the samples follow `pi`. Plain numbers; `classes` is not
 * disposed.
 */
export function categoricalChiSquare(
  classes: tf.Tensor,
  pi: number[],
): { counts: number[]; frequencies: number[]; chi2: number } {
  const where = "categoricalChiSquare";
  checkTensor(where, "classes", classes, { dtype: "int32" });
  checkProbabilities(where, pi);
  const n = classes.size;
  if (n === 0) {
    throw new ArgumentError(where, "classes must hold at least one sample");
  }
  const counts = new Array(pi.length).fill(0);
  for (const k of classes.dataSync()) {
    if (!(k >= 0 && k < pi.length)) {
      throw new ArgumentError(
        where,
        `classes must be indices in [0, ${pi.length}), got ${k}`,
      );
    }
    counts[k]++;
  }
  const chi2 = counts.reduce(
    (a, o, k) => a + (o - n * pi[k]) ** 2 / (n * pi[k]),
    0,
  );
  return { counts, frequencies: counts.map((c) => c / n), chi2 };
}

/**
 * `samples` Gumbel-softmax draws of one categorical with probabilities
 * `pi` at temperature `tau`, as [samples][K] plain numbers (for the simplex
 * figure).
 */
export function relaxedSamples(
  pi: number[],
  tau: number,
  options: { samples: number; seed?: Seed },
): number[][] {
  const where = "relaxedSamples";
  const { samples, seed } = checkOptions(where, options, ["samples", "seed"]);
  checkProbabilities(where, pi);
  checkInteger(where, "options.samples", samples, { min: 1 });
  return tf.tidy(() => {
    const logits = tf.broadcastTo(tf.log(tf.tensor1d(pi)), [
      samples,
      pi.length,
    ]);
    return gumbelSoftmax(logits, { tau, seed }).arraySync() as number[][];
  });
}

/**
 * What the temperature does to relaxed samples of one categorical with
 * probabilities `pi` ([K], summing to 1): for each tau, `samples`
 * Gumbel-softmax draws from logits log(pi) (seed `seed`, so the same noise
 * for every tau) and two numbers, `meanGap` = || E[c] - pi ||_1 (the bias
 * of the relaxed sample) and `maxCoord` = E[max_k c_k] (1 for one-hots).
 * Plain numbers.
 */
export function relaxationStats(
  pi: number[],
  taus: number[],
  options: { samples: number; seed?: Seed },
): { tau: number; meanGap: number; maxCoord: number }[] {
  const where = "relaxationStats";
  const { samples, seed } = checkOptions(where, options, ["samples", "seed"]);
  checkProbabilities(where, pi);
  checkTaus(where, taus);
  checkInteger(where, "options.samples", samples, { min: 1 });
  const noiseSeed = oneSeed(where, seed);
  return tf.tidy(() => {
    const logits = tf.log(tf.tensor1d(pi));
    return taus.map((tau) =>
      tf.tidy(() => {
        const tiled = tf.broadcastTo(logits, [samples, pi.length]);
        const z = gumbelSoftmax(tiled, { tau, seed: noiseSeed });
        const gap = z.mean(0).sub(tf.exp(logits)).abs().sum();
        return {
          tau,
          meanGap: gap.dataSync()[0],
          maxCoord: z.max(1).mean().dataSync()[0],
        };
      })
    );
  });
}

/**
 * The one numeric seed an experiment reuses for each of its settings (the
 * same noise at every temperature): `seed`, or without it a fresh one from
 * the shared stream.
 */
function oneSeed(where: string, seed: Seed | undefined): number {
  if (typeof seed === "number") return checkNumber(where, "options.seed", seed);
  return rngOrStream(seed, where).nextUint32();
}

/** Throws unless `pi` is an array of >= 2 positive numbers summing to 1. */
function checkProbabilities(where: string, pi: unknown): number[] {
  if (!Array.isArray(pi) || pi.length < 2) {
    throw new ArgumentError(
      where,
      `pi must be an array of at least 2 probabilities, got ${String(pi)}`,
    );
  }
  pi.forEach((p, k) =>
    checkNumber(where, `pi[${k}]`, p, { min: 0, minExclusive: true })
  );
  const total = pi.reduce((a: number, p: number) => a + p, 0);
  if (Math.abs(total - 1) > 1e-6) {
    throw new ArgumentError(where, `pi must sum to 1, got ${total}`);
  }
  return pi;
}

function checkTaus(where: string, taus: unknown): number[] {
  if (!Array.isArray(taus) || taus.length === 0) {
    throw new ArgumentError(
      where,
      `taus must be a non-empty array of temperatures, got ${String(taus)}`,
    );
  }
  taus.forEach((t, i) =>
    checkNumber(where, `taus[${i}]`, t, { min: 0, minExclusive: true })
  );
  return taus;
}

/** Moments of single-sample gradient estimates, as from `estimatorMoments`. */
export interface EstimatorMoments {
  /** Mean per coordinate. */
  mean: number[];
  /** Unbiased variance per coordinate. */
  variance: number[];
  /** Standard error of the mean per coordinate. */
  standardError: number[];
  /** Sum of the variances (the trace of the covariance). */
  totalVariance: number;
}

/**
 * Mean, variance and standard error per coordinate of single-sample
 * gradient estimates [S, ...] (as returned by `scoreFunctionEstimates` and
 * `gumbelSoftmaxEstimates`), and the total variance (sum over
 * coordinates). Plain numbers.
 */
export function estimatorMoments(estimates: tf.Tensor): EstimatorMoments {
  const where = "estimatorMoments";
  checkTensor(where, "estimates", estimates, { minRank: 1 });
  const s = estimates.shape[0];
  if (s < 2) {
    throw new ArgumentError(
      where,
      `estimates needs at least 2 samples on axis 0, got ${s}`,
    );
  }
  const d = estimates.size / s;
  const v = estimates.dataSync();
  const mean = new Array(d).fill(0);
  const variance = new Array(d).fill(0);
  for (let i = 0; i < s; i++) {
    for (let j = 0; j < d; j++) mean[j] += v[i * d + j] / s;
  }
  for (let i = 0; i < s; i++) {
    for (let j = 0; j < d; j++) {
      variance[j] += (v[i * d + j] - mean[j]) ** 2 / (s - 1);
    }
  }
  return {
    mean,
    variance,
    standardError: variance.map((x) => Math.sqrt(x / s)),
    totalVariance: variance.reduce((a, b) => a + b, 0),
  };
}

/**
 * A toy objective with a known answer: f(z) = sum over variables of
 * ||z - target||^2 (target has K entries, shared by all variables).
 * `exactGradient(logits)` is the true gradient of E_{c ~ q}[f(onehot(c))]
 * in closed form, q_j (f_j - sum_k q_k f_k) with f_j = ||e_j - target||^2,
 * as nested plain numbers flattened in row-major order.
 */
export function quadraticToy(target: number[]): {
  f: SampleObjective;
  exactGradient: (logits: tf.Tensor) => number[];
  valueAt: (k: number) => number;
} {
  const where = "quadraticToy";
  if (!Array.isArray(target) || target.length < 2) {
    throw new ArgumentError(
      where,
      "target must be an array of at least 2 numbers (one per class)",
    );
  }
  target.forEach((t, i) => checkNumber(where, `target[${i}]`, t));
  const k = target.length;
  const norm2 = target.reduce((a, t) => a + t * t, 0);
  const valueAt = (j: number) => 1 - 2 * target[j] + norm2;
  const f: SampleObjective = (z) => {
    checkTensor(`${where}.f`, "z", z, { minRank: 2 });
    if (z.shape[z.rank - 1] !== k) {
      throw new ArgumentError(
        `${where}.f`,
        `z must have ${k} classes on the last axis, got [${z.shape}]`,
      );
    }
    return tf.tidy(() =>
      z.sub(tf.tensor1d(target)).square().reshape([z.shape[0], -1]).sum(1)
    );
  };
  const exactGradient = (logits: tf.Tensor) => {
    checkTensor(`${where}.exactGradient`, "logits", logits, { minRank: 1 });
    if (logits.shape[logits.rank - 1] !== k) {
      throw new ArgumentError(
        `${where}.exactGradient`,
        `logits must have ${k} classes, got [${logits.shape}]`,
      );
    }
    const qt = tf.softmax(logits);
    const q = qt.dataSync().slice();
    qt.dispose();
    const out: number[] = [];
    for (let r = 0; r < q.length / k; r++) {
      let mean = 0;
      for (let j = 0; j < k; j++) mean += q[r * k + j] * valueAt(j);
      for (let j = 0; j < k; j++) out.push(q[r * k + j] * (valueAt(j) - mean));
    }
    return out;
  };
  return { f, exactGradient, valueAt };
}

/**
 * `estimatorMoments` of `samples` Gumbel-softmax gradient estimates
 * (`gumbelSoftmaxEstimates`, seed `seed` for every tau) at each
 * temperature of `taus`: one bias/variance point per tau. Plain numbers;
 * the estimate tensors are disposed here.
 */
export function gumbelSoftmaxMomentsByTau(
  logits: tf.Tensor,
  f: SampleObjective,
  options: { taus: number[]; samples: number; seed?: Seed },
): EstimatorMoments[] {
  const where = "gumbelSoftmaxMomentsByTau";
  const { taus, samples, seed } = checkOptions(where, options, [
    "taus",
    "samples",
    "seed",
  ]);
  checkTaus(where, taus);
  const noiseSeed = oneSeed(where, seed);
  return taus.map((tau) => {
    const e = gumbelSoftmaxEstimates(logits, f, {
      samples,
      tau,
      seed: noiseSeed,
    });
    const m = estimatorMoments(e);
    e.dispose();
    return m;
  });
}

/**
 * Squared bias ||mean - exact||^2 of an estimator whose sample mean is
 * `mean`, against the exact gradient `exact` (same length). A plain number.
 */
export function estimatorSquaredBias(mean: number[], exact: number[]): number {
  const where = "estimatorSquaredBias";
  for (const [name, v] of [["mean", mean], ["exact", exact]] as const) {
    if (!Array.isArray(v) || v.length === 0) {
      throw new ArgumentError(where, `${name} must be a non-empty array`);
    }
    v.forEach((x, i) => checkNumber(where, `${name}[${i}]`, x));
  }
  if (mean.length !== exact.length) {
    throw new ArgumentError(
      where,
      `mean and exact must have the same length, got ${mean.length} and ${exact.length}`,
    );
  }
  return mean.reduce((a, v, i) => a + (v - exact[i]) ** 2, 0);
}

// ---------------------------------------------------------------------------
// The trained dVAE

function checkModel(where: string, model: unknown): DVAE {
  if (!(model instanceof DVAE)) {
    throw new ArgumentError(where, "model must be a DVAE");
  }
  return model;
}

/**
 * Per-parameter statistics of the encoder gradient over `draws` independent
 * single-sample estimates on one batch, for the Gumbel-softmax
 * (reparameterised) estimator or the score-function (REINFORCE) one:
 * the squared norm of the mean gradient, the total variance (sum of
 * per-parameter variances) and their ratio (signal-to-noise). Plain
 * numbers; running sums, so nothing of size draws x parameters is stored.
 */
export function encoderGradientStats(
  model: DVAE,
  x: tf.Tensor,
  options: {
    estimator: "gumbel" | "reinforce";
    draws: number;
    tau?: number;
    seed?: Seed;
    baseline?: number;
  },
): { meanNormSquared: number; totalVariance: number; snr: number } {
  const where = "encoderGradientStats";
  const { estimator, draws, tau = 1, seed, baseline = 0 } = checkOptions(
    where,
    options,
    ["estimator", "draws", "tau", "seed", "baseline"],
  );
  checkModel(where, model);
  checkTensor(where, "x", x, { shape: [null, 28, 28, 1] });
  checkChoice(where, "options.estimator", estimator, ["gumbel", "reinforce"]);
  checkInteger(where, "options.draws", draws, { min: 2 });
  checkNumber(where, "options.tau", tau, { min: 0, minExclusive: true });
  checkNumber(where, "options.baseline", baseline);
  const vars = model.encoderVariables();
  const rng = rngOrStream(seed, where);
  let sum: Float64Array | null = null;
  let sumSq: Float64Array | null = null;
  for (let d = 0; d < draws; d++) {
    const s = rng.nextUint32();
    const flat = tf.tidy(() => {
      const f = () =>
        estimator === "gumbel"
          ? model.loss({ images: x, tau, seed: s }).total
          : model.reinforceLoss(x, { seed: s, baseline });
      const { grads } = tf.variableGrads(f, vars);
      return tf.concat(vars.map((v) => grads[v.name].reshape([-1])));
    });
    const g = flat.dataSync();
    flat.dispose();
    sum ??= new Float64Array(g.length);
    sumSq ??= new Float64Array(g.length);
    for (let i = 0; i < g.length; i++) {
      sum[i] += g[i];
      sumSq[i] += g[i] * g[i];
    }
  }
  let meanNormSquared = 0;
  let totalVariance = 0;
  for (let i = 0; i < sum!.length; i++) {
    const m = sum![i] / draws;
    meanNormSquared += m * m;
    totalVariance += Math.max(0, (sumSq![i] - draws * m * m) / (draws - 1));
  }
  return {
    meanNormSquared,
    totalVariance,
    snr: meanNormSquared / totalVariance,
  };
}

/** One row of `compareEncoderEstimators`: an estimator and its statistics. */
export interface EstimatorStatsRow {
  /** "Gumbel-softmax", "REINFORCE" or "REINFORCE + baseline". */
  name: string;
  /** Squared norm of the mean encoder gradient. */
  meanNormSquared: number;
  /** Sum of the per-parameter variances. */
  totalVariance: number;
  /** meanNormSquared / totalVariance. */
  snr: number;
}

/**
 * `encoderGradientStats` of the three estimators on the same batch, all
 * with seed `seed` and `draws` draws: Gumbel-softmax at temperature `tau`,
 * REINFORCE, and REINFORCE with the constant `baseline` (e.g. the mean
 * reconstruction cost). Plain numbers, one row per estimator in that order.
 */
export function compareEncoderEstimators(
  model: DVAE,
  x: tf.Tensor,
  options: { draws: number; tau: number; baseline: number; seed?: number },
): EstimatorStatsRow[] {
  const where = "compareEncoderEstimators";
  const { draws, tau, baseline, seed: given } = checkOptions(where, options, [
    "draws",
    "tau",
    "baseline",
    "seed",
  ]);
  checkNumber(where, "options.baseline", baseline);
  const seed = oneSeed(where, given); // the same draws for all three
  const runs = [
    ["Gumbel-softmax", { estimator: "gumbel", tau, draws, seed }],
    ["REINFORCE", { estimator: "reinforce", draws, seed }],
    ["REINFORCE + baseline", { estimator: "reinforce", draws, seed, baseline }],
  ] as const;
  return runs.map(([name, o]) => ({
    name,
    ...encoderGradientStats(model, x, o),
  }));
}

/**
 * Summary of a code-usage table ([N][K] fractions, rows summing to 1, as
 * from `DVAE.codeUsage`): the perplexity exp(H) of each row (the number of
 * effectively used classes, between 1 and K), their mean, and how many of
 * the N*K (variable, class) cells are never chosen. Plain numbers.
 */
export function dvaeCodeUsageStats(usage: number[][]): {
  perplexity: number[];
  meanPerplexity: number;
  unused: number;
} {
  const where = "dvaeCodeUsageStats";
  if (!Array.isArray(usage) || usage.length === 0) {
    throw new ArgumentError(
      where,
      "usage must be a non-empty [N][K] array of fractions",
    );
  }
  usage.forEach((r, n) => {
    if (!Array.isArray(r) || r.length !== usage[0].length || r.length < 1) {
      throw new ArgumentError(
        where,
        `usage must be a rectangular [N][K] array, but row ${n} is not an array of ${
          usage[0].length
        } numbers`,
      );
    }
    r.forEach((p, k) =>
      checkNumber(where, `usage[${n}][${k}]`, p, { min: 0, max: 1 })
    );
  });
  const perplexity = usage.map((r) =>
    Math.exp(-r.reduce((a, p) => a + (p > 0 ? p * Math.log(p) : 0), 0))
  );
  return {
    perplexity,
    meanPerplexity: perplexity.reduce((a, b) => a + b) / usage.length,
    unused: usage.flat().filter((p) => p === 0).length,
  };
}

/**
 * Mean squared pixel error between `x` and its reconstruction by `model`
 * (`DVAE.reconstruct`: through its most likely code with `mode: "argmax"`,
 * the default here, or through an exact sample). A plain number.
 */
export function dvaeReconstructionMSE(
  model: DVAE,
  x: tf.Tensor,
  options: { mode?: "sample" | "argmax"; seed?: Seed } = {},
): number {
  const where = "dvaeReconstructionMSE";
  const { mode = "argmax", seed } = checkOptions(where, options, [
    "mode",
    "seed",
  ]);
  checkModel(where, model);
  return tf.tidy(() =>
    model.reconstruct(x, { mode, seed }).sub(x).square().mean().dataSync()[0]
  );
}
