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
 *   estimator of the gradient of E_{c ~ q}[f(c)].
 *
 * All functions work on the last axis of `logits` (the K classes); logits
 * need not be normalised (softmax is shift invariant). Each public function
 * checks its arguments and calls a short core that notebook 04 shows
 * (`gumbelNoise`, `gumbelArgmax`, `relaxedOneHot`, `uniformPriorKL`,
 * `scoreFunction`, `reparameterizedGradients`); `lib/dvae.ts` calls the
 * cores on its encoder's logits directly, so a diverging model gives a NaN
 * loss rather than an error about logits its user never passed.
 *
 * Without a `seed`, the noise comes from the shared stream of
 * `lib/random.ts` (`rngOrStream`): every unseeded call gets new noise.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { stopGradient, straightThrough } from "./autodiff.ts";
import { type Rng, rngOrStream, type Seed } from "./random.ts";
import {
  ArgumentError,
  checkBoolean,
  checkFinite,
  checkInteger,
  checkNumber,
  checkOptions,
  checkSize,
  checkTensor,
} from "./validate.ts";

// ---------------------------------------------------------------------------
// The cores: the ideas, without argument checks (shown in notebook 04).

/**
 * Standard Gumbel noise g = -log(-log u), u ~ U(0, 1), as a float32 tensor
 * of `shape` drawn from `rng`. Unchecked core of `sampleGumbel`.
 */
export function gumbelNoise(shape: number[], rng: Rng): tf.Tensor {
  const g = new Float32Array(tf.util.sizeFromShape(shape));
  for (let i = 0; i < g.length; i++) {
    // u from the open interval (0, 1): both logs stay finite (|g| < 24).
    g[i] = -Math.log(-Math.log(rng.uniformOpen()));
  }
  return tf.tensor(g, shape);
}

/**
 * Gumbel-max: argmax_k (logits_k + g_k) is an exact draw of
 * Categorical(softmax(logits)). Unchecked core of `gumbelMax`.
 */
export function gumbelArgmax(logits: tf.Tensor, noise: tf.Tensor): tf.Tensor {
  return tf.argMax(logits.add(noise), -1);
}

/**
 * The Gumbel-softmax sample softmax((logits + g) / tau); with `hard`, the
 * one-hot of its argmax carrying the soft sample's gradient
 * (straight-through). Unchecked core of `gumbelSoftmax`.
 */
export function relaxedOneHot(
  logits: tf.Tensor,
  noise: tf.Tensor,
  tau: number,
  hard: boolean,
): tf.Tensor {
  const perturbed = logits.add(noise);
  // Softmax ignores a shift: with the row max taken off first, the numbers
  // divided by tau lie in [-inf, 0], so no logit or tau overflows into NaN.
  const shifted = perturbed.sub(stopGradient(perturbed.max(-1, true)));
  const soft = tf.exp(tf.logSoftmax(shifted.div(tau)));
  if (!hard) return soft;
  const k = soft.shape[soft.rank - 1];
  const oneHot = tf.oneHot(tf.argMax(soft, -1), k).toFloat();
  return straightThrough(soft, oneHot); // value: oneHot; gradient: soft's
}

/** A finite floor for log q (q = exp(floor) is 0 in float32, and 0 * floor = 0). */
const LOG_FLOOR = -3e38;

/**
 * KL(q || U(K)) = sum_k q_k (log q_k + log K) for q = softmax(logits), over
 * the last axis. Unchecked core of `klToUniform`.
 */
export function uniformPriorKL(logits: tf.Tensor): tf.Tensor {
  const k = logits.shape[logits.rank - 1];
  // logSoftmax, not log(softmax): an underflowing q_k gives 0, not 0 * -inf;
  // the floor keeps logits ~1e38 apart (where x - max overflows to -inf) too.
  const logq = tf.maximum(tf.logSoftmax(logits), LOG_FLOOR);
  // q (log q + log K) rather than log K - H(q): no cancellation near uniform.
  return tf.sum(tf.exp(logq).mul(logq.add(Math.log(k))), -1);
}

