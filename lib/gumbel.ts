/**
 * Sampling a categorical variable through Gumbel noise, and its continuous
 * relaxation.
 *
 * - Gumbel-max: adding independent Gumbel(0, 1) noise to log-probabilities
 *   and taking the argmax draws an exact sample of Categorical(pi).
 * - Gumbel-softmax (the Concrete distribution): replace the argmax by a
 *   softmax at temperature tau. The sample is now a point inside the
 *   simplex and a differentiable function of the logits, so gradients flow
 *   (with a bias that vanishes as tau -> 0, while the variance grows).
 * - The KL of a categorical posterior to the uniform prior,
 *   KL(q || U(K)) = log K - H(q), the only KL term a dVAE needs.
 * - The score-function (REINFORCE) estimator and the Gumbel-softmax
 *   estimator of the gradient of E_{c ~ q}[f(c)], for comparing their bias
 *   and variance on a toy objective whose exact gradient is known.
 *
 * All functions work on the last axis of `logits` (the K classes); logits
 * need not be normalised (softmax is shift invariant).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { straightThrough } from "./autodiff.ts";
import { rngFrom, type Seed } from "./random.ts";
import {
  ArgumentError,
  checkFinite,
  checkInteger,
  checkNumber,
  checkTensor,
} from "./validate.ts";

/** Validates logits: a finite float tensor with a class axis of size >= 2. */
function checkLogits(where: string, logits: unknown): tf.Tensor {
  const t = checkTensor(where, "logits", logits, {
    minRank: 1,
    dtype: "float32",
  });
  const k = t.shape[t.rank - 1];
  if (k < 2) {
    throw new ArgumentError(
      where,
      `logits must have at least 2 classes on the last axis, got K = ${k} (shape [${t.shape}]); a categorical with one class has nothing to sample`,
    );
  }
  checkFinite(where, "logits", t);
  return t;
}

/**
 * Gumbel(0, 1) noise as plain numbers: g = -log(-log u) with u drawn from
 * the open interval (0, 1), so both logs are finite (|g| < 24 always).
 */
function gumbelValues(size: number, seed: Seed | undefined): Float32Array {
  const rng = rngFrom(seed);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    out[i] = -Math.log(-Math.log(rng.uniformOpen()));
  }
  return out;
}

/**
 * A float32 tensor of standard Gumbel samples, g = -log(-log u) with
 * u ~ U(0, 1) from the seeded generator. Never infinite or NaN: u is drawn
 * from the open interval. The caller disposes the tensor.
 */
export function sampleGumbel(
  shape: number[],
  { seed }: { seed?: Seed } = {},
): tf.Tensor {
  if (!Array.isArray(shape)) {
    throw new ArgumentError(
      "sampleGumbel",
      `shape must be an array of non-negative integers, got ${String(shape)}`,
    );
  }
  shape.forEach((s, i) =>
    checkInteger("sampleGumbel", `shape[${i}]`, s, { min: 0 })
  );
  const size = tf.util.sizeFromShape(shape);
  return tf.tensor(gumbelValues(size, seed), shape, "float32");
}

/**
 * The Gumbel-max trick: c = argmax_k (logits_k + g_k), g ~ Gumbel(0, 1),
 * is an exact sample of Categorical(softmax(logits)). Returns int32 class
 * indices with the shape of `logits` minus its last axis (caller disposes).
 */
export function gumbelMax(
  logits: tf.Tensor,
  { seed }: { seed?: Seed } = {},
): tf.Tensor {
  const where = "gumbelMax";
  checkLogits(where, logits);
  return tf.tidy(() => {
    const g = tf.tensor(gumbelValues(logits.size, seed), logits.shape);
    return tf.argMax(logits.add(g), -1);
  });
}

/** Options of `gumbelSoftmax`. */
export interface GumbelSoftmaxOptions {
  /** Temperature tau > 0: small is close to one-hot, large close to uniform. */
  tau: number;
  /**
   * Straight-through variant: the forward value is the one-hot of the
   * sample's argmax, the gradient is the soft sample's (default false).
   */
  hard?: boolean;
  /** Seed of the Gumbel noise (ignored when `noise` is given). */
  seed?: Seed;
  /**
   * Gumbel noise to use instead of drawing it (same shape as `logits`), so
   * several estimators can share one draw.
   */
  noise?: tf.Tensor;
}

/**
 * A Gumbel-softmax (Concrete) sample softmax((logits + g) / tau) over the
 * last axis, differentiable in `logits`. Computed as exp(logSoftmax(.)):
 * the log-space normalisation cannot overflow, so logits of +-1e4 and tau
 * down to 1e-3 stay finite. With `hard: true` the value is the one-hot of
 * the argmax (an exact categorical sample) and the gradient is the soft
 * sample's (straight-through). Returns a float32 tensor shaped like
 * `logits` (caller disposes).
 */
