/**
 * The discrete VAE (dVAE) of DALL-E, trained with the Gumbel-softmax
 * relaxation.
 *
 * The encoder maps an image to N independent categorical posteriors
 * q(c_n | x) over K classes (logits [B, N, K]); the prior is uniform over
 * the K^N codes. Training samples relaxed one-hots with `gumbelSoftmax`,
 * optionally maps them through a codebook (z_n = sum_k c_nk e_k, as in the
 * notes) and decodes a Bernoulli image (pixel logits). The loss is the
 * negative ELBO per image,
 *
 *   -ELBO = E_q[-log p(x | c)] + sum_n KL(q(c_n | x) || U(K)),
 *
 * whose KL term is exact (`klToUniform`) and whose reconstruction term is a
 * one-sample estimate. Unlike a VQ-VAE the posterior is a real distribution
 * with entropy, so the KL is not the constant log K per variable.
 *
 * Evaluation (`evaluate`) uses exact discrete samples (Gumbel-max), so the
 * reported -ELBO is the one of the discrete model, not of the relaxation.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { stopGradient } from "./autodiff.ts";
import { gumbelMax, gumbelSoftmax, klToUniform } from "./gumbel.ts";
import { convDecoder28, convEncoder28, mlp } from "./nn.ts";
import { glorotUniform, rngFrom, type Seed } from "./random.ts";
import {
  ArgumentError,
  checkChoice,
  checkInteger,
  checkNumber,
  checkTensor,
} from "./validate.ts";

/** Options of `createDVAE`. */
export interface DVAEOptions {
  /** "mlp" (N latents from a flattened image) or "conv" (a 7x7 grid: N = 49). Default "mlp". */
  architecture?: "mlp" | "conv";
  /** Number N of categorical variables for the MLP (default 30; the conv model has 49). */
  latents?: number;
  /** Number K of classes per variable (default 10). */
  classes?: number;
  /** Hidden layer sizes of the MLP encoder (the decoder mirrors them). Default [512, 256]. */
  hidden?: number[];
  /**
   * Width D of a learned codebook E [K, D]: the decoder sees z_n = c_n E.
   * Omit to feed the (relaxed) one-hots themselves, which for a dense first
   * layer is the same model with a separate codebook per variable.
   */
  codebookDim?: number;
  /** Seed of the initial weights (default 0). */
  seed?: number;
}

/** The three terms of the loss, as scalar tensors (mean per image, nats). */
export interface DVAELossTerms {
  /** -ELBO = recon + kl. */
  loss: tf.Scalar;
  /** Bernoulli negative log-likelihood of the image given the sample. */
  recon: tf.Scalar;
  /** Sum over the N variables of KL(q(c_n | x) || U(K)). */
  kl: tf.Scalar;
}

/** Plain-number metrics of one training step or an evaluation. */
export interface DVAEMetrics {
  /** -ELBO per image in nats. */
  loss: number;
  /** Reconstruction term per image in nats. */
  recon: number;
  /** KL term per image in nats. */
  kl: number;
  /** Index signature so the metrics can go straight to `trainLoop`. */
  [metric: string]: number;
}

/** Options of the training and loss methods. */
export interface RelaxOptions {
  /** Gumbel-softmax temperature (> 0). */
  tau: number;
  /** Straight-through hard samples (default false). */
  hard?: boolean;
  /** Seed of the Gumbel noise. */
  seed?: Seed;
}

function checkImages(where: string, x: unknown): tf.Tensor4D {
  const t = checkTensor(where, "x", x, {
    shape: [null, 28, 28, 1],
    dtype: "float32",
  });
  const v = t.dataSync();
  for (let i = 0; i < v.length; i++) {
    if (!(v[i] >= 0 && v[i] <= 1)) {
      throw new ArgumentError(
        where,
        `x must hold pixel intensities in [0, 1] (Bernoulli targets), but element ${i} is ${
          v[i]
        }`,
      );
    }
  }
  return t as tf.Tensor4D;
}

