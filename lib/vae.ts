/**
 * The Gaussian VAE refresher: the closed-form Gaussian KL, the
 * reparameterization trick, small MLP autoencoders and VAEs for 28x28
 * images, a linear autoencoder next to PCA (compared by principal angles),
 * the score-function gradient estimator next to the reparameterized one, and
 * a denoising evaluation.
 *
 * Conventions. A Gaussian is given by its mean and its log-variance
 * (`logVar = ln sigma^2`): the encoder can output any real number there and
 * sigma stays positive. The VAE loss per image is the lecture's
 * `||x - f(z)||^2 + lambda * KL(q(z|x) || N(0, I))` with `lambda = 2 c beta`,
 * where `c` is the decoder variance of `p(x|z) = N(f(z), c I)` and `beta` the
 * beta-VAE weight (beta = 1: the plain ELBO).
 *
 * Linear algebra that tfjs lacks (a symmetric eigendecomposition, principal
 * angles) is done in float64 JavaScript on small d x d matrices.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { adam } from "./optim.ts";
import {
  ArgumentError,
  checkChoice,
  checkFinite,
  checkInteger,
  checkNumber,
  checkTensor,
  toMatrix,
} from "./validate.ts";
import { jacobiEigen } from "./linalg.ts";
import { randomNormal, type Rng, rngFrom, type Seed } from "./random.ts";
import { mlp, trainableVariables } from "./nn.ts";
import { batches } from "./data.ts";

// ---------------------------------------------------------------------------
// Gaussian KL and the reparameterization trick

function sameShape(a: tf.Tensor, b: tf.Tensor): boolean {
  return a.rank === b.rank && a.shape.every((s, i) => s === b.shape[i]);
}

function checkPair(
  where: string,
  names: [string, string],
  a: unknown,
  b: unknown,
  finite: boolean,
): [tf.Tensor, tf.Tensor] {
  const ta = checkTensor(where, names[0], a, {
    minRank: 1,
    dtype: "float32",
  });
  const tb = checkTensor(where, names[1], b, {
    minRank: 1,
    dtype: "float32",
  });
  if (!sameShape(ta, tb)) {
    throw new ArgumentError(
      where,
      `${names[1]} must have the shape of ${
        names[0]
      } [${ta.shape}], got [${tb.shape}]`,
    );
  }
  if (finite) {
    checkFinite(where, names[0], ta);
    checkFinite(where, names[1], tb);
  }
  return [ta, tb];
}

/** KL(N(muQ, e^lvQ) || N(0, I)) summed over the last axis, unchecked (training hot path). */
function klStandardNormal(mu: tf.Tensor, logVar: tf.Tensor): tf.Tensor {
  return tf.tidy(() =>
    logVar.exp().add(mu.square()).sub(1).sub(logVar).sum(-1).mul(0.5)
  );
}

/**
 * The closed-form KL divergence between diagonal Gaussians,
 * `KL(N(muQ, diag e^logVarQ) || N(muP, diag e^logVarP))`, summed over the
 * last axis (the latent dimensions): per dimension
 * `ln(sigma_p / sigma_q) + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2`.
 * Without `muP`/`logVarP` the prior is the standard normal N(0, I).
 *
 * Differentiable in all arguments (use it inside a loss).
 *
 * @param muQ float32 [..., d] means of q
 * @param logVarQ float32 [..., d] log-variances of q (same shape)
 * @param muP optional float32 [..., d] means of p (default 0)
 * @param logVarP optional float32 [..., d] log-variances of p (default 0); give both or neither
 * @returns a float32 tensor of shape [...] (the leading axes; a scalar for rank-1 inputs), in nats; the caller disposes it
 * @throws ArgumentError for non-tensors, mismatched shapes, non-float32 dtypes or NaN/Infinity
 */
export function gaussianKL(
  muQ: tf.Tensor,
  logVarQ: tf.Tensor,
  muP?: tf.Tensor,
  logVarP?: tf.Tensor,
): tf.Tensor {
  const where = "gaussianKL";
  const [mq, lq] = checkPair(where, ["muQ", "logVarQ"], muQ, logVarQ, true);
  if ((muP === undefined) !== (logVarP === undefined)) {
    throw new ArgumentError(
      where,
      "give both muP and logVarP (the prior's mean and log-variance) or neither (standard normal prior)",
    );
  }
  if (muP === undefined) return klStandardNormal(mq, lq);
  const [mp, lp] = checkPair(where, ["muP", "logVarP"], muP, logVarP, true);
  if (!sameShape(mq, mp)) {
    throw new ArgumentError(
      where,
      `muP must have the shape of muQ [${mq.shape}], got [${mp.shape}]`,
    );
  }
  return tf.tidy(() => {
    const ratio = lq.sub(lp).exp(); // sigma_q^2 / sigma_p^2
    const mean = mq.sub(mp).square().div(lp.exp());
    return lp.sub(lq).add(ratio).add(mean).sub(1).sum(-1).mul(0.5);
  });
}

/**
 * The reparameterization trick: `z = mu + sigma * eps` with
 * `sigma = exp(logVar / 2)` and `eps ~ N(0, I)` drawn from the seeded
 * generator. The randomness sits in `eps`, which does not depend on the
 * parameters, so gradients flow from `z` back to `mu` and `logVar`.
 *
 * @param mu float32 [..., d]
 * @param logVar float32 [..., d] (same shape)
 * @param options.seed a number or an `Rng` (default 0); the same seed gives the same eps
 * @returns z with the shape of `mu` (caller disposes)
 * @throws ArgumentError for mismatched shapes, non-float32 dtypes or NaN/Infinity
 */