/**
 * Score-function (REINFORCE) estimates, one per row of `draws` (exact
 * one-hot samples c ~ q, [S, ...logits.shape]) with objective values
 * `value` [S]: (f(c) - b) * d log q(c) / d logits = (f(c) - b) (c - q).
 * Unchecked core of `scoreFunctionEstimates`.
 */
function scoreFunction(
  logits: tf.Tensor,
  draws: tf.Tensor,
  value: tf.Tensor,
  baseline: number,
): tf.Tensor {
  const score = draws.sub(tf.softmax(logits)); // d log q(c) / d logits
  const weight = value.sub(baseline).reshape([
    draws.shape[0],
    ...logits.shape.map(() => 1),
  ]);
  return score.mul(weight);
}

/**
 * Gumbel-softmax (reparameterised) estimates d f(z_s) / d logits at relaxed
 * samples z_s, one per row of `tiled` (the logits repeated S times) and of
 * `noise`. Unchecked core of `gumbelSoftmaxEstimates`.
 */
function reparameterizedGradients(
  tiled: tf.Tensor,
  noise: tf.Tensor,
  f: SampleObjective,
  tau: number,
  hard: boolean,
): tf.Tensor {
  // The gradient of sum_s f(z_s) with respect to copy s is draw s's own.
  const objective = (l: tf.Tensor) =>
    f(relaxedOneHot(l, noise, tau, hard)).sum();
  return tf.grad(objective)(tiled);
}

// ---------------------------------------------------------------------------
// Checked public functions.

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

function checkShape(where: string, shape: unknown): number[] {
  if (!Array.isArray(shape)) {
    throw new ArgumentError(
      where,
      `shape must be an array of non-negative integers, got ${String(shape)}`,
    );
  }
  shape.forEach((s, i) => checkInteger(where, `shape[${i}]`, s, { min: 0 }));
  checkSize(where, "the shape's size", tf.util.sizeFromShape(shape));
  return shape;
}

/**
 * A temperature tau > 0 that float32 can divide by: below about 1.4e-45 it
 * would round to 0 (and 0 / 0 is NaN). Any positive float32 works, since
 * `relaxedOneHot` divides only numbers <= 0 by it.
 */
function checkTau(where: string, name: string, tau: unknown): number {
  checkNumber(where, name, tau, { min: 0, minExclusive: true });
  if (Math.fround(tau as number) === 0) {
    throw new ArgumentError(
      where,
      `${name} is ${tau}, which rounds to 0 in float32; use a temperature >= 1e-38`,
    );
  }
  return tau as number;
}

/**
 * A float32 tensor of standard Gumbel samples, g = -log(-log u) with
 * u ~ U(0, 1). Never infinite or NaN: u is drawn from the open interval.
 * Without a `seed` the noise comes from the shared stream (new noise every
 * call). The caller disposes the tensor.
 *
 * ```ts
 * const g = sampleGumbel([1000], { seed: 1 }); // mean ~ 0.5772 (Euler's gamma)
 * ```
 */
export function sampleGumbel(
  shape: number[],
  options: { seed?: Seed } = {},
): tf.Tensor {
  const where = "sampleGumbel";
  const { seed } = checkOptions(where, options, ["seed"]);
  checkShape(where, shape);
  return gumbelNoise(shape, rngOrStream(seed, where));
}

/**
 * The Gumbel-max trick: c = argmax_k (logits_k + g_k), g ~ Gumbel(0, 1),
 * is an exact sample of Categorical(softmax(logits)). Returns int32 class
 * indices with the shape of `logits` minus its last axis (caller disposes).
 *
 * ```ts
 * const c = gumbelMax(tf.log(tf.tensor1d([0.2, 0.8])), { seed: 0 }); // 0 or 1
 * ```
 */
export function gumbelMax(
  logits: tf.Tensor,
  options: { seed?: Seed } = {},
): tf.Tensor {
  const where = "gumbelMax";
  const { seed } = checkOptions(where, options, ["seed"]);
  checkLogits(where, logits);
  const rng = rngOrStream(seed, where);
  return tf.tidy(() => gumbelArgmax(logits, gumbelNoise(logits.shape, rng)));
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
  /** Seed of the Gumbel noise (ignored when `noise` is given; default: the shared stream). */
  seed?: Seed;
  /**
   * Gumbel noise to use instead of drawing it (same shape as `logits`), so
   * several estimators can share one draw.
   */
  noise?: tf.Tensor;
}