/**
 * Bernoulli negative log-likelihood -log p(x | logits) summed over the
 * pixels of each image, for targets in [0, 1]: the numerically stable
 * sigmoid cross-entropy max(l, 0) - l x + log(1 + exp(-|l|)). Returns [B]
 * (caller disposes).
 */
export function bernoulliNLL(logits: tf.Tensor, x: tf.Tensor): tf.Tensor1D {
  const where = "bernoulliNLL";
  checkTensor(where, "logits", logits, { minRank: 2 });
  checkTensor(where, "x", x, { minRank: 2 });
  if (logits.shape.join(",") !== x.shape.join(",")) {
    throw new ArgumentError(
      where,
      `logits and x must have the same shape, got [${logits.shape}] and [${x.shape}]`,
    );
  }
  return tf.tidy(() => {
    const per = tf.relu(logits).sub(logits.mul(x)).add(
      tf.log1p(tf.exp(tf.neg(tf.abs(logits)))),
    );
    return per.reshape([x.shape[0], -1]).sum(1) as tf.Tensor1D;
  });
}

// Variable names must be unique in the tfjs engine.
let codebookCounter = 0;

/**
 * A discrete VAE with N categorical latents of K classes. Owns its layers
 * (and codebook); call `dispose()` when done. Methods that return tensors
 * say so; the caller disposes them.
 */
export class DVAE {
  /** "mlp" or "conv". */
  readonly architecture: "mlp" | "conv";
  /** Number of categorical variables N. */
  readonly latents: number;
  /** Number of classes K per variable. */
  readonly classes: number;
  /** Codebook width D, or null when the decoder reads the one-hots. */
  readonly codebookDim: number | null;
  /** Image -> N*K logits. */
  readonly encoder: tf.Sequential;
  /** Decoder input -> 28x28x1 Bernoulli logits. */
  readonly decoder: tf.Sequential;
  /** The codebook E [K, D] (null without `codebookDim`). */
  readonly codebook: tf.Variable | null;

  /** Builds the model; prefer `createDVAE`. */
  constructor(options: DVAEOptions = {}) {
    const where = "createDVAE";
    if (options === null || typeof options !== "object") {
      throw new ArgumentError(where, "options must be an object");
    }
    this.architecture = checkChoice(
      where,
      "options.architecture",
      options.architecture ?? "mlp",
      [
        "mlp",
        "conv",
      ],
    );
    const k = checkInteger(where, "options.classes", options.classes ?? 10, {
      min: 2,
    });
    const seed = checkInteger(where, "options.seed", options.seed ?? 0, {
      min: 0,
    });
    this.classes = k;
    this.codebookDim = options.codebookDim === undefined
      ? null
      : checkInteger(where, "options.codebookDim", options.codebookDim, {
        min: 1,
      });
    const inWidth = this.codebookDim ?? k;
    if (this.architecture === "conv") {
      if (options.latents !== undefined && options.latents !== 49) {
        throw new ArgumentError(
          where,
          `the conv model has a 7x7 grid of latents: options.latents must be 49 or omitted, got ${options.latents}`,
        );
      }
      this.latents = 49;
      this.encoder = convEncoder28({ outChannels: k, seed, name: "dvae_enc" });
      this.decoder = convDecoder28({
        inChannels: inWidth,
        seed,
        name: "dvae_dec",
      });
    } else {
      this.latents = checkInteger(
        where,
        "options.latents",
        options.latents ?? 30,
        { min: 1 },
      );
      const hidden = options.hidden ?? [512, 256];
      if (!Array.isArray(hidden)) {
        throw new ArgumentError(
          where,
          "options.hidden must be an array of layer sizes",
        );
      }
      hidden.forEach((h, i) =>
        checkInteger(where, `options.hidden[${i}]`, h, { min: 1 })
      );
      this.encoder = mlp([784, ...hidden, this.latents * k], {
        seed,
        name: "dvae_enc",
      });
      this.decoder = mlp([
        this.latents * inWidth,
        ...[...hidden].reverse(),
        784,
      ], {
        seed: seed + 1,
        name: "dvae_dec",
      });
    }
    this.codebook = this.codebookDim === null
      ? null
      : tf.tidy(() =>
        tf.variable(
          glorotUniform([k, this.codebookDim!], { seed: seed * 1000 + 7 }),
          true,
          `dvae_codebook_${codebookCounter++}`,
        )
      );
  }

