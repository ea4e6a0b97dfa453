/**
 * The Gaussian VAE refresher: the closed-form Gaussian KL, the
 * reparameterization trick, small MLP autoencoders and VAEs for 28x28
 * images, a linear autoencoder next to PCA (compared by principal angles),
 * and the score-function gradient estimator next to the reparameterized one.
 *
 * Conventions. A Gaussian is given by its mean and its log-variance
 * (`logVar = ln sigma^2`): the encoder can output any real number there and
 * sigma stays positive. The VAE loss per image is the lecture's
 * `||x - f(z)||^2 + lambda * KL(q(z|x) || N(0, I))` with `lambda = 2 c beta`,
 * where `c` is the decoder variance of `p(x|z) = N(f(z), c I)` and `beta` the
 * beta-VAE weight (beta = 1: the plain ELBO).
 *
 * Every model follows the `Trainable` contract of lib/model.ts and trains
 * with the one `trainStep`; the optimizer belongs to the caller:
 *
 * ```ts
 * const vae = new GaussianVAE({ latentDim: 16, seed: 2 });
 * const optimizer = adam(1e-3);
 * const sampler = batchSampler(train.images, 128, { seed: 0 });
 * const history = await trainLoop(
 *   () => tf.tidy(() => trainStep(vae, optimizer, sampler.next())),
 *   { steps: 600, label: "VAE" },
 * ); // history.loss, history.mse, history.rate
 * ```
 *
 * Linear algebra that tfjs lacks (a symmetric eigendecomposition, principal
 * angles) is done in float64 JavaScript on small d x d matrices.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkChoice,
  checkFinite,
  checkInteger,
  checkNumber,
  checkOptions,
  checkSize,
  checkTensor,
  toMatrix,
} from "./validate.ts";
import { jacobiEigen } from "./linalg.ts";
import {
  randomNormal,
  Rng,
  rngFrom,
  rngOrStream,
  type Seed,
} from "./random.ts";
import { mlp, trainableVariables as layerVariables } from "./nn.ts";
import type { LossTerms, Trainable } from "./model.ts";

// ---------------------------------------------------------------------------
// Gaussian KL and the reparameterization trick

const PIXELS = 28 * 28;

/**
 * The generator of a `seed` option: without one, the package's shared
 * stream, which every unseeded draw advances (never the same noise twice).
 */
function checkSeed(where: string, name: string, seed: unknown): Rng {
  if (seed === undefined || seed instanceof Rng) return rngOrStream(seed);
  return rngFrom(checkNumber(where, name, seed));
}

function sameShape(a: tf.Tensor, b: tf.Tensor): boolean {
  return a.rank === b.rank && a.shape.every((s, i) => s === b.shape[i]);
}

function checkPair(
  where: string,
  names: [string, string],
  a: unknown,
  b: unknown,
): [tf.Tensor, tf.Tensor] {
  const ta = checkTensor(where, names[0], a, { minRank: 1, dtype: "float32" });
  const tb = checkTensor(where, names[1], b, { minRank: 1, dtype: "float32" });
  if (!sameShape(ta, tb)) {
    throw new ArgumentError(
      where,
      `${names[1]} must have the shape of ${
        names[0]
      } [${ta.shape}], got [${tb.shape}]`,
    );
  }
  checkFinite(where, names[0], ta);
  checkFinite(where, names[1], tb);
  return [ta, tb];
}

/** KL(N(mu, diag e^logVar) || N(0, I)) of each row, in nats: the VAE's rate. */
function klToStandardNormal(mu: tf.Tensor, logVar: tf.Tensor): tf.Tensor {
  // Per dimension (sigma^2 + mu^2 - 1 - ln sigma^2) / 2; the dimensions of a
  // diagonal Gaussian are independent, so their KLs add up.
  return logVar.exp().add(mu.square()).sub(1).sub(logVar).mul(0.5).sum(-1);
}