/**
 * A Gumbel-softmax (Concrete) sample softmax((logits + g) / tau) over the
 * last axis, differentiable in `logits`. Stable for every finite float32
 * logit and every temperature float32 can hold (tau down to ~1e-45): the
 * row maximum is taken off before dividing by tau. With `hard: true` the
 * value is the one-hot of the argmax (an exact categorical sample) and the
 * gradient is the soft sample's (straight-through). Returns a float32
 * tensor shaped like `logits` (caller disposes).
 *
 * ```ts
 * const z = gumbelSoftmax(logits, { tau: 0.5, seed: 0 });          // inside the simplex
 * const c = gumbelSoftmax(logits, { tau: 0.5, hard: true, seed: 0 }); // a one-hot
 * ```
 *
 * @throws ArgumentError for non-finite logits, tau <= 0 (or one that rounds to 0 in float32), or noise of another shape
 */
export function gumbelSoftmax(
  logits: tf.Tensor,
  options: GumbelSoftmaxOptions,
): tf.Tensor {
  const where = "gumbelSoftmax";
  if (options === undefined) {
    throw new ArgumentError(
      where,
      "options must be an object with a temperature, e.g. { tau: 0.5 }",
    );
  }
  const { tau, hard = false, seed, noise } = checkOptions(where, options, [
    "tau",
    "hard",
    "seed",
    "noise",
  ]);
  checkLogits(where, logits);
  checkTau(where, "options.tau", tau);
  checkBoolean(where, "options.hard", hard);
  if (noise !== undefined) {
    checkTensor(where, "options.noise", noise, { shape: logits.shape });
    checkFinite(where, "options.noise", noise);
  }
  const rng = noise === undefined ? rngOrStream(seed, where) : null;
  return tf.tidy(() =>
    relaxedOneHot(logits, noise ?? gumbelNoise(logits.shape, rng!), tau, hard)
  );
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
    const logq = tf.maximum(tf.logSoftmax(logits), LOG_FLOOR);
    return tf.neg(tf.sum(tf.exp(logq).mul(logq), -1));
  });
}

/**
 * KL(q || U(K)) = sum_k q_k (log q_k + log K) = log K - H(q) for
 * q = softmax(logits), over the last axis, in nats: 0 when q is uniform,
 * log K when q is one-hot. Stable when probabilities underflow (log space).
 * Returns a tensor shaped like `logits` minus its last axis (caller
 * disposes).
 *
 * ```ts
 * klToUniform(tf.tensor1d([0, 0, 0])); // 0
 * ```
 */
