/**
 * The discrete VAE (dVAE) of DALL-E, trained with the Gumbel-softmax
 * relaxation.
 *
 * The encoder maps an image to N independent categorical posteriors
 * q(c_n | x) over K classes (logits [B, N, K]); the prior is uniform over
 * the K^N codes. Training samples relaxed one-hots with the Gumbel-softmax,
 * optionally maps them through a codebook (z_n = sum_k c_nk e_k, as in the
 * notes) and decodes a Bernoulli image (pixel logits). The loss is the
 * negative ELBO per image,
 *
 *   -ELBO = E_q[-log p(x | c)] + sum_n KL(q(c_n | x) || U(K)),
 *
 * whose KL term is exact and whose reconstruction term is a one-sample
 * estimate. Unlike a VQ-VAE the posterior is a real distribution with
 * entropy, so the KL is not the constant log K per variable.
 *
 * `DVAE` follows the `Trainable` contract of `lib/model.ts`: its batch is
 * `{ images, tau }` (plus `hard` and `seed`), so the temperature of every
 * step is chosen where the training loop is written:
 *
 * ```ts
 * const model = new DVAE({ latents: 30, classes: 10, hidden: [256] });
 * const optimizer = adam(1e-3);
 * const sampler = batchSampler(train.images, 100);
 * const schedule = temperatureSchedule({ tau0: 1, tauMin: 0.5, steps: 1400 });
 * await trainLoop((i) =>
 *   tf.tidy(() =>
 *     trainStep(model, optimizer, { images: sampler.next(), tau: schedule(i), seed: i })
 *   ), { steps: 2000 });
 * ```
 *
 * Evaluation (`evaluate`) uses exact discrete samples (Gumbel-max), so the
 * reported -ELBO is the one of the discrete model, not of the relaxation.
 * With grey-level targets in [0, 1] (not binary pixels) the Bernoulli term
 * is a cross-entropy against continuous targets: a bound on -log p(x) only
 * for binarized images.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { stopGradient } from "./autodiff.ts";
import {
  gumbelArgmax,
  gumbelNoise,
  relaxedOneHot,
  uniformPriorKL,
} from "./gumbel.ts";
import type { LossTerms, Trainable } from "./model.ts";
import { convDecoder28, convEncoder28, mlp } from "./nn.ts";
import { glorotUniform, Rng, rngOrStream, type Seed } from "./random.ts";
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
} from "./validate.ts";

/** Options of the `DVAE` constructor. */
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

/**
 * One training batch of a `DVAE`: the images and how to sample their codes
 * at this step.
 */
export interface DVAEBatch {
  /** Images [B, 28, 28, 1] (B >= 1) with pixel intensities in [0, 1]. */
  images: tf.Tensor;
  /** Gumbel-softmax temperature tau > 0 of this step. */
  tau: number;
  /** Straight-through hard samples (default false). */
  hard?: boolean;
  /** Seed of this step's Gumbel noise (default: the shared stream of lib/random.ts). */
  seed?: Seed;
}

/** Plain-number metrics of an evaluation. */
export interface DVAEMetrics {
  /** -ELBO per image in nats. */
  loss: number;
  /** Reconstruction term per image in nats. */
  recon: number;
  /** KL term per image in nats. */
  kl: number;
}

const BATCH_KEYS = ["images", "tau", "hard", "seed"] as const;