  /** Every trainable variable (encoder, decoder, codebook). */
  variables(): tf.Variable[] {
    const layers = [this.encoder, this.decoder].flatMap((m) =>
      m.trainableWeights.map((w) => w.read() as tf.Variable)
    );
    return this.codebook ? [...layers, this.codebook] : layers;
  }

  /** The encoder's variables only (what the score-function estimator is about). */
  encoderVariables(): tf.Variable[] {
    return this.encoder.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  /** Posterior logits [B, N, K] of images [B, 28, 28, 1] (caller disposes). */
  encode(x: tf.Tensor): tf.Tensor3D {
    checkTensor("DVAE.encode", "x", x, { shape: [null, 28, 28, 1] });
    return tf.tidy(() => {
      const input = this.architecture === "mlp"
        ? x.reshape([x.shape[0], 784])
        : x;
      const out = this.encoder.apply(input) as tf.Tensor;
      return out.reshape([
        x.shape[0],
        this.latents,
        this.classes,
      ]) as tf.Tensor3D;
    });
  }

  /**
   * Bernoulli pixel logits [B, 28, 28, 1] from (relaxed or hard) one-hots
   * c [B, N, K]; with a codebook the decoder sees z_n = sum_k c_nk e_k.
   * Caller disposes.
   */
  decode(c: tf.Tensor): tf.Tensor4D {
    checkTensor("DVAE.decode", "c", c, {
      shape: [null, this.latents, this.classes],
    });
    return tf.tidy(() => {
      const b = c.shape[0];
      let z = c;
      if (this.codebook) {
        z = tf.matMul(
          c.reshape([b * this.latents, this.classes]),
          this.codebook,
        );
      }
      const input = this.architecture === "mlp"
        ? z.reshape([b, -1])
        : z.reshape([b, 7, 7, this.codebookDim ?? this.classes]);
      return (this.decoder.apply(input) as tf.Tensor).reshape([
        b,
        28,
        28,
        1,
      ]) as tf.Tensor4D;
    });
  }

  /**
   * The relaxed training objective on a batch: recon at a Gumbel-softmax
   * sample plus the exact KL to the uniform prior, mean per image. Scalar
   * tensors; caller disposes (or call inside tf.tidy / a gradient).
   */
  loss(x: tf.Tensor, options: RelaxOptions): DVAELossTerms {
    checkImages("DVAE.loss", x);
    const { tau, hard = false, seed } = options ?? ({} as RelaxOptions);
    checkNumber("DVAE.loss", "options.tau", tau, {
      min: 0,
      minExclusive: true,
    });
    return tf.tidy(() => {
      const logits = this.encode(x);
      const c = gumbelSoftmax(logits, { tau, hard, seed });
      const recon = bernoulliNLL(this.decode(c), x).mean() as tf.Scalar;
      const kl = klToUniform(logits).sum(1).mean() as tf.Scalar;
      return { loss: recon.add(kl) as tf.Scalar, recon, kl };
    });
  }

  /**
   * The surrogate loss of the score-function (REINFORCE) estimator for the
   * same -ELBO: draws exact codes c ~ q (no relaxation), and returns
   * mean_i [recon_i(c) + sg(recon_i(c) - baseline) * log q(c_i | x_i)] + KL.
   * Its value is not the loss, but its gradient is an unbiased estimate of
   * the gradient of -ELBO: the decoder gets the usual gradient, the encoder
   * the REINFORCE one. Scalar tensor; caller disposes.
   */
  reinforceLoss(
    x: tf.Tensor,
    { seed, baseline = 0 }: { seed?: Seed; baseline?: number } = {},
  ): tf.Scalar {
    checkImages("DVAE.reinforceLoss", x);
    checkNumber("DVAE.reinforceLoss", "baseline", baseline);
    return tf.tidy(() => {
      const logits = this.encode(x);
      // Codes drawn from a detached copy: the tape never sees the argmax.
      const detached = tf.tensor(logits.dataSync(), logits.shape);
      const c = tf.oneHot(gumbelMax(detached, { seed }), this.classes)
        .toFloat();
      const recon = bernoulliNLL(this.decode(c), x);
      const logq = tf.logSoftmax(logits).mul(c).sum([1, 2]);
      const weight = stopGradient(recon.sub(baseline));
      const kl = klToUniform(logits).sum(1).mean();
      return recon.add(weight.mul(logq)).mean().add(kl) as tf.Scalar;
    });
  }

  /**
   * One optimizer step on the relaxed -ELBO of batch `x`; returns the
   * metrics as plain numbers (and the temperature used).
   */
  trainStep(
    x: tf.Tensor,
    optimizer: tf.Optimizer,
    options: RelaxOptions,
  ): DVAEMetrics & { tau: number } {
    if (!(optimizer instanceof tf.Optimizer)) {
      throw new ArgumentError(
        "DVAE.trainStep",
        "optimizer must be a tf.Optimizer, e.g. adam(1e-3) from lib/optim.ts",
      );
    }
    let recon = NaN;
    let kl = NaN;
    const loss = tf.tidy(() => {
      const value = optimizer.minimize(
        () => {
          const terms = this.loss(x, options);
          recon = terms.recon.dataSync()[0];
          kl = terms.kl.dataSync()[0];
          return terms.loss;
        },
        true,
        this.variables(),
      );
      return value!.dataSync()[0];
    });
    return { loss, recon, kl, tau: options.tau };
  }

  /**
   * The test-set -ELBO of the discrete model, in nats per image: exact
   * categorical samples (Gumbel-max, one per image) for the reconstruction
   * term, the exact KL. Plain numbers.
   */
  evaluate(
    images: tf.Tensor,
    { batchSize = 500, seed = 0 }: { batchSize?: number; seed?: Seed } = {},
  ): DVAEMetrics {
    checkImages("DVAE.evaluate", images);
    checkInteger("DVAE.evaluate", "batchSize", batchSize, { min: 1 });
    const rng = rngFrom(seed);
    const n = images.shape[0];
    let recon = 0;
    let kl = 0;
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      const [r, k] = tf.tidy(() => {
        const x = images.slice([start, 0, 0, 0], [size, 28, 28, 1]);
        const logits = this.encode(x);
        const c = tf.oneHot(gumbelMax(logits, { seed: rng }), this.classes)
          .toFloat();
        return [
          bernoulliNLL(this.decode(c), x).sum().dataSync()[0],
          klToUniform(logits).sum().dataSync()[0],
        ];
      });
      recon += r;
      kl += k;
    }
    return { loss: (recon + kl) / n, recon: recon / n, kl: kl / n };
  }