export function reparameterize(
  mu: tf.Tensor,
  logVar: tf.Tensor,
  { seed = 0 }: { seed?: Seed } = {},
): tf.Tensor {
  const [m, lv] = checkPair(
    "reparameterize",
    ["mu", "logVar"],
    mu,
    logVar,
    true,
  );
  return reparameterizeUnchecked(m, lv, rngFrom(seed));
}

function reparameterizeUnchecked(
  mu: tf.Tensor,
  logVar: tf.Tensor,
  rng: Rng,
): tf.Tensor {
  return tf.tidy(() => {
    const eps = randomNormal(mu.shape, { seed: rng });
    return mu.add(logVar.mul(0.5).exp().mul(eps));
  });
}

// ---------------------------------------------------------------------------
// Autoencoders for 28x28 images

/** Options shared by `Autoencoder` and `GaussianVAE`. */
export interface ImageAutoencoderOptions {
  /** Latent dimension (default 16; 2 for latent-space plots). */
  latentDim?: number;
  /** Width of the single hidden layer of encoder and decoder (default 256). */
  hidden?: number;
  /** Adam learning rate (default 1e-3). */
  learningRate?: number;
  /** Seed of the initial weights and of the sampling noise (default 0). */
  seed?: number;
}

/** Options of `GaussianVAE`. */
export interface GaussianVAEOptions extends ImageAutoencoderOptions {
  /** beta-VAE weight of the KL term (default 1: the ELBO itself). */
  beta?: number;
  /**
   * Decoder variance c of p(x|z) = N(f(z), c I) (default 0.1). The
   * likelihood-optimal c is the per-pixel MSE (0.02-0.05 for these small
   * models); a somewhat larger c weights the KL more (lambda = 2 c beta) and
   * gives a smoother, more prior-like latent space.
   */
  decoderVariance?: number;
}

/** What one training step reports (plain numbers). */
export interface StepReport extends Record<string, number> {
  /** The minimised loss per image: `||x - x_hat||^2 (+ lambda * KL)`. */
  loss: number;
  /** Mean squared error per pixel. */
  mse: number;
}

/** What `evaluate` reports (plain numbers, averages over the images). */
export interface EvaluationReport {
  /** Mean squared reconstruction error per pixel (decoding the posterior mean for a VAE). */
  mse: number;
  /** Mean KL(q(z|x) || N(0, I)) in nats per image: the rate (0 for a plain autoencoder). */
  rate: number;
  /** Per latent dimension: mean KL in nats; a dimension with < 0.01 nats carries no information (collapsed). */
  rateByDim: number[];
  /** Number of latent dimensions whose mean KL is at least 0.01 nats. */
  activeUnits: number;
  /** VAE only: the negative ELBO in nats per image under the Gaussian decoder with variance c (one z sample). */
  negElbo?: number;
}

const PIXELS = 28 * 28;

/** Accepts [n, 28, 28, 1] or [n, 784] float32 images; returns a [n, 784] view. */
function flatImages(where: string, images: unknown): tf.Tensor2D {
  const t = checkTensor(where, "images", images, { dtype: "float32" });
  const ok = (t.rank === 4 && t.shape[1] === 28 && t.shape[2] === 28 &&
    t.shape[3] === 1) || (t.rank === 2 && t.shape[1] === PIXELS);
  if (!ok || t.shape[0] === 0) {
    throw new ArgumentError(
      where,
      `images must be a non-empty float32 tensor of shape [n, 28, 28, 1] or [n, 784], got shape [${t.shape}]`,
    );
  }
  checkFinite(where, "images", t);
  return t.reshape([t.shape[0], PIXELS]);
}

function restoreShape(like: tf.Tensor, flat: tf.Tensor): tf.Tensor {
  return like.rank === 4 ? flat.reshape([flat.shape[0], 28, 28, 1]) : flat;
}

function checkLatents(
  where: string,
  z: unknown,
  latentDim: number,
): tf.Tensor2D {
  const t = checkTensor(where, "z", z, {
    shape: [null, latentDim],
    dtype: "float32",
  }) as tf.Tensor2D;
  checkFinite(where, "z", t);
  return t;
}

/** Runs `fn` on consecutive row blocks of x and concatenates (bounds memory on big test sets). */
function inBatches(
  x: tf.Tensor2D,
  batchSize: number,
  fn: (b: tf.Tensor2D) => tf.Tensor,
): tf.Tensor {
  const n = x.shape[0];
  if (n <= batchSize) return fn(x);
  return tf.tidy(() => {
    const parts: tf.Tensor[] = [];
    for (let s = 0; s < n; s += batchSize) {
      const size = Math.min(batchSize, n - s);
      parts.push(fn(x.slice([s, 0], [size, x.shape[1]])));
    }
    return tf.concat(parts, 0);
  });
}

abstract class ImageModel {
  /** Encoder network: 784 -> hidden -> (latentDim, or 2 * latentDim for a VAE). */
  readonly encoder: tf.Sequential;
  /** Decoder network: latentDim -> hidden -> 784 with a sigmoid (pixels in [0, 1]). */
  readonly decoder: tf.Sequential;
  /** Latent dimension. */
  readonly latentDim: number;
  protected readonly optimizer: tf.Optimizer;
  protected readonly rng: Rng;
  protected readonly where: string;
  #disposed = false;

  constructor(
    where: string,
    encoderOut: number,
    options: ImageAutoencoderOptions,
  ) {
    if (options === null || typeof options !== "object") {
      throw new ArgumentError(
        where,
        `options must be an object, got ${options}`,
      );
    }
    const { latentDim = 16, hidden = 256, learningRate = 1e-3, seed = 0 } =
      options;
    this.where = where;
    this.latentDim = checkInteger(where, "latentDim", latentDim, { min: 1 });
    checkInteger(where, "hidden", hidden, { min: 1 });
    checkNumber(where, "learningRate", learningRate, {
      min: 0,
      minExclusive: true,
    });
    checkNumber(where, "seed", seed);
    const name = where.toLowerCase();
    this.encoder = mlp([PIXELS, hidden, encoderOut * this.latentDim], {
      seed,
      name: `${name}_enc`,
    });
    this.decoder = mlp([this.latentDim, hidden, PIXELS], {
      seed: seed + 1,
      outputActivation: "sigmoid",
      name: `${name}_dec`,
    });
    this.optimizer = adam(learningRate);
    this.rng = rngFrom(seed + 12345);
  }