export function gumbelSoftmax(
  logits: tf.Tensor,
  options: GumbelSoftmaxOptions,
): tf.Tensor {
  const where = "gumbelSoftmax";
  checkLogits(where, logits);
  if (options === null || typeof options !== "object") {
    throw new ArgumentError(
      where,
      "options must be an object with a temperature, e.g. { tau: 0.5 }",
    );
  }
  const { tau, hard = false, seed, noise } = options;
  checkNumber(where, "options.tau", tau, { min: 0, minExclusive: true });
  if (typeof hard !== "boolean") {
    throw new ArgumentError(
      where,
      `options.hard must be true or false, got ${String(hard)}`,
    );
  }
  if (noise !== undefined) {
    checkTensor(where, "options.noise", noise, { shape: logits.shape });
    checkFinite(where, "options.noise", noise);
  }
  return tf.tidy(() => {
    const g = noise ?? tf.tensor(gumbelValues(logits.size, seed), logits.shape);
    const soft = tf.exp(tf.logSoftmax(logits.add(g).div(tau)));
    if (!hard) return soft;
    const k = logits.shape[logits.rank - 1];
    // The argmax is taken on a detached copy so the tape never tries to
    // differentiate the int32 indices; the gradient goes through `soft`.
    const index = tf.argMax(tf.tensor(soft.dataSync(), soft.shape), -1);
    return straightThrough(soft, tf.oneHot(index, k).toFloat());
  });
}

/**
 * Entropy H(q) = -sum_k q_k log q_k of q = softmax(logits), over the last
 * axis, in nats. Uses logSoftmax, so a class whose probability underflows
 * to 0 contributes 0 (not 0 * -inf = NaN). Returns a tensor shaped like
 * `logits` minus its last axis (caller disposes).
 */
export function categoricalEntropy(logits: tf.Tensor): tf.Tensor {
  checkLogits("categoricalEntropy", logits);
  return tf.tidy(() => {
    const logq = tf.logSoftmax(logits);
    return tf.neg(tf.sum(tf.exp(logq).mul(logq), -1));
  });
}

/**
 * KL(q || U(K)) = sum_k q_k (log q_k + log K) = log K - H(q) for
 * q = softmax(logits), over the last axis, in nats: 0 when q is uniform,
 * log K when q is one-hot. Stable when probabilities underflow (log space).
 * Returns a tensor shaped like `logits` minus its last axis (caller
 * disposes).
 */
export function klToUniform(logits: tf.Tensor): tf.Tensor {
  checkLogits("klToUniform", logits);
  const k = logits.shape[logits.rank - 1];
  return tf.tidy(() => {
    const logq = tf.logSoftmax(logits);
    // Summing q * (log q + log K) rather than log K - H keeps the result
    // accurate (no cancellation) when q is close to uniform.
    return tf.sum(tf.exp(logq).mul(logq.add(Math.log(k))), -1);
  });
}

/** Options of `temperatureSchedule`. */
export interface TemperatureScheduleOptions {
  /** Temperature at step 0 (default 1). */
  tau0?: number;
  /** Floor the temperature never goes below (default 0.5). */
  tauMin?: number;
  /**
   * Decay rate r per step in tau0 * exp(-r t). Give either `rate` or
   * `steps` (default: rate 0, a constant temperature).
   */
  rate?: number;
  /** Number of steps after which the floor is reached (sets the rate). */
  steps?: number;
}

/**
 * The annealing schedule tau(t) = max(tauMin, tau0 * exp(-r t)) used to
 * train Gumbel-softmax models: start smooth (low-variance, biased
 * gradients), end close to discrete. Returns a plain function of the step.
 */
export function temperatureSchedule(
  options: TemperatureScheduleOptions = {},
): (step: number) => number {
  const where = "temperatureSchedule";
  const tau0 = checkNumber(where, "options.tau0", options.tau0 ?? 1, {
    min: 0,
    minExclusive: true,
  });
  const tauMin = checkNumber(where, "options.tauMin", options.tauMin ?? 0.5, {
    min: 0,
    minExclusive: true,
    max: tau0,
  });
  if (options.rate !== undefined && options.steps !== undefined) {
    throw new ArgumentError(
      where,
      "give either options.rate or options.steps, not both",
    );
  }
  let rate = 0;
  if (options.rate !== undefined) {
    rate = checkNumber(where, "options.rate", options.rate, { min: 0 });
  } else if (options.steps !== undefined) {
    const steps = checkInteger(where, "options.steps", options.steps, {
      min: 1,
    });
    rate = Math.log(tau0 / tauMin) / steps;
  }
  return (step: number) => {
    checkNumber("temperatureSchedule(step)", "step", step, { min: 0 });
    return Math.max(tauMin, tau0 * Math.exp(-rate * step));
  };
}

// ---------------------------------------------------------------------------
// Gradient estimators for E_{c ~ softmax(logits)} [f(onehot(c))]

/**
 * An objective of one-hot (or relaxed) samples: takes [S, ...logits.shape]
 * and returns [S], one value per sample. It must be built from tf ops so
 * that the Gumbel-softmax estimator can differentiate it.
 */
export type SampleObjective = (samples: tf.Tensor) => tf.Tensor;

function checkObjectiveOutput(where: string, value: unknown, s: number) {
  checkTensor(where, "f(samples)", value, { shape: [s] });
}