export function klToUniform(logits: tf.Tensor): tf.Tensor {
  checkLogits("klToUniform", logits);
  return tf.tidy(() => uniformPriorKL(logits));
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
 *
 * ```ts
 * const schedule = temperatureSchedule({ tau0: 1, tauMin: 0.5, steps: 1400 });
 * schedule(0); // 1
 * schedule(1400); // 0.5
 * ```
 */
export function temperatureSchedule(
  options: TemperatureScheduleOptions = {},
): (step: number) => number {
  const where = "temperatureSchedule";
  const o = checkOptions(where, options, ["tau0", "tauMin", "rate", "steps"]);
  const tau0 = checkTau(where, "options.tau0", o.tau0 ?? 1);
  const tauMin = checkTau(where, "options.tauMin", o.tauMin ?? 0.5);
  if (tauMin > tau0) {
    throw new ArgumentError(
      where,
      `options.tauMin must be <= options.tau0 = ${tau0}, got ${tauMin}`,
    );
  }
  if (o.rate !== undefined && o.steps !== undefined) {
    throw new ArgumentError(
      where,
      "give either options.rate or options.steps, not both",
    );
  }
  let rate = 0;
  if (o.rate !== undefined) {
    rate = checkNumber(where, "options.rate", o.rate, { min: 0 });
  } else if (o.steps !== undefined) {
    const steps = checkInteger(where, "options.steps", o.steps, { min: 1 });
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
  samples: unknown,
): number {
  checkLogits(where, logits);
  if (typeof f !== "function") {
    throw new ArgumentError(
      where,
      "f must be a function of [S, ...] samples returning [S]",
    );
  }
  return checkInteger(where, "options.samples", samples, {
    min: 1,
    max: 2 ** 20,
  });
}

/**
 * Single-sample score-function (REINFORCE) estimates of the gradient of
 * E_{c ~ q}[f(c)] with respect to `logits`, q = softmax(logits) on the last
 * axis (every other axis is an independent variable): for a draw c,
 * f(c) * d log q(c) / d logits = f(c) * (onehot(c) - q). Unbiased whatever
 * f is (f need not be differentiable), but noisy. `baseline` b is
 * subtracted from f (still unbiased since E[d log q] = 0). Returns
 * [samples, ...logits.shape] (caller disposes).
 *
 * ```ts
 * const f = (c: tf.Tensor) => c.slice([0, 0], [-1, 1]).reshape([-1]); // f(c) = c_1
 * const g = scoreFunctionEstimates(tf.zeros([3]), f, { samples: 1000, seed: 0 });
 * g.mean(0); // ~ d q_1 / d logits = [2/9, -1/9, -1/9]
 * ```
 */
export function scoreFunctionEstimates(
  logits: tf.Tensor,
  f: SampleObjective,
  options: { samples: number; seed?: Seed; baseline?: number },
): tf.Tensor {
  const where = "scoreFunctionEstimates";
  const { samples, seed, baseline = 0 } = checkOptions(
    where,
    options,
    ["samples", "seed", "baseline"],
  );
  const s = checkEstimatorArguments(where, logits, f, samples);
  checkNumber(where, "options.baseline", baseline);
  const rng = rngOrStream(seed, where);
  const k = logits.shape[logits.rank - 1];
  return tf.tidy(() => {
    const tiled = tf.broadcastTo(logits, [s, ...logits.shape]);
    const draws = tf.oneHot(
      gumbelArgmax(tiled, gumbelNoise(tiled.shape, rng)),
      k,
    )
      .toFloat();
    const value = f(draws);
    // No gradient tape is running here: a throw leaves nothing behind.
    checkObjectiveOutput(where, value, s);
    return scoreFunction(logits, draws, value, baseline);
  });
}

/**
 * Single-sample Gumbel-softmax (reparameterised) estimates of the gradient
 * of E_{c ~ q}[f(c)] with respect to `logits`: d f(z) / d logits at a
 * relaxed sample z = gumbelSoftmax(logits, { tau, hard }). Low variance but
 * biased: it differentiates f on the simplex, not at the vertices. Returns
 * [samples, ...logits.shape] (caller disposes).
 *
 * @throws ArgumentError (before any gradient is taken) when f does not return one value per sample
 */
export function gumbelSoftmaxEstimates(
  logits: tf.Tensor,
  f: SampleObjective,
  options: { samples: number; tau: number; hard?: boolean; seed?: Seed },
): tf.Tensor {
  const where = "gumbelSoftmaxEstimates";
  const { samples, tau, hard = false, seed } = checkOptions(
    where,
    options,
    ["samples", "tau", "hard", "seed"],
  );
  const s = checkEstimatorArguments(where, logits, f, samples);
  checkTau(where, "options.tau", tau);
  checkBoolean(where, "options.hard", hard);
  const rng = rngOrStream(seed, where);
  return tf.tidy(() => {
    // One copy of the logits per sample (clone: a variable of its own).
    const tiled = tf.broadcastTo(logits, [s, ...logits.shape]).clone();
    const noise = gumbelNoise(tiled.shape, rng);
    // Check f once outside the gradient tape: a throw inside tf.grad would
    // strand the tensors the tape saved for the backward pass.
    tf.tidy(() =>
      checkObjectiveOutput(where, f(relaxedOneHot(tiled, noise, tau, hard)), s)
    );
    return reparameterizedGradients(tiled, noise, f, tau, hard);
  });
}