  protected alive(method: string): void {
    if (this.#disposed) {
      throw new ArgumentError(
        `${this.where}.${method}`,
        "the model has been disposed",
      );
    }
  }

  /** Decodes latents z [n, latentDim] into images [n, 28, 28, 1] (caller disposes). */
  decode(z: tf.Tensor): tf.Tensor4D {
    this.alive("decode");
    const t = checkLatents(`${this.where}.decode`, z, this.latentDim);
    return tf.tidy(() =>
      (this.decoder.apply(t) as tf.Tensor).reshape([t.shape[0], 28, 28, 1])
    );
  }

  /** The deterministic code of each image: the AE's z, the VAE's posterior mean. [n, latentDim], caller disposes. */
  abstract embed(images: tf.Tensor): tf.Tensor2D;

  /**
   * Reconstructs images (the VAE decodes its posterior mean). Same shape as
   * the input, [n, 28, 28, 1] or [n, 784]; caller disposes.
   */
  reconstruct(images: tf.Tensor): tf.Tensor {
    this.alive("reconstruct");
    return tf.tidy(() => {
      const x = flatImages(`${this.where}.reconstruct`, images);
      const out = inBatches(
        x,
        1024,
        (b) => this.decoder.apply(this.codeOf(b)) as tf.Tensor,
      );
      return restoreShape(images, out);
    });
  }

  protected abstract codeOf(x: tf.Tensor2D): tf.Tensor2D;

  /**
   * One Adam step on a batch of images. With `noiseStd > 0` the inputs are
   * corrupted with clipped Gaussian noise and the clean images are the
   * target (a denoising autoencoder).
   */
  abstract trainStep(
    images: tf.Tensor,
    options?: { noiseStd?: number },
  ): StepReport;

  /** Reconstruction error (and rate for a VAE) on `images`, as plain numbers. */
  abstract evaluate(
    images: tf.Tensor,
    options?: { batchSize?: number; seed?: Seed },
  ): EvaluationReport;

  protected corrupt(x: tf.Tensor2D, noiseStd: number): tf.Tensor2D {
    if (noiseStd === 0) return x;
    return addNoiseUnchecked(x, noiseStd, this.rng) as tf.Tensor2D;
  }

  /** Frees the networks and the optimizer state. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.encoder.dispose();
    this.decoder.dispose();
    this.optimizer.dispose();
  }
}

function checkNoise(where: string, options: unknown): number {
  if (options === undefined) return 0;
  if (options === null || typeof options !== "object") {
    throw new ArgumentError(where, `options must be an object, got ${options}`);
  }
  const { noiseStd = 0 } = options as { noiseStd?: number };
  return checkNumber(where, "noiseStd", noiseStd, { min: 0 });
}

function checkBatchSize(where: string, options: unknown): number {
  const { batchSize = 1000 } = (options ?? {}) as { batchSize?: number };
  return checkInteger(where, "batchSize", batchSize, { min: 1 });
}

/** Sum over the rows of block results, kept in float64 to avoid drift over 10k images. */
function accumulate(
  x: tf.Tensor2D,
  batchSize: number,
  fn: (b: tf.Tensor2D) => tf.Tensor[],
): number[] {
  let sums: number[] = [];
  const n = x.shape[0];
  for (let s = 0; s < n; s += batchSize) {
    const size = Math.min(batchSize, n - s);
    const values = tf.tidy(() => {
      const b = x.slice([s, 0], [size, x.shape[1]]);
      return fn(b).map((t) => Array.from(t.dataSync()));
    });
    const flat = values.flat();
    sums = sums.length ? sums.map((v, i) => v + flat[i]) : flat;
  }
  return sums;
}

/**
 * A plain (deterministic) MLP autoencoder for 28x28 images,
 * 784 -> hidden -> latentDim -> hidden -> 784, trained on the summed squared
 * error. Call `dispose()` when done.
 */
export class Autoencoder extends ImageModel {
  /** Creates the networks and an Adam optimizer. */
  constructor(options: ImageAutoencoderOptions = {}) {
    super("Autoencoder", 1, options);
  }

  /** The code of flattened images: the encoder's output. */
  protected codeOf(x: tf.Tensor2D): tf.Tensor2D {
    return this.encoder.apply(x) as tf.Tensor2D;
  }

  /** The code z of each image, [n, latentDim] (caller disposes). */
  embed(images: tf.Tensor): tf.Tensor2D {
    this.alive("embed");
    return tf.tidy(() =>
      inBatches(
        flatImages("Autoencoder.embed", images),
        1024,
        (b) => this.codeOf(b),
      ) as tf.Tensor2D
    );
  }

  /** One Adam step on `||x - g(f(x))||^2` averaged over the batch; returns plain numbers. */
  trainStep(images: tf.Tensor, options?: { noiseStd?: number }): StepReport {
    this.alive("trainStep");
    const where = "Autoencoder.trainStep";
    const noiseStd = checkNoise(where, options);
    const vars = trainableVariables(this.encoder, this.decoder);
    const loss = tf.tidy(() => {
      const x = flatImages(where, images);
      const input = this.corrupt(x, noiseStd);
      return this.optimizer.minimize(
        () => {
          const xHat = this.decoder.apply(this.codeOf(input)) as tf.Tensor;
          return x.sub(xHat).square().sum(1).mean() as tf.Scalar;
        },
        true,
        vars,
      ) as tf.Scalar;
    });
    const value = loss.dataSync()[0];
    loss.dispose();
    return { loss: value, mse: value / PIXELS };
  }