function checkEstimatorArguments(
  where: string,
  logits: tf.Tensor,
  f: SampleObjective,
  samples: number,
): void {
  checkLogits(where, logits);
  if (typeof f !== "function") {
    throw new ArgumentError(
      where,
      "f must be a function of [S, ...] samples returning [S]",
    );
  }
  checkInteger(where, "samples", samples, { min: 1 });
}

/**
 * Single-sample score-function (REINFORCE) estimates of the gradient of
 * E_{c ~ q}[f(c)] with respect to `logits`, q = softmax(logits) on the last
 * axis (every other axis is an independent variable): for a draw c,
 * f(c) * d log q(c) / d logits = f(c) * (onehot(c) - q). Unbiased whatever
 * f is (f need not be differentiable), but noisy. `baseline` b is
 * subtracted from f (still unbiased since E[d log q] = 0). Returns
 * [samples, ...logits.shape] (caller disposes).
 */
export function scoreFunctionEstimates(
  logits: tf.Tensor,
  f: SampleObjective,
  { samples, seed, baseline = 0 }: {
    samples: number;
    seed?: Seed;
    baseline?: number;
  },
): tf.Tensor {
  const where = "scoreFunctionEstimates";
  checkEstimatorArguments(where, logits, f, samples);
  checkNumber(where, "baseline", baseline);
  const k = logits.shape[logits.rank - 1];
  return tf.tidy(() => {
    const tiled = tf.broadcastTo(logits, [samples, ...logits.shape]);
    const c = tf.oneHot(gumbelMax(tiled, { seed }), k).toFloat();
    const value = f(c);
    checkObjectiveOutput(where, value, samples);
    const score = c.sub(tf.softmax(logits));
    const scale = value.sub(baseline).reshape([
      samples,
      ...logits.shape.map(() => 1),
    ]);
    return score.mul(scale);
  });
}

/**
 * Single-sample Gumbel-softmax (reparameterised) estimates of the gradient
 * of E_{c ~ q}[f(c)] with respect to `logits`: d f(z) / d logits at a
 * relaxed sample z = gumbelSoftmax(logits, { tau, hard }). Low variance but
 * biased: it differentiates f on the simplex, not at the vertices. Returns
 * [samples, ...logits.shape] (caller disposes).
 */
export function gumbelSoftmaxEstimates(
  logits: tf.Tensor,
  f: SampleObjective,
  { samples, tau, hard = false, seed }: {
    samples: number;
    tau: number;
    hard?: boolean;
    seed?: Seed;
  },
): tf.Tensor {
  const where = "gumbelSoftmaxEstimates";
  checkEstimatorArguments(where, logits, f, samples);
  checkNumber(where, "tau", tau, { min: 0, minExclusive: true });
  return tf.tidy(() => {
    // One copy of the logits per sample: the gradient of the sum of f over
    // samples with respect to copy s is the gradient of sample s alone.
    const tiled = tf.broadcastTo(logits, [samples, ...logits.shape]).clone();
    const noise = tf.tensor(gumbelValues(tiled.size, seed), tiled.shape);
    return tf.grad((l: tf.Tensor) => {
      const value = f(gumbelSoftmax(l, { tau, hard, noise }));
      checkObjectiveOutput(where, value, samples);
      return value.sum();
    })(tiled);
  });
}

/**
 * Mean, variance and standard error per coordinate of single-sample
 * gradient estimates [S, ...] (as returned by the estimators above), and
 * the total variance (sum over coordinates). Plain numbers.
 */
export function estimatorMoments(estimates: tf.Tensor): {
  mean: number[];
  variance: number[];
  standardError: number[];
  totalVariance: number;
} {
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
    checkLogits(`${where}.exactGradient`, logits);
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

// ---------------------------------------------------------------------------
// Experiments of notebook 04, as plain-number summaries

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
  { samples, seed }: { samples: number; seed?: Seed },
): { tau: number; meanGap: number; maxCoord: number }[] {
  const where = "relaxationStats";
  checkProbabilities(where, pi);
  checkTaus(where, taus);
  checkInteger(where, "samples", samples, { min: 1 });
  return tf.tidy(() => {
    const logits = tf.log(tf.tensor1d(pi));
    return taus.map((tau) =>
      tf.tidy(() => {
        const tiled = tf.broadcastTo(logits, [samples, pi.length]);
        const z = gumbelSoftmax(tiled, { tau, seed });
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
export type EstimatorMoments = ReturnType<typeof estimatorMoments>;

/**
 * `estimatorMoments` of `samples` Gumbel-softmax gradient estimates
 * (`gumbelSoftmaxEstimates`, seed `seed` for every tau) at each
 * temperature of `taus`: one bias/variance point per tau. Plain numbers;
 * the estimate tensors are disposed here.
 */
export function gumbelSoftmaxMomentsByTau(
  logits: tf.Tensor,
  f: SampleObjective,
  { taus, samples, seed }: { taus: number[]; samples: number; seed?: Seed },
): EstimatorMoments[] {
  checkTaus("gumbelSoftmaxMomentsByTau", taus);
  return taus.map((tau) => {
    const e = gumbelSoftmaxEstimates(logits, f, { samples, tau, seed });
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