  /**
   * Reconstructions (pixel probabilities [B, 28, 28, 1]) of `x` through an
   * exact sample of the posterior, or through its most likely code with
   * `mode: "argmax"`. Caller disposes.
   */
  reconstruct(
    x: tf.Tensor,
    { seed, mode = "sample" }: { seed?: Seed; mode?: "sample" | "argmax" } = {},
  ): tf.Tensor4D {
    checkImages("DVAE.reconstruct", x);
    checkChoice("DVAE.reconstruct", "mode", mode, ["sample", "argmax"]);
    return tf.tidy(() => {
      const logits = this.encode(x);
      const index = mode === "argmax"
        ? tf.argMax(logits, -1)
        : gumbelMax(logits, { seed });
      return tf.sigmoid(
        this.decode(tf.oneHot(index, this.classes).toFloat()),
      ) as tf.Tensor4D;
    });
  }

  /** Images (pixel probabilities [n, 28, 28, 1]) decoded from codes drawn from the uniform prior. Caller disposes. */
  sample(n: number, { seed }: { seed?: Seed } = {}): tf.Tensor4D {
    checkInteger("DVAE.sample", "n", n, { min: 1 });
    const rng = rngFrom(seed);
    const codes = new Int32Array(n * this.latents);
    for (let i = 0; i < codes.length; i++) codes[i] = rng.int(this.classes);
    return tf.tidy(() => {
      const c = tf.oneHot(
        tf.tensor2d(codes, [n, this.latents], "int32"),
        this.classes,
      ).toFloat();
      return tf.sigmoid(this.decode(c)) as tf.Tensor4D;
    });
  }