  /** Mean squared error per pixel on `images` (rate 0: a deterministic code carries no KL). */
  evaluate(
    images: tf.Tensor,
    options?: { batchSize?: number },
  ): EvaluationReport {
    this.alive("evaluate");
    const where = "Autoencoder.evaluate";
    const batchSize = checkBatchSize(where, options);
    const x = flatImages(where, images);
    try {
      const [sq] = accumulate(x, batchSize, (b) => [
        b.sub(this.decoder.apply(this.codeOf(b)) as tf.Tensor).square().sum(),
      ]);
      return {
        mse: sq / (x.shape[0] * PIXELS),
        rate: 0,
        rateByDim: new Array(this.latentDim).fill(0),
        activeUnits: 0,
      };
    } finally {
      x.dispose();
    }
  }
}

/**
 * A Gaussian VAE for 28x28 images with MLP encoder and decoder:
 * q(z|x) = N(mu(x), diag exp(logVar(x))), p(z) = N(0, I),
 * p(x|z) = N(f(z), c I). Trained on the negative ELBO written as the
 * lecture's `||x - f(z)||^2 + lambda * KL(q(z|x) || p(z))` with
 * `lambda = 2 c beta` (beta = 1: the ELBO; beta > 1: the beta-VAE). Call
 * `dispose()` when done.
 */
export class GaussianVAE extends ImageModel {
  /** beta-VAE weight. */
  readonly beta: number;
  /** Decoder variance c. */
  readonly decoderVariance: number;

  /** Creates the networks and an Adam optimizer. */
  constructor(options: GaussianVAEOptions = {}) {
    super("GaussianVAE", 2, options);
    const { beta = 1, decoderVariance = 0.1 } = options;
    this.beta = checkNumber("GaussianVAE", "beta", beta, { min: 0 });
    this.decoderVariance = checkNumber(
      "GaussianVAE",
      "decoderVariance",
      decoderVariance,
      { min: 0, minExclusive: true },
    );
  }

  /** The weight of the KL term in the squared-error form of the loss: lambda = 2 c beta. */
  get lambda(): number {
    return 2 * this.decoderVariance * this.beta;
  }

  #split(x: tf.Tensor2D): { mu: tf.Tensor2D; logVar: tf.Tensor2D } {
    const h = this.encoder.apply(x) as tf.Tensor2D;
    const d = this.latentDim;
    return {
      mu: h.slice([0, 0], [-1, d]),
      logVar: h.slice([0, d], [-1, d]),
    };
  }

  /** The code of flattened images: the posterior mean mu (no sampling). */
  protected codeOf(x: tf.Tensor2D): tf.Tensor2D {
    return this.#split(x).mu;
  }