/** KL(N(muQ, diag e^logVarQ) || N(muP, diag e^logVarP)) of each row, in nats. */
function diagonalGaussianKL(
  muQ: tf.Tensor,
  logVarQ: tf.Tensor,
  muP: tf.Tensor,
  logVarP: tf.Tensor,
): tf.Tensor {
  const varianceRatio = logVarQ.sub(logVarP).exp(); // sigma_q^2 / sigma_p^2
  const meanTerm = muQ.sub(muP).square().div(logVarP.exp());
  return logVarP.sub(logVarQ).add(varianceRatio).add(meanTerm).sub(1)
    .mul(0.5).sum(-1);
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
 * ```ts
 * const kl = gaussianKL(mu, logVar); // [n] nats, against N(0, I)
 * ```
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
  const [mq, lq] = checkPair(where, ["muQ", "logVarQ"], muQ, logVarQ);
  if ((muP === undefined) !== (logVarP === undefined)) {
    throw new ArgumentError(
      where,
      "give both muP and logVarP (the prior's mean and log-variance) or neither (standard normal prior)",
    );
  }
  if (muP === undefined) return tf.tidy(() => klToStandardNormal(mq, lq));
  const [mp, lp] = checkPair(where, ["muP", "logVarP"], muP, logVarP);
  if (!sameShape(mq, mp)) {
    throw new ArgumentError(
      where,
      `muP must have the shape of muQ [${mq.shape}], got [${mp.shape}]`,
    );
  }
  return tf.tidy(() => diagonalGaussianKL(mq, lq, mp, lp));
}

/** z = mu + sigma * eps with eps ~ N(0, I) from `rng`: a sample of q that gradients flow through. */
function reparameterizedSample(
  mu: tf.Tensor,
  logVar: tf.Tensor,
  rng: Rng,
): tf.Tensor {
  // The noise does not depend on mu or logVar, so z is a differentiable
  // function of both: dz/dmu = 1, dz/dlogVar = sigma * eps / 2.
  const eps = randomNormal(mu.shape, { seed: rng });
  const sigma = logVar.mul(0.5).exp();
  return mu.add(sigma.mul(eps));
}

/**
 * The reparameterization trick: `z = mu + sigma * eps` with
 * `sigma = exp(logVar / 2)` and `eps ~ N(0, I)` drawn from the seeded
 * generator. The randomness sits in `eps`, which does not depend on the
 * parameters, so gradients flow from `z` back to `mu` and `logVar`.
 *
 * ```ts
 * const z = reparameterize(mu, logVar, { seed: 5 }); // same seed, same eps
 * ```
 *
 * @param mu float32 [..., d]
 * @param logVar float32 [..., d] (same shape)
 * @param options.seed a number or an `Rng`; without one, each call draws new noise from the package's shared seeded stream
 * @returns z with the shape of `mu` (caller disposes)
 * @throws ArgumentError for mismatched shapes, non-float32 dtypes or NaN/Infinity
 */
export function reparameterize(
  mu: tf.Tensor,
  logVar: tf.Tensor,
  options: { seed?: Seed } = {},
): tf.Tensor {
  const where = "reparameterize";
  const { seed } = checkOptions(where, options, ["seed"]);
  const rng = checkSeed(where, "options.seed", seed);
  const [m, lv] = checkPair(where, ["mu", "logVar"], mu, logVar);
  return tf.tidy(() => reparameterizedSample(m, lv, rng));
}

/**
 * The Gaussian VAE's loss of a batch: the batch mean of
 * ||x - f(z)||^2 + lambda KL(q(z|x) || N(0, I)), lambda = 2 c beta.
 */
function vaeLoss(
  x: tf.Tensor2D,
  xHat: tf.Tensor2D,
  mu: tf.Tensor2D,
  logVar: tf.Tensor2D,
  lambda: number,
): LossTerms {
  const distortion: tf.Scalar = x.sub(xHat).square().sum(1).mean(); // E ||x - f(z)||^2
  const rate: tf.Scalar = klToStandardNormal(mu, logVar).mean(); // E KL(q(z|x) || p(z))
  return {
    total: distortion.add(rate.mul(lambda)),
    terms: { mse: distortion.div(PIXELS), rate },
  };
}

// ---------------------------------------------------------------------------
// Autoencoders for 28x28 images