/** Checks images [B >= 1, 28, 28, 1] of intensities in [0, 1]. */
function checkImages(where: string, name: string, x: unknown): tf.Tensor4D {
  const t = checkTensor(where, name, x, {
    shape: [null, 28, 28, 1],
    dtype: "float32",
  });
  if (t.shape[0] === 0) {
    throw new ArgumentError(where, `${name} must hold at least one image`);
  }
  const v = t.dataSync();
  for (let i = 0; i < v.length; i++) {
    if (!(v[i] >= 0 && v[i] <= 1)) {
      throw new ArgumentError(
        where,
        `${name} must hold pixel intensities in [0, 1] (Bernoulli targets), but element ${i} is ${
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
 * (caller disposes). For grey-level targets this is a cross-entropy, not
 * the likelihood of the image.
 *
 * ```ts
 * bernoulliNLL(tf.zeros([1, 4]), tf.ones([1, 4])); // [4 log 2]
 * ```
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
  checkFinite(where, "logits", logits);
  // A Bernoulli likelihood of a target outside [0, 1] is no likelihood.
  const targets = x.dataSync();
  for (let i = 0; i < targets.length; i++) {
    if (!(targets[i] >= 0 && targets[i] <= 1)) {
      throw new ArgumentError(
        where,
        `x must hold pixel values in [0, 1], but element ${i} is ${targets[i]}`,
      );
    }
  }
  const nll = tf.tidy(() => sigmoidCrossEntropy(logits, x));
  const values = nll.dataSync();
  const at = values.findIndex((v) => !Number.isFinite(v));
  if (at >= 0) {
    nll.dispose();
    throw new ArgumentError(
      where,
      `the NLL of image ${at} overflows float32 (${
        values[at]
      }): logits are far too large`,
    );
  }
  return nll;
}

/** Unchecked core of `bernoulliNLL`: one sum over pixels per image. */
function sigmoidCrossEntropy(logits: tf.Tensor, x: tf.Tensor): tf.Tensor1D {
  // max(l, 0) - l x + log(1 + e^-|l|): exact, and no exp can overflow.
  const perPixel = tf.relu(logits).sub(logits.mul(x)).add(
    tf.log1p(tf.exp(tf.neg(tf.abs(logits)))),
  );
  return perPixel.reshape([x.shape[0], -1]).sum(1) as tf.Tensor1D;
}

/** tf.tidy for a loss: keeps the returned scalars, frees every intermediate. */
function tidyTerms(
  f: () => { total: tf.Tensor; terms: Record<string, tf.Tensor> },
): LossTerms {
  return tf.tidy(f as () => tf.TensorContainerObject) as unknown as LossTerms;
}

// Variable names must be unique in the tfjs engine.
let codebookCounter = 0;

/**
 * A discrete VAE with N categorical latents of K classes, trained by the
 * shared `trainStep` of `lib/model.ts` on batches `{ images, tau }`. Owns
 * its layers (and codebook); call `dispose()` when done. Methods that
 * return tensors say so; the caller disposes them.
 *
 * ```ts
 * const model = new DVAE({ latents: 30, classes: 10, hidden: [256], seed: 0 });
 * const metrics = tf.tidy(() =>
 *   trainStep(model, adam(1e-3), { images: x, tau: 1, seed: 0 })
 * ); // { loss, recon, kl }
 * ```
 */
export class DVAE implements Trainable<DVAEBatch> {
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

  /**
   * Builds the model (defaults: an MLP with 30 variables of 10 classes).
   *
   * @throws ArgumentError for an unknown option or a bad value, before any layer is built
   */
  constructor(options: DVAEOptions = {}) {
    const where = "DVAE";
    const o = checkOptions(where, options, [
      "architecture",
      "latents",
      "classes",
      "hidden",
      "codebookDim",
      "seed",
    ]);
    const architecture = checkChoice(
      where,
      "options.architecture",
      o.architecture ?? "mlp",
      ["mlp", "conv"],
    );
    const k = checkInteger(where, "options.classes", o.classes ?? 10, {
      min: 2,
    });
    const seed = checkInteger(where, "options.seed", o.seed ?? 0, { min: 0 });
    const codebookDim = o.codebookDim === undefined
      ? null
      : checkInteger(where, "options.codebookDim", o.codebookDim, { min: 1 });
    let latents = 49;
    let hidden: number[] = [];
    if (architecture === "conv") {
      if (o.latents !== undefined && o.latents !== 49) {
        throw new ArgumentError(
          where,
          `the conv model has a 7x7 grid of latents: options.latents must be 49 or omitted, got ${o.latents}`,
        );
      }
      if (o.hidden !== undefined) {
        throw new ArgumentError(
          where,
          "options.hidden sets the MLP's layers; the conv model has fixed layers",
        );
      }
    } else {
      latents = checkInteger(where, "options.latents", o.latents ?? 30, {
        min: 1,
      });
      hidden = o.hidden ?? [512, 256];
      if (!Array.isArray(hidden)) {
        throw new ArgumentError(
          where,
          "options.hidden must be an array of layer sizes",
        );
      }
      hidden.forEach((h, i) =>
        checkInteger(where, `options.hidden[${i}]`, h, { min: 1 })
      );
    }
    // Every argument is checked: only now are layers and variables made.
    this.architecture = architecture;
    this.classes = k;
    this.latents = latents;
    this.codebookDim = codebookDim;
    const inWidth = codebookDim ?? k;
    if (architecture === "conv") {
      this.encoder = convEncoder28({ outChannels: k, seed, name: "dvae_enc" });
      this.decoder = convDecoder28({
        inChannels: inWidth,
        seed,
        name: "dvae_dec",
      });
    } else {
      this.encoder = mlp([784, ...hidden, latents * k], {
        seed,
        name: "dvae_enc",
      });
      this.decoder = mlp([latents * inWidth, ...[...hidden].reverse(), 784], {
        seed: seed + 1,
        name: "dvae_dec",
      });
    }
    this.codebook = codebookDim === null ? null : tf.tidy(() =>
      tf.variable(
        glorotUniform([k, codebookDim], { seed: seed * 1000 + 7 }),
        true,
        `dvae_codebook_${codebookCounter++}`,
      )
    );
  }

  /** Every trainable variable (encoder, decoder, codebook): one optimizer moves them all. */
  trainableVariables(): tf.Variable[] {
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
    checkFinite("DVAE.encode", "x", x);
    return tf.tidy(() => this.#logits(x));
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
    checkFinite("DVAE.decode", "c", c);
    return tf.tidy(() => this.#pixelLogits(c));
  }

  #logits(x: tf.Tensor): tf.Tensor3D {
    const b = x.shape[0];
    const input = this.architecture === "mlp" ? x.reshape([b, 784]) : x;
    const out = this.encoder.apply(input) as tf.Tensor;
    return out.reshape([b, this.latents, this.classes]) as tf.Tensor3D;
  }

  #pixelLogits(c: tf.Tensor): tf.Tensor4D {
    const b = c.shape[0];
    const z = this.codebook
      ? tf.matMul(c.reshape([b * this.latents, this.classes]), this.codebook)
      : c;
    const input = this.architecture === "mlp"
      ? z.reshape([b, -1])
      : z.reshape([b, 7, 7, this.codebookDim ?? this.classes]);
    const out = this.decoder.apply(input) as tf.Tensor;
    return out.reshape([b, 28, 28, 1]) as tf.Tensor4D;
  }

  /**
   * The relaxed training objective of a batch `{ images, tau, hard?, seed? }`:
   * the reconstruction cost at one Gumbel-softmax sample plus the exact KL
   * to the uniform prior, mean per image (`total` = -ELBO = recon + kl).
   * New scalar tensors; `trainStep` frees them.
   *
   * @throws ArgumentError for a bad batch (before any tensor is made)
   */
  loss(batch: DVAEBatch): LossTerms {
    const { images, tau, hard, rng } = this.#checkBatch("DVAE.loss", batch);
    return tidyTerms(() => {
      const logits = this.#logits(images);
      const noise = gumbelNoise(logits.shape, rng);
      const c = relaxedOneHot(logits, noise, tau, hard);
      const recon = sigmoidCrossEntropy(this.#pixelLogits(c), images).mean();
      const kl = uniformPriorKL(logits).sum(1).mean(); // sum over the N variables
      return { total: recon.add(kl), terms: { recon, kl } };
    });
  }

  #checkBatch(where: string, batch: DVAEBatch) {
    if (batch === undefined || batch instanceof tf.Tensor) {
      throw new ArgumentError(
        where,
        "the batch must be an object { images, tau } (the temperature of this step), e.g. { images: sampler.next(), tau: schedule(i) }",
      );
    }
    const b = checkOptions(where, batch, BATCH_KEYS, "batch");
    const images = checkImages(where, "batch.images", b.images);
    const tau = checkNumber(where, "batch.tau", b.tau, {
      min: 0,
      minExclusive: true,
    });
    if (Math.fround(tau) === 0) {
      throw new ArgumentError(where, `batch.tau ${tau} rounds to 0 in float32`);
    }
    const hard = checkBoolean(where, "batch.hard", b.hard ?? false);
    return { images, tau, hard, rng: seedRng(where, "batch.seed", b.seed) };
  }

  /**
   * The surrogate loss of the score-function (REINFORCE) estimator for the
   * same -ELBO: draws exact codes c ~ q (no relaxation), and returns
   * mean_i [recon_i(c) + sg(recon_i(c) - baseline) * log q(c_i | x_i)] + KL.
   * Its value is not the loss, but its gradient is an unbiased estimate of
   * the gradient of -ELBO: the decoder gets the usual gradient, the encoder
   * the REINFORCE one. Scalar tensor; caller disposes.
   *
   * ```ts
   * const { grads } = tf.variableGrads(
   *   () => model.reinforceLoss(x, { seed: 0, baseline: 250 }),
   *   model.encoderVariables(),
   * );
   * ```
   */
  reinforceLoss(
    x: tf.Tensor,
    options: { seed?: Seed; baseline?: number } = {},
  ): tf.Scalar {
    const { rng, baseline } = this.#checkReinforce(x, options);
    return tf.tidy(() => {
      const logits = this.#logits(x);
      // Exact codes c ~ q: an argmax, through which no gradient flows.
      const index = gumbelArgmax(logits, gumbelNoise(logits.shape, rng));
      const c = tf.oneHot(index, this.classes).toFloat();
      const recon = sigmoidCrossEntropy(this.#pixelLogits(c), x);
      const logq = tf.logSoftmax(logits).mul(c).sum([1, 2]); // log q(c | x)
      // The score term: its gradient is (recon - b) * d log q(c | x).
      const score = stopGradient(recon.sub(baseline)).mul(logq);
      const kl = uniformPriorKL(logits).sum(1).mean();
      return recon.add(score).mean().add(kl) as tf.Scalar;
    });
  }

  #checkReinforce(x: tf.Tensor, options: { seed?: Seed; baseline?: number }) {
    const where = "DVAE.reinforceLoss";
    const { seed, baseline = 0 } = checkOptions(where, options, [
      "seed",
      "baseline",
    ]);
    checkImages(where, "x", x);
    checkNumber(where, "options.baseline", baseline);
    return { rng: seedRng(where, "options.seed", seed), baseline };
  }

  /**
   * The -ELBO of the discrete model on `images`, in nats per image: exact
   * categorical samples (Gumbel-max, one per image) for the reconstruction
   * term, the exact KL. Without a `seed` the samples come from the shared
   * stream. Plain numbers.
   */
  evaluate(
    images: tf.Tensor,
    options: { batchSize?: number; seed?: Seed } = {},
  ): DVAEMetrics {
    const where = "DVAE.evaluate";
    const { batchSize = 500, seed } = checkOptions(where, options, [
      "batchSize",
      "seed",
    ]);
    checkImages(where, "images", images);
    checkInteger(where, "options.batchSize", batchSize, { min: 1 });
    const rng = seedRng(where, "options.seed", seed);
    const n = images.shape[0];
    let recon = 0;
    let kl = 0;
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      const [r, k] = tf.tidy(() => {
        const x = images.slice([start, 0, 0, 0], [size, 28, 28, 1]);
        const logits = this.#logits(x);
        const index = gumbelArgmax(logits, gumbelNoise(logits.shape, rng));
        const c = tf.oneHot(index, this.classes).toFloat();
        return [
          sigmoidCrossEntropy(this.#pixelLogits(c), x).sum().dataSync()[0],
          uniformPriorKL(logits).sum().dataSync()[0],
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
    options: { seed?: Seed; mode?: "sample" | "argmax" } = {},
  ): tf.Tensor4D {
    const where = "DVAE.reconstruct";
    const { seed, mode = "sample" } = checkOptions(where, options, [
      "seed",
      "mode",
    ]);
    checkImages(where, "x", x);
    checkChoice(where, "options.mode", mode, ["sample", "argmax"]);
    const rng = mode === "sample" ? seedRng(where, "options.seed", seed) : null;
    return tf.tidy(() => {
      const logits = this.#logits(x);
      const index = rng === null
        ? tf.argMax(logits, -1)
        : gumbelArgmax(logits, gumbelNoise(logits.shape, rng));
      const c = tf.oneHot(index, this.classes).toFloat();
      return tf.sigmoid(this.#pixelLogits(c)) as tf.Tensor4D;
    });
  }

  /**
   * Images (pixel probabilities [n, 28, 28, 1]) decoded from codes drawn
   * from the uniform prior (without a `seed`, from the shared stream).
   * Caller disposes.
   */
  sample(n: number, options: { seed?: Seed } = {}): tf.Tensor4D {
    const where = "DVAE.sample";
    const { seed } = checkOptions(where, options, ["seed"]);
    checkInteger(where, "n", n, { min: 1 });
    checkSize(where, "n * 784", n * 784);
    const rng = seedRng(where, "options.seed", seed);
    const codes = new Int32Array(n * this.latents);
    for (let i = 0; i < codes.length; i++) codes[i] = rng.int(this.classes);
    return tf.tidy(() => {
      const c = tf.oneHot(
        tf.tensor2d(codes, [n, this.latents], "int32"),
        this.classes,
      ).toFloat();
      return tf.sigmoid(this.#pixelLogits(c)) as tf.Tensor4D;
    });
  }

  /**
   * Code usage: for each variable n, the fraction of `images` whose most
   * likely class is k ([N][K] plain numbers, rows sum to 1).
   */
  codeUsage(
    images: tf.Tensor,
    options: { batchSize?: number } = {},
  ): number[][] {
    const where = "DVAE.codeUsage";
    const { batchSize = 500 } = checkOptions(where, options, ["batchSize"]);
    checkImages(where, "images", images);
    checkInteger(where, "options.batchSize", batchSize, { min: 1 });
    const n = images.shape[0];
    const counts = Array.from(
      { length: this.latents },
      () => new Array(this.classes).fill(0),
    );
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      const index = tf.tidy(() =>
        tf.argMax(
          this.#logits(images.slice([start, 0, 0, 0], [size, 28, 28, 1])),
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

/** A `seed` option's generator: its own, or the shared stream when undefined. */
function seedRng(where: string, name: string, seed: unknown): Rng {
  if (seed !== undefined && !(seed instanceof Rng)) {
    checkNumber(where, name, seed);
  }
  return rngOrStream(seed as Seed | undefined);
}