  /** The posterior parameters mu and logVar, each [n, latentDim] (caller disposes both). */
  encode(images: tf.Tensor): { mu: tf.Tensor2D; logVar: tf.Tensor2D } {
    this.alive("encode");
    return tf.tidy(() => this.#split(flatImages("GaussianVAE.encode", images)));
  }

  /** The posterior means, [n, latentDim] (caller disposes). */
  embed(images: tf.Tensor): tf.Tensor2D {
    this.alive("embed");
    return tf.tidy(() =>
      inBatches(
        flatImages("GaussianVAE.embed", images),
        1024,
        (b) => this.codeOf(b),
      ) as tf.Tensor2D
    );
  }

  /** Decodes n latents drawn from the prior N(0, I): [n, 28, 28, 1] (caller disposes). */
  sample(n: number, { seed = 0 }: { seed?: Seed } = {}): tf.Tensor4D {
    this.alive("sample");
    checkInteger("GaussianVAE.sample", "n", n, { min: 1 });
    return tf.tidy(() =>
      this.decode(randomNormal([n, this.latentDim], { seed }))
    );
  }

  /**
   * One Adam step on the batch mean of `||x - f(z)||^2 + lambda * KL` with one
   * reparameterized z per image. Returns plain numbers: `loss`, `mse` (per
   * pixel), `rate` (KL in nats per image).
   */
  trainStep(
    images: tf.Tensor,
    options?: { noiseStd?: number },
  ): StepReport & { rate: number } {
    this.alive("trainStep");
    const where = "GaussianVAE.trainStep";
    const noiseStd = checkNoise(where, options);
    const vars = trainableVariables(this.encoder, this.decoder);
    let kept: tf.Tensor[] = [];
    const loss = tf.tidy(() => {
      const x = flatImages(where, images);
      const input = this.corrupt(x, noiseStd);
      return this.optimizer.minimize(
        () => {
          const { mu, logVar } = this.#split(input);
          const z = reparameterizeUnchecked(mu, logVar, this.rng);
          const xHat = this.decoder.apply(z) as tf.Tensor;
          const sq = x.sub(xHat).square().sum(1).mean();
          const kl = klStandardNormal(mu, logVar).mean();
          kept = [tf.keep(sq), tf.keep(kl)];
          return sq.add(kl.mul(this.lambda)) as tf.Scalar;
        },
        true,
        vars,
      ) as tf.Scalar;
    });
    const [value, sq, kl] = [loss, ...kept].map((t) => t.dataSync()[0]);
    tf.dispose([loss, ...kept]);
    return { loss: value, mse: sq / PIXELS, rate: kl };
  }

  /**
   * Reconstruction MSE (decoding the posterior mean), the rate (mean KL per
   * image and per dimension), the number of active latent dimensions and the
   * negative ELBO in nats, averaged over `images`.
   */
  evaluate(
    images: tf.Tensor,
    options?: { batchSize?: number; seed?: Seed },
  ): EvaluationReport {
    this.alive("evaluate");
    const where = "GaussianVAE.evaluate";
    const batchSize = checkBatchSize(where, options);
    // A fixed stream: evaluating must not shift the training noise.
    const rng = rngFrom(options?.seed ?? 0);
    const x = flatImages(where, images);
    try {
      const sums = accumulate(x, batchSize, (b) => {
        const { mu, logVar } = this.#split(b);
        const meanSq = b.sub(this.decoder.apply(mu) as tf.Tensor).square()
          .sum();
        const z = reparameterizeUnchecked(mu, logVar, rng);
        const sampleSq = b.sub(this.decoder.apply(z) as tf.Tensor).square()
          .sum();
        const klDims = logVar.exp().add(mu.square()).sub(1).sub(logVar).mul(0.5)
          .sum(0);
        return [meanSq, sampleSq, klDims];
      });
      const n = x.shape[0];
      const [meanSq, sampleSq, ...klDims] = sums;
      const rateByDim = klDims.map((v) => v / n);
      const rate = rateByDim.reduce((a, b) => a + b, 0);
      const c = this.decoderVariance;
      const negElbo = sampleSq / n / (2 * c) +
        (PIXELS / 2) * Math.log(2 * Math.PI * c) + rate;
      return {
        mse: meanSq / (n * PIXELS),
        rate,
        rateByDim,
        activeUnits: rateByDim.filter((v) => v >= 0.01).length,
        negElbo,
      };
    } finally {
      x.dispose();
    }
  }
}

// ---------------------------------------------------------------------------
// Denoising

function addNoiseUnchecked(x: tf.Tensor, std: number, rng: Rng): tf.Tensor {
  return tf.tidy(() =>
    x.add(randomNormal(x.shape, { std, seed: rng })).clipByValue(0, 1)
  );
}

/**
 * Corrupts images with Gaussian noise of standard deviation `std`, clipped
 * back to [0, 1] (pixel range). Returns a new tensor of the input's shape
 * (caller disposes).
 */
export function addNoise(
  images: tf.Tensor,
  std: number,
  { seed = 0 }: { seed?: Seed } = {},
): tf.Tensor {
  checkTensor("addNoise", "images", images, { dtype: "float32" });
  checkNumber("addNoise", "std", std, { min: 0 });
  return addNoiseUnchecked(images, std, rngFrom(seed));
}

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
 */
export function denoisingError(
  model: Reconstructor,
  images: tf.Tensor,
  noiseStd: number,
  { seed = 0 }: { seed?: Seed } = {},
): { mse: number; noisyMse: number } {
  const where = "denoisingError";
  if (!model || typeof (model as Reconstructor).reconstruct !== "function") {
    throw new ArgumentError(
      where,
      "model must have a reconstruct(images) method (an Autoencoder or a GaussianVAE)",
    );
  }
  checkTensor(where, "images", images, { dtype: "float32", minRank: 2 });
  checkNumber(where, "noiseStd", noiseStd, { min: 0 });
  const [mse, noisyMse] = tf.tidy(() => {
    const noisy = addNoiseUnchecked(images, noiseStd, rngFrom(seed));
    const out = model.reconstruct(noisy);
    return [
      out.sub(images).square().mean().dataSync()[0],
      noisy.sub(images).square().mean().dataSync()[0],
    ];
  });
  return { mse, noisyMse };
}

// ---------------------------------------------------------------------------
// Linear autoencoder, PCA and principal angles

/**
 * Eigendecomposition of a symmetric matrix given as rows, by the cyclic
 * Jacobi method of `jacobiEigen` (lib/linalg.ts). Returns the eigenvalues in
 * decreasing order and the matching unit eigenvectors as rows. O(d^3) per sweep: meant for
 * d up to a few hundred.
 *
 * @throws ArgumentError if the matrix is not square, not symmetric or not finite
 */
export function symmetricEigen(
  matrix: number[][],
  { maxSweeps = 100 }: { maxSweeps?: number } = {},
): { values: number[]; vectors: number[][] } {
  const where = "symmetricEigen";
  checkInteger(where, "maxSweeps", maxSweeps, { min: 1 });
  if (!Array.isArray(matrix) || matrix.length === 0) {
    throw new ArgumentError(
      where,
      "matrix must be a non-empty square number[][]",
    );
  }
  const n = matrix.length;
  const a = new Float64Array(n * n);
  let scale = 0;
  for (let i = 0; i < n; i++) {
    const row = matrix[i];
    if (!Array.isArray(row) || row.length !== n) {
      throw new ArgumentError(
        where,
        `matrix must be square: it has ${n} rows but row ${i} has ${
          Array.isArray(row) ? row.length : "no"
        } entries`,
      );
    }
    for (let j = 0; j < n; j++) {
      const v = row[j];
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw new ArgumentError(
          where,
          `matrix[${i}][${j}] must be a finite number, got ${v}`,
        );
      }
      a[i * n + j] = v;
      scale = Math.max(scale, Math.abs(v));
    }
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      if (
        Math.abs(a[i * n + j] - a[j * n + i]) > 1e-6 * Math.max(scale, 1e-300)
      ) {
        throw new ArgumentError(
          where,
          `matrix must be symmetric, but matrix[${i}][${j}] = ${
            a[i * n + j]
          } and matrix[${j}][${i}] = ${a[j * n + i]}`,
        );
      }
    }
  }
  // Symmetrise away the rounding the tolerance above allows, then share the
  // one Jacobi solver of the package.
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      const mean = 0.5 * (a[i * n + j] + a[j * n + i]);
      a[i * n + j] = mean;
      a[j * n + i] = mean;
    }
  }
  const eig = jacobiEigen(a, n, { maxSweeps });
  // jacobiEigen sorts ascending with eigenvectors as columns; PCA wants
  // decreasing order with eigenvectors as rows.
  const order = Array.from({ length: n }, (_, i) => n - 1 - i);
  return {
    values: order.map((i) => eig.values[i]),
    vectors: order.map((i) =>
      Array.from({ length: n }, (_, k) => eig.vectors[k * n + i])
    ),
  };
}