  /**
   * Code usage: for each variable n, the fraction of `images` whose most
   * likely class is k ([N][K] plain numbers, rows sum to 1).
   */
  codeUsage(
    images: tf.Tensor,
    { batchSize = 500 }: { batchSize?: number } = {},
  ): number[][] {
    checkImages("DVAE.codeUsage", images);
    checkInteger("DVAE.codeUsage", "batchSize", batchSize, { min: 1 });
    const n = images.shape[0];
    const counts = Array.from(
      { length: this.latents },
      () => new Array(this.classes).fill(0),
    );
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      const index = tf.tidy(() =>
        tf.argMax(
          this.encode(images.slice([start, 0, 0, 0], [size, 28, 28, 1])),
          -1,
        )
      );
      const v = index.dataSync();
      index.dispose();
      for (let i = 0; i < v.length; i++) {
        counts[i % this.latents][v[i]] += 1 / n;
      }
    }
    return counts;
  }

  /** Frees the layers and the codebook. */
  dispose(): void {
    this.encoder.dispose();
    this.decoder.dispose();
    this.codebook?.dispose();
  }
}

/** Builds a `DVAE` (see `DVAEOptions`; defaults: an MLP with 30 variables of 10 classes). */
export function createDVAE(options: DVAEOptions = {}): DVAE {
  return new DVAE(options);
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
  {
    estimator,
    draws,
    tau = 1,
    seed = 0,
    baseline = 0,
  }: {
    estimator: "gumbel" | "reinforce";
    draws: number;
    tau?: number;
    seed?: number;
    baseline?: number;
  },
): { meanNormSquared: number; totalVariance: number; snr: number } {
  const where = "encoderGradientStats";
  if (!(model instanceof DVAE)) {
    throw new ArgumentError(where, "model must be a DVAE");
  }
  checkImages(where, x);
  checkChoice(where, "estimator", estimator, ["gumbel", "reinforce"]);
  checkInteger(where, "draws", draws, { min: 2 });
  checkNumber(where, "tau", tau, { min: 0, minExclusive: true });
  const vars = model.encoderVariables();
  const rng = rngFrom(seed);
  let sum: Float64Array | null = null;
  let sumSq: Float64Array | null = null;
  for (let d = 0; d < draws; d++) {
    const s = rng.nextUint32();
    const flat = tf.tidy(() => {
      const f = () =>
        estimator === "gumbel"
          ? model.loss(x, { tau, seed: s }).loss
          : model.reinforceLoss(x, {
            seed: s,
            baseline,
          });
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

// ---------------------------------------------------------------------------
// Summaries used by notebook 04

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
  { draws, tau, baseline, seed = 0 }: {
    draws: number;
    tau: number;
    baseline: number;
    seed?: number;
  },
): EstimatorStatsRow[] {
  checkNumber("compareEncoderEstimators", "baseline", baseline);
  const runs = [
    ["Gumbel-softmax", { estimator: "gumbel", tau, draws, seed }],
    ["REINFORCE", { estimator: "reinforce", draws, seed }],
    ["REINFORCE + baseline", { estimator: "reinforce", draws, seed, baseline }],
  ] as const;
  return runs.map(([name, options]) => ({
    name,
    ...encoderGradientStats(model, x, options),
  }));
}

/**
 * Mean squared pixel error between `x` and its reconstruction by `model`
 * (`DVAE.reconstruct`: through its most likely code with `mode: "argmax"`,
 * the default here, or through an exact sample). A plain number.
 */
export function dvaeReconstructionMSE(
  model: DVAE,
  x: tf.Tensor,
  { mode = "argmax", seed }: { mode?: "sample" | "argmax"; seed?: Seed } = {},
): number {
  if (!(model instanceof DVAE)) {
    throw new ArgumentError("dvaeReconstructionMSE", "model must be a DVAE");
  }
  return tf.tidy(() =>
    model.reconstruct(x, { mode, seed }).sub(x).square().mean().dataSync()[0]
  );
}