/** Options shared by `Autoencoder` and `GaussianVAE`. */
export interface ImageAutoencoderOptions {
  /** Latent dimension (default 16; 2 for latent-space plots). */
  latentDim?: number;
  /** Width of the single hidden layer of encoder and decoder (default 256). */
  hidden?: number;
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

/**
 * A training batch of the image models: images [n, 28, 28, 1] or [n, 784]
 * (reconstructed as they are), or a corrupted `input` with its clean
 * `target` of the same shape (a denoising autoencoder).
 */
export type ImageBatch = tf.Tensor | { input: tf.Tensor; target: tf.Tensor };

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

const IMAGE_OPTIONS = ["latentDim", "hidden", "seed"] as const;

/** Checks the options of an image model before anything is built. */
function checkImageOptions<T extends ImageAutoencoderOptions>(
  where: string,
  options: T,
  extra: readonly string[] = [],
): Required<ImageAutoencoderOptions> {
  if (
    options !== null && typeof options === "object" && "learningRate" in options
  ) {
    throw new ArgumentError(
      where,
      "the learning rate belongs to the optimizer now: make one with adam(1e-3) and pass it to trainStep(model, optimizer, batch)",
    );
  }
  const o = checkOptions(where, options, [...IMAGE_OPTIONS, ...extra]);
  return {
    latentDim: checkInteger(where, "options.latentDim", o.latentDim ?? 16, {
      min: 1,
    }),
    hidden: checkInteger(where, "options.hidden", o.hidden ?? 256, { min: 1 }),
    seed: checkNumber(where, "options.seed", o.seed ?? 0),
  };
}

/** Accepts [n, 28, 28, 1] or [n, 784] float32 images; returns a [n, 784] view. */
function flatImages(
  where: string,
  images: unknown,
  name = "images",
): tf.Tensor2D {
  const t = checkTensor(where, name, images, { dtype: "float32" });
  const ok = (t.rank === 4 && t.shape[1] === 28 && t.shape[2] === 28 &&
    t.shape[3] === 1) || (t.rank === 2 && t.shape[1] === PIXELS);
  if (!ok || t.shape[0] === 0) {
    throw new ArgumentError(
      where,
      `${name} must be a non-empty float32 tensor of shape [n, 28, 28, 1] or [n, 784], got shape [${t.shape}]`,
    );
  }
  checkFinite(where, name, t);
  return t.reshape([t.shape[0], PIXELS]);
}

/** The flat input and target of a batch (the same tensor unless denoising). */
function imagePair(
  where: string,
  batch: unknown,
): { input: tf.Tensor2D; target: tf.Tensor2D } {
  if (batch instanceof tf.Tensor) {
    const x = flatImages(where, batch, "batch");
    return { input: x, target: x };
  }
  if (batch === null || typeof batch !== "object") {
    throw new ArgumentError(
      where,
      `batch must be images or { input, target }, got ${batch}`,
    );
  }
  const { input, target } = checkOptions(
    where,
    batch as { input?: tf.Tensor; target?: tf.Tensor },
    ["input", "target"],
    "batch",
  );
  // flatImages may make new (reshaped) tensors: free them if a check throws.
  const made: tf.Tensor[] = [];
  const flat = (x: unknown, name: string) => {
    const f = flatImages(where, x, name);
    if (f !== x) made.push(f);
    return f;
  };
  let pair: { input: tf.Tensor2D; target: tf.Tensor2D };
  try {
    pair = {
      input: flat(input, "batch.input"),
      target: flat(target, "batch.target"),
    };
  } catch (e) {
    tf.dispose(made);
    throw e;
  }
  if (!sameShape(pair.input, pair.target)) {
    tf.dispose(made);
    throw new ArgumentError(
      where,
      `batch.target must have as many images as batch.input (${
        pair.input.shape[0]
      }), got ${pair.target.shape[0]}`,
    );
  }
  return pair;
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

abstract class ImageModel implements Trainable<ImageBatch> {
  /** Encoder network: 784 -> hidden -> (latentDim, or 2 * latentDim for a VAE). */
  readonly encoder: tf.Sequential;
  /** Decoder network: latentDim -> hidden -> 784 with a sigmoid (pixels in [0, 1]). */
  readonly decoder: tf.Sequential;
  /** Latent dimension. */
  readonly latentDim: number;
  /** Noise of the training samples (the VAE's reparameterized z). */
  protected readonly rng: Rng;
  protected readonly where: string;
  #disposed = false;

  /** Builds the networks from options its subclass has already checked. */
  constructor(
    where: string,
    encoderOut: number,
    { latentDim, hidden, seed }: Required<ImageAutoencoderOptions>,
  ) {
    this.where = where;
    this.latentDim = latentDim;
    const name = where.toLowerCase();
    this.encoder = mlp([PIXELS, hidden, encoderOut * latentDim], {
      seed,
      name: `${name}_enc`,
    });
    this.decoder = mlp([latentDim, hidden, PIXELS], {
      seed: seed + 1,
      outputActivation: "sigmoid",
      name: `${name}_dec`,
    });
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

  /** The weights of encoder and decoder: what the optimizer moves. */
  trainableVariables(): tf.Variable[] {
    this.alive("trainableVariables");
    return layerVariables(this.encoder, this.decoder);
  }

  /** The loss of one batch (new scalars; `trainStep` frees them). */
  abstract loss(batch: ImageBatch): LossTerms;

  /** The flat input and target of a batch, checked, for `method`'s errors. */
  protected checkedBatch(
    method: string,
    batch: ImageBatch,
  ): { input: tf.Tensor2D; target: tf.Tensor2D } {
    this.alive(method);
    return imagePair(`${this.where}.${method}`, batch);
  }

  /** Decodes latents z [n, latentDim] into images [n, 28, 28, 1] (caller disposes). */
  decode(z: tf.Tensor): tf.Tensor4D {
    this.alive("decode");
    const t = checkLatents(`${this.where}.decode`, z, this.latentDim);
    return tf.tidy(() =>
      (this.decoder.apply(t) as tf.Tensor).reshape([t.shape[0], 28, 28, 1])
    );
  }

  /** The deterministic code of each image (the AE's z, the VAE's posterior mean), [n, latentDim]; caller disposes. */
  embed(images: tf.Tensor): tf.Tensor2D {
    this.alive("embed");
    return tf.tidy(() =>
      inBatches(
        flatImages(`${this.where}.embed`, images),
        1024,
        (b) => this.codeOf(b),
      ) as tf.Tensor2D
    );
  }

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

  /** Reconstruction error (and rate for a VAE) on `images`, as plain numbers. */
  abstract evaluate(
    images: tf.Tensor,
    options?: { batchSize?: number; seed?: Seed },
  ): EvaluationReport;

  /** Frees the networks. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.encoder.dispose();
    this.decoder.dispose();
  }
}

/**
 * A plain (deterministic) MLP autoencoder for 28x28 images,
 * 784 -> hidden -> latentDim -> hidden -> 784, trained on the summed squared
 * error per image. Follows the `Trainable` contract: train it with
 * `trainStep(ae, adam(1e-3), images)`. Call `dispose()` when done.
 *
 * ```ts
 * const ae = new Autoencoder({ latentDim: 2, seed: 1 });
 * const metrics = tf.tidy(() => trainStep(ae, optimizer, sampler.next())); // { loss, mse }
 * ```
 */
export class Autoencoder extends ImageModel {
  /** Creates the networks (every option is checked first). */
  constructor(options: ImageAutoencoderOptions = {}) {
    super("Autoencoder", 1, checkImageOptions("Autoencoder", options));
  }

  /** The code of flattened images: the encoder's output. */
  protected codeOf(x: tf.Tensor2D): tf.Tensor2D {
    return this.encoder.apply(x) as tf.Tensor2D;
  }

  /** The batch mean of ||x - g(f(x))||^2 (`mse`: per pixel); for `{ input, target }`, ||target - g(f(input))||^2. */
  loss(batch: ImageBatch): LossTerms {
    const { input, target } = this.checkedBatch("loss", batch);
    const xHat = this.decoder.apply(this.codeOf(input)) as tf.Tensor2D;
    const distortion = target.sub(xHat).square().sum(1).mean() as tf.Scalar;
    return { total: distortion, terms: { mse: distortion.div(PIXELS) } };
  }

  /** Mean squared error per pixel on `images` (rate 0: a deterministic code carries no KL). */
  evaluate(
    images: tf.Tensor,
    options: { batchSize?: number } = {},
  ): EvaluationReport {
    this.alive("evaluate");
    const where = "Autoencoder.evaluate";
    const o = checkOptions(where, options, ["batchSize"]);
    const batchSize = checkInteger(
      where,
      "options.batchSize",
      o.batchSize ?? 1000,
      {
        min: 1,
      },
    );
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
 * `lambda = 2 c beta` (beta = 1: the ELBO; beta > 1: the beta-VAE).
 * Follows the `Trainable` contract: train it with
 * `trainStep(vae, adam(1e-3), images)`, which reports `loss`, `mse` (per
 * pixel) and `rate` (KL in nats per image). Call `dispose()` when done.
 *
 * ```ts
 * const vae = new GaussianVAE({ latentDim: 16, beta: 4 }); // lambda = 2 * 0.1 * 4
 * ```
 */
export class GaussianVAE extends ImageModel {
  /** beta-VAE weight. */
  readonly beta: number;
  /** Decoder variance c. */
  readonly decoderVariance: number;

  /** Creates the networks (every option is checked first). */
  constructor(options: GaussianVAEOptions = {}) {
    const where = "GaussianVAE";
    const base = checkImageOptions(where, options, ["beta", "decoderVariance"]);
    const { beta = 1, decoderVariance = 0.1 } = options ?? {};
    checkNumber(where, "options.beta", beta, { min: 0 });
    checkNumber(where, "options.decoderVariance", decoderVariance, {
      min: 0,
      minExclusive: true,
    });
    super(where, 2, base);
    this.beta = beta;
    this.decoderVariance = decoderVariance;
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

  /**
   * The negative ELBO of a batch in the lecture's form: encode, draw one
   * z ~ q(z|x) by reparameterization, decode, and weigh the distortion
   * against the rate with lambda = 2 c beta. For `{ input, target }` the
   * encoder sees `input` and the distortion is measured against `target`.
   */
  loss(batch: ImageBatch): LossTerms {
    const { input, target } = this.checkedBatch("loss", batch);
    const { mu, logVar } = this.#split(input);
    const z = reparameterizedSample(mu, logVar, this.rng);
    const xHat = this.decoder.apply(z) as tf.Tensor2D;
    return vaeLoss(target, xHat, mu, logVar, this.lambda);
  }

  /**
   * Decodes n latents drawn from the prior N(0, I): [n, 28, 28, 1] (caller
   * disposes). Without a seed each call draws new latents from the
   * package's shared seeded stream.
   */
  sample(n: number, options: { seed?: Seed } = {}): tf.Tensor4D {
    this.alive("sample");
    const where = "GaussianVAE.sample";
    const { seed } = checkOptions(where, options, ["seed"]);
    checkInteger(where, "n", n, { min: 1 });
    checkSize(where, "n * 784", n * 784);
    const rng = checkSeed(where, "options.seed", seed);
    return tf.tidy(() =>
      (this.decoder.apply(
        randomNormal([n, this.latentDim], { seed: rng }),
      ) as tf.Tensor).reshape([n, 28, 28, 1])
    );
  }

  /**
   * Reconstruction MSE (decoding the posterior mean), the rate (mean KL per
   * image and per dimension), the number of active latent dimensions and the
   * negative ELBO in nats, averaged over `images`. The one z sample of the
   * ELBO comes from `options.seed` (default 0, on purpose the same for every
   * call: models are compared on the same noise, and evaluating does not move
   * the training noise).
   */
  evaluate(
    images: tf.Tensor,
    options: { batchSize?: number; seed?: Seed } = {},
  ): EvaluationReport {
    this.alive("evaluate");
    const where = "GaussianVAE.evaluate";
    const o = checkOptions(where, options, ["batchSize", "seed"]);
    const batchSize = checkInteger(
      where,
      "options.batchSize",
      o.batchSize ?? 1000,
      {
        min: 1,
      },
    );
    const rng = checkSeed(where, "options.seed", o.seed ?? 0);
    const x = flatImages(where, images);
    try {
      const sums = accumulate(x, batchSize, (b) => {
        const { mu, logVar } = this.#split(b);
        const meanSq = b.sub(this.decoder.apply(mu) as tf.Tensor).square()
          .sum();
        const z = reparameterizedSample(mu, logVar, rng);
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

/**
 * Corrupts images with Gaussian noise of standard deviation `std`, clipped
 * back to [0, 1] (pixel range): the input of a denoising autoencoder,
 * `trainStep(ae, optimizer, { input: addNoise(x, 0.5), target: x })`.
 *
 * @param options.seed a number or an `Rng`; without one, each call draws new noise from the package's shared seeded stream
 * @returns a new tensor of the input's shape (caller disposes)
 * @throws ArgumentError for a non-float32 tensor or a negative std
 */
export function addNoise(
  images: tf.Tensor,
  std: number,
  options: { seed?: Seed } = {},
): tf.Tensor {
  const where = "addNoise";
  const { seed } = checkOptions(where, options, ["seed"]);
  const rng = checkSeed(where, "options.seed", seed);
  checkTensor(where, "images", images, { dtype: "float32" });
  checkNumber(where, "std", std, { min: 0 });
  return tf.tidy(() =>
    images.add(randomNormal(images.shape, { std, seed: rng })).clipByValue(0, 1)
  );
}

// ---------------------------------------------------------------------------
// Linear autoencoder, PCA and principal angles

/**
 * Eigenvalues (decreasing) and unit eigenvectors (as rows) of a symmetric
 * matrix given as rows, by the shared Jacobi solver of lib/linalg.ts.
 */
function eigenDecreasing(
  matrix: number[][],
): { values: number[]; vectors: number[][] } {
  const n = matrix.length;
  const a = new Float64Array(n * n);
  // Average the two triangles: float32 round-off must not break symmetry.
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      a[i * n + j] = 0.5 * (matrix[i][j] + matrix[j][i]);
    }
  }
  const eig = jacobiEigen(a, n);
  // jacobiEigen sorts ascending with eigenvectors as columns.
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
 * ```ts
 * const { components, eigenvalues } = pca(data, 8); // top-8 directions
 * ```
 *
 * @param data [n, d] tensor or number[][] with n >= 2
 * @param k number of components, 1 <= k <= d
 * @returns plain arrays
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
    const { values, vectors } = eigenDecreasing(cov);
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
 *
 * ```ts
 * principalAngles(linearAE.basis(), pca(data, 8).components); // ~0 when trained
 * ```
 *
 * @throws ArgumentError for empty, ragged, non-finite or linearly dependent rows, or different d
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
  const { values } = eigenDecreasing(mmT);
  return values
    .map((s2) => Math.acos(Math.min(1, Math.sqrt(Math.max(0, s2)))))
    .sort((x, y) => x - y);
}

/**
 * A linear autoencoder x -> x W_e -> (x W_e) W_d on centred data [n, d],
 * trained on the mean over rows of ||x - x W_e W_d||^2. Its optimum spans
 * the same subspace as the top-k principal components (but W_e, W_d are not
 * orthonormal and not the components themselves). Follows the `Trainable`
 * contract: `trainStep(linearAE, adam(0.01), centred)`. Call `dispose()`
 * when done.
 */
export class LinearAutoencoder implements Trainable<tf.Tensor2D> {
  /** Encoder weights [d, k]. */
  readonly encoderWeights: tf.Variable;
  /** Decoder weights [k, d]: its rows span the learned subspace. */
  readonly decoderWeights: tf.Variable;

  /** Creates small random weights for a d -> k -> d linear autoencoder. */
  constructor(d: number, k: number, options: { seed?: Seed } = {}) {
    const where = "LinearAutoencoder";
    if (
      options !== null && typeof options === "object" &&
      "learningRate" in options
    ) {
      throw new ArgumentError(
        where,
        "the learning rate belongs to the optimizer now: make one with adam(0.01) and pass it to trainStep(model, optimizer, batch)",
      );
    }
    const { seed = 0 } = checkOptions(where, options, ["seed"]);
    checkInteger(where, "d", d, { min: 1 });
    checkInteger(where, "k", k, { min: 1, max: d });
    checkSize(where, "d * k", d * k);
    const rng = checkSeed(where, "options.seed", seed);
    const std = 1 / Math.sqrt(d);
    [this.encoderWeights, this.decoderWeights] = tf.tidy(() => [
      tf.variable(randomNormal([d, k], { std, seed: rng })),
      tf.variable(randomNormal([k, d], { std, seed: rng })),
    ]);
  }

  /** The two weight matrices. */
  trainableVariables(): tf.Variable[] {
    return [this.encoderWeights, this.decoderWeights];
  }

  /** The mean over the rows of centred data [n, d] of ||x - x W_e W_d||^2. */
  loss(centred: tf.Tensor2D): LossTerms {
    this.#checkCentred("LinearAutoencoder.loss", centred);
    const code = tf.matMul(centred, this.encoderWeights); // [n, k]
    const reconstruction = tf.matMul(code, this.decoderWeights); // [n, d]
    const squaredError = centred.sub(reconstruction).square().sum(1); // [n]
    return { total: squaredError.mean() as tf.Scalar };
  }

  #checkCentred(where: string, centred: unknown): void {
    const t = checkTensor(where, "centred", centred, {
      shape: [null, this.encoderWeights.shape[0]],
      dtype: "float32",
    });
    // A mean over zero rows is not a loss (wasm even returns uninitialised memory).
    if (t.shape[0] === 0) {
      throw new ArgumentError(
        where,
        "centred must have at least one row, got 0",
      );
    }
    checkFinite(where, "centred", t);
  }

  /** The rows of W_d as plain arrays [k][d]: a (non-orthonormal) basis of the learned subspace. */
  basis(): number[][] {
    return this.decoderWeights.arraySync() as number[][];
  }

  /** Frees the weights. */
  dispose(): void {
    this.encoderWeights.dispose();
    this.decoderWeights.dispose();
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

/** The estimators of d/d(mu, log sigma) E_{z ~ N(mu, sigma^2)} f(z). */
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

/** One-sample estimate of d/d(mu, log sigma) E f(z), z = mu + sigma eps. */
function gradientSample(
  estimator: GradientEstimator,
  { f, df }: ScalarObjective,
  mu: number,
  sigma: number,
  baseline: number,
  rng: Rng,
): [number, number] {
  const eps = rng.normal();
  const z = mu + sigma * eps;
  if (estimator === "reparameterization") {
    // Pathwise: the chain rule through z, dz/dmu = 1, dz/dlog sigma = sigma eps.
    const g = df(z);
    return [g, g * sigma * eps];
  }
  // Score function: (f(z) - b) * d log q(z) / d(mu, log sigma).
  const w = f(z) - baseline;
  return [w * eps / sigma, w * (eps * eps - 1)];
}

/**
 * Monte-Carlo estimates of the gradient of `E_{z ~ N(mu, sigma^2)} f(z)`
 * with respect to mu and log sigma, `trials` times:
 * - "reparameterization": z = mu + sigma eps, gradient f'(z) * (1, sigma eps);
 * - "score-function" (REINFORCE): f(z) * d log q(z) = f(z) * ((z - mu)/sigma^2, (z - mu)^2/sigma^2 - 1);
 * - "score-function-baseline": the same with f(z) - f(mu) (a constant baseline: still unbiased, less variance).
 * All three are unbiased; their variances differ (float64 JavaScript).
 *
 * ```ts
 * const toy = { f: (z: number) => (z - 2) ** 2, df: (z: number) => 2 * (z - 2) };
 * gaussianGradientEstimates("score-function", toy, { mu: 0.5, logSigma: 0 }).mean.dMu; // ~ -3
 * ```
 *
 * @returns plain numbers
 * @throws ArgumentError for an unknown estimator, a bad objective or options
 */
export function gaussianGradientEstimates(
  estimator: GradientEstimator,
  objective: ScalarObjective,
  options: GaussianGradientOptions,
): GradientEstimates {
  return gradientEstimates(
    "gaussianGradientEstimates",
    estimator,
    objective,
    options,
  );
}

/**
 * `gaussianGradientEstimates` with the name of the function the user
 * called in its errors (lib/course/02_gaussian_vae compares estimators).
 *
 * @internal
 */
export function gradientEstimates(
  where: string,
  estimator: GradientEstimator,
  objective: ScalarObjective,
  options: GaussianGradientOptions,
): GradientEstimates {
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
  if (options === undefined) {
    throw new ArgumentError(
      where,
      "options must be an object with mu and logSigma",
    );
  }
  const o = checkOptions(where, options, [
    "mu",
    "logSigma",
    "samples",
    "trials",
    "seed",
  ]);
  const mu = checkNumber(where, "options.mu", o.mu);
  const logSigma = checkNumber(where, "options.logSigma", o.logSigma, {
    min: -20,
    max: 20,
  });
  const samples = checkInteger(where, "options.samples", o.samples ?? 1, {
    min: 1,
  });
  const trials = checkInteger(where, "options.trials", o.trials ?? 1000, {
    min: 2,
  });
  checkSize(where, "samples * trials", samples * trials);
  const rng = checkSeed(where, "options.seed", o.seed ?? 0);
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
      const [a, b] = gradientSample(
        estimator,
        objective,
        mu,
        sigma,
        baseline,
        rng,
      );
      gm += a;
      gs += b;
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