/** The result of `pca`. */
export interface PCAResult {
  /** The data mean (length d). */
  mean: number[];
  /** The top-k principal directions as unit rows, [k][d], by decreasing variance. */
  components: number[][];
  /** Variance along each component (length k). */
  explainedVariance: number[];
  /** All d eigenvalues of the covariance, decreasing. */
  eigenvalues: number[];
}

/**
 * Principal component analysis: eigendecomposition (float64 Jacobi) of the
 * d x d covariance of the rows of `data`. Keep d small (<= ~300; downsample
 * images first).
 *
 * @param data [n, d] tensor or number[][] with n >= 2
 * @param k number of components, 1 <= k <= d
 */
export function pca(data: tf.Tensor2D | number[][], k: number): PCAResult {
  const where = "pca";
  const { matrix, created } = toMatrix(where, "data", data);
  try {
    const [n, d] = matrix.shape;
    if (n < 2) {
      throw new ArgumentError(where, `data needs at least 2 rows, got ${n}`);
    }
    checkInteger(where, "k", k, { min: 1, max: d });
    const { mean, cov } = tf.tidy(() => {
      const m = matrix.mean(0);
      const xc = matrix.sub(m);
      return {
        mean: Array.from(m.dataSync()),
        cov: tf.matMul(xc, xc, true, false).div(n - 1)
          .arraySync() as number[][],
      };
    });
    // Symmetrise the float32 round-off before the float64 solver.
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < i; j++) {
        const s = (cov[i][j] + cov[j][i]) / 2;
        cov[i][j] = s;
        cov[j][i] = s;
      }
    }
    const { values, vectors } = symmetricEigen(cov);
    return {
      mean,
      components: vectors.slice(0, k),
      explainedVariance: values.slice(0, k),
      eigenvalues: values,
    };
  } finally {
    if (created) matrix.dispose();
  }
}

function orthonormalRows(
  where: string,
  name: string,
  rows: number[][],
): number[][] {
  if (!Array.isArray(rows) || rows.length === 0 || !Array.isArray(rows[0])) {
    throw new ArgumentError(
      where,
      `${name} must be a non-empty number[][] (one basis vector per row)`,
    );
  }
  const d = rows[0].length;
  const out: number[][] = [];
  rows.forEach((r, i) => {
    if (
      !Array.isArray(r) || r.length !== d || r.some((v) => !Number.isFinite(v))
    ) {
      throw new ArgumentError(
        where,
        `${name}[${i}] must be a finite vector of length ${d}`,
      );
    }
    // Modified Gram-Schmidt, twice for float64 stability.
    let w = r.slice();
    for (let pass = 0; pass < 2; pass++) {
      for (const q of out) {
        const dot = w.reduce((s, v, j) => s + v * q[j], 0);
        w = w.map((v, j) => v - dot * q[j]);
      }
    }
    const norm = Math.hypot(...w);
    const ref = Math.hypot(...r);
    if (!(norm > 1e-10 * Math.max(ref, 1e-300))) {
      throw new ArgumentError(
        where,
        `${name} must be linearly independent, but row ${i} lies in the span of the rows before it`,
      );
    }
    out.push(w.map((v) => v / norm));
  });
  return out;
}

/**
 * Principal angles (radians, increasing) between the subspaces spanned by
 * the rows of `a` [k1][d] and `b` [k2][d]: the arccosines of the singular
 * values of Qa Qb^T after orthonormalising both, min(k1, k2) of them. All
 * zero means the spans are equal (for k1 = k2); pi/2 means orthogonal
 * directions.
 */
export function principalAngles(a: number[][], b: number[][]): number[] {
  const where = "principalAngles";
  const qa = orthonormalRows(where, "a", a);
  const qb = orthonormalRows(where, "b", b);
  if (qa[0].length !== qb[0].length) {
    throw new ArgumentError(
      where,
      `a and b must live in the same space: rows of length ${qa[0].length} vs ${
        qb[0].length
      }`,
    );
  }
  const [small, big] = qa.length <= qb.length ? [qa, qb] : [qb, qa];
  const m = small.map((u) =>
    big.map((w) => u.reduce((s, v, j) => s + v * w[j], 0))
  );
  const mmT = m.map((r1) =>
    m.map((r2) => r1.reduce((s, v, j) => s + v * r2[j], 0))
  );
  const { values } = symmetricEigen(mmT);
  return values
    .map((s2) => Math.acos(Math.min(1, Math.sqrt(Math.max(0, s2)))))
    .sort((x, y) => x - y);
}

/**
 * A linear autoencoder x -> x W_e -> (x W_e) W_d on centred data, trained by
 * Adam on the mean squared error. Its optimum spans the same subspace as the
 * top-k principal components (but W_e, W_d are not orthonormal and not the
 * components themselves). Call `dispose()` when done.
 */
export class LinearAutoencoder {
  /** Encoder weights [d, k]. */
  readonly encoderWeights: tf.Variable;
  /** Decoder weights [k, d]: its rows span the learned subspace. */
  readonly decoderWeights: tf.Variable;
  readonly #optimizer: tf.Optimizer;

  /** Creates small random weights for a d -> k -> d linear autoencoder. */
  constructor(
    d: number,
    k: number,
    { learningRate = 0.01, seed = 0 }: { learningRate?: number; seed?: Seed } =
      {},
  ) {
    const where = "LinearAutoencoder";
    checkInteger(where, "d", d, { min: 1 });
    checkInteger(where, "k", k, { min: 1, max: d });
    checkNumber(where, "learningRate", learningRate, {
      min: 0,
      minExclusive: true,
    });
    const rng = rngFrom(seed);
    const std = 1 / Math.sqrt(d);
    [this.encoderWeights, this.decoderWeights] = tf.tidy(() => [
      tf.variable(randomNormal([d, k], { std, seed: rng })),
      tf.variable(randomNormal([k, d], { std, seed: rng })),
    ]);
    this.#optimizer = adam(learningRate);
  }

  /** One Adam step on the mean over rows of ||x - x W_e W_d||^2 for centred data [n, d]; returns that loss. */
  trainStep(centred: tf.Tensor2D): number {
    const d = this.encoderWeights.shape[0];
    checkTensor("LinearAutoencoder.trainStep", "centred", centred, {
      shape: [null, d],
      dtype: "float32",
    });
    checkFinite("LinearAutoencoder.trainStep", "centred", centred);
    const loss = this.#optimizer.minimize(
      () =>
        centred.sub(
          tf.matMul(
            tf.matMul(centred, this.encoderWeights),
            this.decoderWeights,
          ),
        ).square().sum(1).mean() as tf.Scalar,
      true,
      [
        this.encoderWeights,
        this.decoderWeights,
      ],
    ) as tf.Scalar;
    const value = loss.dataSync()[0];
    loss.dispose();
    return value;
  }

  /** The rows of W_d as plain arrays [k][d]: a (non-orthonormal) basis of the learned subspace. */
  basis(): number[][] {
    return this.decoderWeights.arraySync() as number[][];
  }

  /** Frees the weights and the optimizer state. */
  dispose(): void {
    this.encoderWeights.dispose();
    this.decoderWeights.dispose();
    this.#optimizer.dispose();
  }
}

// ---------------------------------------------------------------------------
// Score function vs reparameterization

/** A scalar objective f(z) and its derivative, for gradient-estimator studies. */
export interface ScalarObjective {
  /** f(z). */
  f: (z: number) => number;
  /** f'(z) (needed by the reparameterized estimator only). */
  df: (z: number) => number;
}

/** The two estimators of d/d(mu, log sigma) E_{z ~ N(mu, sigma^2)} f(z). */
export type GradientEstimator =
  | "reparameterization"
  | "score-function"
  | "score-function-baseline";

/** Options of `gaussianGradientEstimates`. */
export interface GaussianGradientOptions {
  /** Mean of the Gaussian. */
  mu: number;
  /** Log standard deviation of the Gaussian. */
  logSigma: number;
  /** Samples averaged inside one estimate (default 1). */
  samples?: number;
  /** Independent estimates to draw (default 1000). */
  trials?: number;
  /** Seed (default 0). */
  seed?: Seed;
}

/** Per-trial estimates and their mean and variance (plain numbers). */
export interface GradientEstimates {
  /** One estimate of dE/dmu per trial. */
  dMu: number[];
  /** One estimate of dE/d(log sigma) per trial. */
  dLogSigma: number[];
  /** Means over trials. */
  mean: { dMu: number; dLogSigma: number };
  /** Variances over trials (unbiased). */
  variance: { dMu: number; dLogSigma: number };
}

function meanVar(v: number[]): [number, number] {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  const s = v.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(v.length - 1, 1);
  return [m, s];
}

/**
 * Monte-Carlo estimates of the gradient of `E_{z ~ N(mu, sigma^2)} f(z)`
 * with respect to mu and log sigma, `trials` times:
 * - "reparameterization": z = mu + sigma eps, gradient f'(z) * (1, sigma eps);
 * - "score-function" (REINFORCE): f(z) * d log q(z) = f(z) * ((z - mu)/sigma^2, (z - mu)^2/sigma^2 - 1);
 * - "score-function-baseline": the same with f(z) - f(mu) (a constant baseline: still unbiased, less variance).
 * All three are unbiased; their variances differ (float64 JavaScript).
 */
export function gaussianGradientEstimates(
  estimator: GradientEstimator,
  objective: ScalarObjective,
  options: GaussianGradientOptions,
): GradientEstimates {
  const where = "gaussianGradientEstimates";
  checkChoice(
    where,
    "estimator",
    estimator,
    [
      "reparameterization",
      "score-function",
      "score-function-baseline",
    ] as const,
  );
  if (
    !objective || typeof objective.f !== "function" ||
    typeof objective.df !== "function"
  ) {
    throw new ArgumentError(
      where,
      "objective must be { f(z), df(z) } with two functions",
    );
  }
  if (options === null || typeof options !== "object") {
    throw new ArgumentError(
      where,
      "options must be an object with mu and logSigma",
    );
  }
  const mu = checkNumber(where, "mu", options.mu);
  const logSigma = checkNumber(where, "logSigma", options.logSigma, {
    min: -20,
    max: 20,
  });
  const samples = checkInteger(where, "samples", options.samples ?? 1, {
    min: 1,
  });
  const trials = checkInteger(where, "trials", options.trials ?? 1000, {
    min: 2,
  });
  const rng = rngFrom(options.seed ?? 0);
  const sigma = Math.exp(logSigma);
  const baseline = estimator === "score-function-baseline"
    ? objective.f(mu)
    : 0;
  const dMu: number[] = [];
  const dLogSigma: number[] = [];
  for (let t = 0; t < trials; t++) {
    let gm = 0;
    let gs = 0;
    for (let s = 0; s < samples; s++) {
      const eps = rng.normal();
      const z = mu + sigma * eps;
      if (estimator === "reparameterization") {
        const g = objective.df(z);
        gm += g;
        gs += g * sigma * eps;
      } else {
        const w = objective.f(z) - baseline;
        gm += w * eps / sigma;
        gs += w * (eps * eps - 1);
      }
    }
    if (!Number.isFinite(gm) || !Number.isFinite(gs)) {
      throw new ArgumentError(
        where,
        `objective returned a non-finite value near z = ${mu}`,
      );
    }
    dMu.push(gm / samples);
    dLogSigma.push(gs / samples);
  }
  const [mm, vm] = meanVar(dMu);
  const [ms, vs] = meanVar(dLogSigma);
  return {
    dMu,
    dLogSigma,
    mean: { dMu: mm, dLogSigma: ms },
    variance: { dMu: vm, dLogSigma: vs },
  };
}

// ---------------------------------------------------------------------------
// Notebook 02 helpers: data preparation, experiment loops, plain summaries

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
  { count }: { count?: number } = {},
): tf.Tensor2D {
  const where = "downsampleImages";
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
  const m = checkInteger(where, "count", count ?? n, { min: 1, max: n });
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

/** The three estimators of `gaussianGradientEstimates`, in display order. */
export const GRADIENT_ESTIMATORS: readonly GradientEstimator[] = Object.freeze(
  ["reparameterization", "score-function", "score-function-baseline"] as const,
);

/**
 * Runs `gaussianGradientEstimates` once per estimator with the same options
 * (and seed), so the estimators can be compared side by side.
 *
 * @returns plain numbers, keyed by estimator name in `GRADIENT_ESTIMATORS` order
 * @throws ArgumentError as `gaussianGradientEstimates`
 */
export function compareGradientEstimators(
  objective: ScalarObjective,
  options: GaussianGradientOptions,
): Record<GradientEstimator, GradientEstimates> {
  return Object.fromEntries(
    GRADIENT_ESTIMATORS.map((e) => [
      e,
      gaussianGradientEstimates(e, objective, options),
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
  if (!Array.isArray(sampleCounts) || sampleCounts.length === 0) {
    throw new ArgumentError(
      "gradientVarianceBySamples",
      "sampleCounts must be a non-empty array of positive integers",
    );
  }
  return Object.fromEntries(
    GRADIENT_ESTIMATORS.map((e) => [
      e,
      sampleCounts.map((s) =>
        gaussianGradientEstimates(e, objective, { ...options, samples: s })
          .variance.dMu
      ),
    ]),
  ) as Record<GradientEstimator, number[]>;
}

/**
 * An endless stream of shuffled minibatches for training: epoch e goes
 * through `batches(n, batchSize, { seed: seed + e })` (lib/data.ts), the
 * last batch of an epoch may be shorter. `next()` returns the next batch of
 * `images` as a new tensor: the caller disposes it.
 *
 * @throws ArgumentError for an empty `images`, a bad batchSize or seed
 */
export function endlessImageBatches(
  images: tf.Tensor,
  batchSize: number,
  { seed = 0 }: { seed?: number } = {},
): { next(): tf.Tensor } {
  const where = "endlessImageBatches";
  checkTensor(where, "images", images, { minRank: 1 });
  const n = images.shape[0];
  if (n === 0) throw new ArgumentError(where, "images must not be empty");
  checkInteger(where, "batchSize", batchSize, { min: 1 });
  checkNumber(where, "seed", seed);
  function* indices() {
    for (let epoch = 0;; epoch++) {
      yield* batches(n, batchSize, { seed: seed + epoch });
    }
  }
  const order = indices();
  return {
    next: () => tf.gather(images, order.next().value as Int32Array),
  };
}

/**
 * The variance of each latent dimension over the rows of `codes` [n, d]
 * (population variance, as `tf.moments`): how far the codes spread compared
 * with the prior N(0, I), whose variance is 1.
 *
 * @returns d plain numbers
 */
export function codeVariance(codes: tf.Tensor2D): number[] {
  checkTensor("codeVariance", "codes", codes, { rank: 2 });
  return Array.from(
    tf.tidy(() => tf.moments(codes, 0).variance.dataSync()),
  );
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
  { steps = 10 }: { steps?: number } = {},
): tf.Tensor2D {
  const where = "interpolateCodes";
  checkTensor(where, "codes", codes, { rank: 2, dtype: "float32" });
  const [n, d] = codes.shape;
  checkInteger(where, "i", i, { min: 0, max: n - 1 });
  checkInteger(where, "j", j, { min: 0, max: n - 1 });
  checkInteger(where, "steps", steps, { min: 2 });
  return tf.tidy(() => {
    const t = tf.linspace(0, 1, steps).reshape([steps, 1]);
    return codes.slice([i, 0], [1, d]).mul(tf.sub(1, t)).add(
      codes.slice([j, 0], [1, d]).mul(t),
    );
  }) as tf.Tensor2D;
}

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
  const entries = Object.entries(models ?? {});
  for (const [name, m] of entries) {
    if (!m || typeof m.evaluate !== "function") {
      throw new ArgumentError(
        "reconstructionMSE",
        `models["${name}"] must have an evaluate(images) method`,
      );
    }
  }
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
  /** Trains a fresh model (e.g. with `trainLoop`); called once per beta, in order. */
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
 * @throws ArgumentError for an empty or non-positive `betas`, or a missing `fit`
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
  if (!options || typeof options.fit !== "function") {
    throw new ArgumentError(
      where,
      "options.fit must be a function (model, beta) => Promise that trains the model",
    );
  }
  const { fit, images, latentDim = 16, seed = 2, reconstruct } = options;
  checkTensor(where, "images", images, { dtype: "float32" });
  if (reconstruct !== undefined) {
    checkTensor(where, "reconstruct", reconstruct, { dtype: "float32" });
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
  return points.map(({ beta, rate, mse, activeUnits }) => ({
    beta,
    "rate (nats)": rate.toFixed(2),
    "test MSE": mse.toFixed(4),
    "active dims": activeUnits,
  }));
}
