/**
 * The pieces VQ-GAN adds to a VQ-VAE (Esser, Rombach and Ommer, 2021):
 *
 * - a **perceptual loss**: the distance between the features a frozen network
 *   computes for x and for its reconstruction, so the decoder is judged by
 *   what a classifier sees rather than pixel by pixel;
 * - a **patch discriminator**: a small convolutional net whose output is a
 *   grid of logits, one per overlapping patch, so it judges local texture;
 * - the **hinge losses** of the discriminator and the generator;
 * - the **adaptive weight** that balances the adversarial term against the
 *   reconstruction term at the decoder's last layer:
 *   lambda = ||grad_L L_rec|| / (||grad_L L_GAN|| + delta).
 *
 * `VQGAN` composes them with a `VQVAE` (its encoder, quantizer and decoder)
 * and gives each player its objective as a `Trainable`: the generator's
 * (reconstruction + perceptual + codebook/commitment + lambda * GAN) and the
 * discriminator's (hinge loss on real images and reconstructions). Both
 * train with the one `trainStep`:
 *
 * ```ts
 * const vqgan = new VQGAN({ vqvae, features: layerFeatures(classifier, ["classifier_conv1"]) });
 * const [g, d] = [vqgan.generatorObjective(), vqgan.discriminatorObjective()];
 * const gOptimizer = { networks: adam(2e-4), codebook: adam(2e-4) };
 * const dOptimizer = adam(2e-4, 0.5);
 * tf.tidy(() => {
 *   const x = sampler.next();
 *   trainStep(d, dOptimizer, x); // D: real vs reconstructions
 *   trainStep(g, gOptimizer, x); // encoder, codebook, decoder
 * });
 * ```
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
} from "./validate.ts";
import { stopGradient } from "./autodiff.ts";
import type { LossTerms, Trainable } from "./model.ts";
import { trainableVariables } from "./nn.ts";
import type { VQVAE } from "./vqvae.ts";

/**
 * Freezes a network: its weights become non-trainable, so no optimizer
 * step, and no `trainStep` of a model that uses it, ever moves them.
 * Returns the same model.
 */
export function freeze<M extends tf.LayersModel>(model: M): M {
  if (!(model instanceof tf.LayersModel)) {
    throw new ArgumentError("freeze", "model must be a tf.LayersModel");
  }
  model.trainable = false;
  return model;
}

/**
 * Perceptual loss: mean over feature maps of the mean squared difference
 * between features(x) and features(xhat). `features` is a frozen network
 * (see `freeze`) returning one tensor or several (one per layer).
 */
export function perceptualLoss(
  features: (images: tf.Tensor) => tf.Tensor | tf.Tensor[],
  x: tf.Tensor,
  xhat: tf.Tensor,
): tf.Scalar {
  const where = "perceptualLoss";
  if (typeof features !== "function") {
    throw new ArgumentError(
      where,
      "features must be a function images -> feature tensor(s)",
    );
  }
  checkTensor(where, "x", x, { minRank: 1, dtype: "float32" });
  checkTensor(where, "xhat", xhat, { shape: x.shape, dtype: "float32" });
  return tf.tidy(() => perceptualCore(features, x, xhat));
}

function perceptualCore(
  features: (images: tf.Tensor) => tf.Tensor | tf.Tensor[],
  x: tf.Tensor,
  xhat: tf.Tensor,
): tf.Scalar {
  const list = (t: tf.Tensor | tf.Tensor[]) => (Array.isArray(t) ? t : [t]);
  const [fx, fxhat] = [list(features(x)), list(features(xhat))];
  const perLayer = fx.map((f, i) => f.sub(fxhat[i]).square().mean());
  return tf.addN(perLayer).div(perLayer.length) as tf.Scalar;
}

/** Options of `patchDiscriminator28`. */
export interface PatchDiscriminatorOptions {
  /** Channels of the two stride-2 convolutions (default [32, 64]). */
  channels?: [number, number];
  /** Seed of the initial weights (default 0). */
  seed?: number;
}

/**
 * A patch discriminator for 28x28x1 images: two 4x4 stride-2 convolutions
 * (28 -> 14 -> 7) with leaky ReLU, then a 3x3 convolution to one channel.
 * Output [n, 7, 7, 1]: one logit per overlapping patch of the input (each
 * sees an 18x18 receptive field), not one per image.
 */
export function patchDiscriminator28(
  options: PatchDiscriminatorOptions = {},
): tf.Sequential {
  const where = "patchDiscriminator28";
  const { channels = [32, 64], seed = 0 } = checkOptions(where, options, [
    "channels",
    "seed",
  ]);
  if (!Array.isArray(channels) || channels.length !== 2) {
    throw new ArgumentError(
      where,
      `channels must be two positive integers, got ${channels}`,
    );
  }
  channels.forEach((c, i) =>
    checkInteger(where, `channels[${i}]`, c, { min: 1 })
  );
  checkNumber(where, "seed", seed);
  const init = (i: number) =>
    tf.initializers.glorotUniform({ seed: seed * 1000 + 700 + i });
  const conv = (
    filters: number,
    kernelSize: number,
    strides: number,
    i: number,
  ) =>
    tf.layers.conv2d({
      filters,
      kernelSize,
      strides,
      padding: "same",
      kernelInitializer: init(i),
      name: `patch_d_conv${i}`,
      ...(i === 1 ? { inputShape: [28, 28, 1] } : {}),
    });
  return tf.sequential({
    name: "patch_discriminator",
    layers: [
      conv(channels[0], 4, 2, 1),
      tf.layers.leakyReLU({ alpha: 0.2, name: "patch_d_act1" }),
      conv(channels[1], 4, 2, 2),
      tf.layers.leakyReLU({ alpha: 0.2, name: "patch_d_act2" }),
      conv(1, 3, 1, 3),
    ],
  });
}

/**
 * The hinge loss of the discriminator on real and fake logits (any shape,
 * e.g. per-patch): mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))). It is zero
 * once real logits exceed 1 and fake logits are below -1: D stops pushing
 * examples it already classifies with margin.
 */
export function hingeDiscriminatorLoss(
  realLogits: tf.Tensor,
  fakeLogits: tf.Tensor,
): tf.Scalar {
  checkTensor("hingeDiscriminatorLoss", "realLogits", realLogits, {
    dtype: "float32",
  });
  checkTensor("hingeDiscriminatorLoss", "fakeLogits", fakeLogits, {
    dtype: "float32",
  });
  return tf.tidy(() => hingeD(realLogits, fakeLogits));
}

/** The generator's hinge loss: -mean(D(G(z))), raise the fake logits. */
export function hingeGeneratorLoss(fakeLogits: tf.Tensor): tf.Scalar {
  checkTensor("hingeGeneratorLoss", "fakeLogits", fakeLogits, {
    dtype: "float32",
  });
  return tf.tidy(() => hingeG(fakeLogits));
}

/**
 * The adaptive weight of the adversarial term, from the gradients of the
 * reconstruction loss and of the GAN loss with respect to the decoder's last
 * layer L: lambda = ||grad_L L_rec|| / (||grad_L L_GAN|| + delta), clipped to
 * [0, 1e4]. The adversarial gradient at L is then as large as the
 * reconstruction gradient, whatever the two losses' scales. A plain number
 * (a constant in the loss: no gradient flows through it).
 */
export function adaptiveWeight(
  gradRec: tf.Tensor,
  gradGan: tf.Tensor,
  options: { delta?: number } = {},
): number {
  const where = "adaptiveWeight";
  const { delta = 1e-4 } = checkOptions(where, options, ["delta"]);
  checkTensor(where, "gradRec", gradRec, { dtype: "float32" });
  checkTensor(where, "gradGan", gradGan, {
    shape: gradRec.shape,
    dtype: "float32",
  });
  checkNumber(where, "delta", delta, { min: 0, minExclusive: true });
  checkFinite(where, "gradRec", gradRec);
  checkFinite(where, "gradGan", gradGan);
  const [rec, gan] = tf.tidy(
    () => [tf.norm(gradRec).dataSync()[0], tf.norm(gradGan).dataSync()[0]],
  );
  return Math.min(Math.max(rec / (gan + delta), 0), 1e4);
}

/**
 * Gradients of several losses with respect to one variable (e.g. the
 * decoder's last-layer kernel), each from its own backward pass: what
 * `adaptiveWeight` compares. Returns new tensors the caller disposes.
 */
export function gradientsAt(
  losses: Record<string, () => tf.Scalar>,
  variable: tf.Variable,
): Record<string, tf.Tensor> {
  const where = "gradientsAt";
  if (!(variable instanceof tf.Variable)) {
    throw new ArgumentError(where, "variable must be a tf.Variable");
  }
  if (losses === null || typeof losses !== "object") {
    throw new ArgumentError(
      where,
      `losses must be a record of functions { name: () => scalar }, got ${losses}`,
    );
  }
  const out: Record<string, tf.Tensor> = {};
  try {
    for (const [name, f] of Object.entries(losses)) {
      if (typeof f !== "function") {
        throw new ArgumentError(
          where,
          `losses.${name} must be a function () => scalar`,
        );
      }
      out[name] = tf.tidy(() => {
        const { grads } = tf.variableGrads(() => {
          const loss = f();
          if (!(loss instanceof tf.Tensor) || loss.rank !== 0) {
            throw new ArgumentError(
              where,
              `losses.${name}() must return a scalar tf.Tensor, got ${
                loss instanceof tf.Tensor ? `shape [${loss.shape}]` : loss
              }`,
            );
          }
          return loss;
        }, [variable]);
        return grads[variable.name] ?? tf.zerosLike(variable);
      });
    }
  } catch (e) {
    tf.dispose(Object.values(out));
    throw e;
  }
  return out;
}

/**
 * A frozen feature extractor from a layers model: the outputs of the named
 * layers for a batch of images, one tensor per layer (what
 * `perceptualLoss` compares). The model is frozen (`freeze`), so a loss
 * through these features never moves its weights. The extractor shares the
 * model's weights; dispose the model, not the extractor.
 *
 * @example
 * const features = layerFeatures(classifier, ["classifier_conv1", "classifier_conv2"]);
 * perceptualLoss(features, x, xhat);
 */
export function layerFeatures(
  model: tf.LayersModel,
  layerNames: string[],
): (images: tf.Tensor) => tf.Tensor[] {
  const where = "layerFeatures";
  if (!(model instanceof tf.LayersModel)) {
    throw new ArgumentError(where, "model must be a tf.LayersModel");
  }
  if (!Array.isArray(layerNames) || layerNames.length === 0) {
    throw new ArgumentError(
      where,
      "layerNames must be a non-empty array of layer names",
    );
  }
  const known = model.layers.map((l) => l.name);
  const outputs = layerNames.map((name) => {
    if (!known.includes(name)) {
      throw new ArgumentError(
        where,
        `model has no layer ${
          JSON.stringify(name)
        } (in layerNames); its layers are ${known.join(", ")}`,
      );
    }
    return model.getLayer(name).output as tf.SymbolicTensor;
  });
  freeze(model);
  const extractor = tf.model({ inputs: model.inputs, outputs });
  return (images) => {
    const out = extractor.apply(images);
    return Array.isArray(out) ? out as tf.Tensor[] : [out as tf.Tensor];
  };
}

/** Options of `VQGAN`. */
export interface VQGANOptions {
  /** The VQ-VAE whose encoder, quantizer and decoder become the generator (the VQGAN owns it). */
  vqvae: VQVAE;
  /** Discriminator images -> logits (any shape, e.g. per patch); default `patchDiscriminator28({ seed })`. Owned. */
  discriminator?: tf.LayersModel;
  /** Frozen perceptual features (`layerFeatures`); without them the perceptual term is left out. Not owned. */
  features?: (images: tf.Tensor) => tf.Tensor | tf.Tensor[];
  /** Weight of the perceptual term in the reconstruction loss (default 1; needs `features`). */
  perceptualWeight?: number;
  /** Factor on the adaptive weight lambda (taming's disc_weight; default 1; 0 turns the GAN term off). */
  discWeight?: number;
  /** delta of the adaptive weight (default 1e-4). */
  delta?: number;
  /** Seed of the default discriminator (default 0). */
  seed?: number;
}

/** The resolved numeric options of a `VQGAN`. */
export interface VQGANConfig {
  /** Weight of the perceptual term. */
  perceptualWeight: number;
  /** Factor on lambda. */
  discWeight: number;
  /** delta of the adaptive weight. */
  delta: number;
}

/**
 * The reconstruction loss the adaptive weight balances against the GAN
 * term: mean squared error plus the weighted perceptual loss.
 */
function reconstructionTerms(
  gan: VQGAN,
  x: tf.Tensor,
  xhat: tf.Tensor,
  features = gan.features,
): { mse: tf.Scalar; perceptual: tf.Scalar; total: tf.Scalar } {
  const mse = xhat.sub(x).square().mean() as tf.Scalar;
  const { config } = gan;
  const perceptual = features && config.perceptualWeight > 0
    ? perceptualCore(features, x, xhat)
    : tf.scalar(0);
  const total = mse.add(perceptual.mul(config.perceptualWeight)) as tf.Scalar;
  return { mse, perceptual, total };
}

/**
 * lambda at the decoder's last layer: the gradients of the reconstruction
 * loss and of the GAN loss with respect to its kernel, each from its own
 * backward pass through that layer alone (its input `a` held constant).
 */
function lambdaAtLastLayer(
  gan: VQGAN,
  x: tf.Tensor,
  a: tf.Tensor,
  features = gan.features,
): number {
  const last = gan.lastLayer;
  const held = stopGradient(a);
  const xhat = () => last.apply(held) as tf.Tensor;
  const grads = gradientsAt({
    rec: () => reconstructionTerms(gan, x, xhat(), features).total,
    gan: () => hingeG(gan.discriminator.apply(xhat()) as tf.Tensor),
  }, gan.lastKernel);
  try {
    const { discWeight, delta } = gan.config;
    return discWeight * adaptiveWeight(grads.rec, grads.gan, { delta });
  } finally {
    tf.dispose(Object.values(grads));
  }
}

/** `features`, computing the target's features once: they are the same in every term of a step. */
function featuresOfTarget(
  features: VQGAN["features"],
  x: tf.Tensor,
): VQGAN["features"] {
  if (!features) return features;
  let cached: tf.Tensor | tf.Tensor[] | null = null;
  return (images) =>
    images === x ? (cached ??= features(images)) : features(images);
}

/**
 * The generator's loss: reconstruction (MSE + perceptual) + codebook +
 * beta * commitment + lambda * hinge GAN loss, lambda from the gradients at
 * the decoder's last layer (0 while `adversarial` is false: the warm-up).
 */
function vqganGeneratorLoss(
  gan: VQGAN,
  x: tf.Tensor4D,
  adversarial: boolean,
): LossTerms {
  const { encoder, quantizer } = gan.vqvae;
  const h = encoder.apply(x) as tf.Tensor4D;
  const vq = quantizer.forward(h, { skipFiniteCheck: true });
  const a = gan.decoderTrunk.apply(vq.quantized) as tf.Tensor;
  const xhat = gan.lastLayer.apply(a) as tf.Tensor;
  const features = featuresOfTarget(gan.features, x);
  const rec = reconstructionTerms(gan, x, xhat, features);
  const ganLoss = hingeG(gan.discriminator.apply(xhat) as tf.Tensor);
  const lambda = adversarial && gan.config.discWeight > 0
    ? lambdaAtLastLayer(gan, x, a, features)
    : 0;
  const total = rec.total.add(vq.loss).add(ganLoss.mul(lambda)) as tf.Scalar;
  return {
    total,
    terms: {
      recon: rec.mse,
      perceptual: rec.perceptual,
      codebook: vq.codebookLoss,
      commitment: vq.commitmentLoss,
      gan: ganLoss,
      lambda: tf.scalar(lambda),
    },
    saved: { h, indices: vq.indices },
  };
}

/**
 * The discriminator's loss: hinge loss of D's logits on the real images and
 * on their reconstructions, which enter as constants (the generator is
 * frozen for this step).
 */
function vqganDiscriminatorLoss(gan: VQGAN, x: tf.Tensor4D): LossTerms {
  const { encoder, quantizer, decoder } = gan.vqvae;
  const h = encoder.apply(x) as tf.Tensor4D;
  const q = quantizer.forward(h, { skipFiniteCheck: true }).quantized;
  const xhat = stopGradient(decoder.apply(q) as tf.Tensor);
  const real = gan.discriminator.apply(x) as tf.Tensor;
  const fake = gan.discriminator.apply(xhat) as tf.Tensor;
  return {
    total: hingeD(real, fake),
    terms: { dReal: real.mean() as tf.Scalar, dFake: fake.mean() as tf.Scalar },
  };
}

/** D's hinge loss: zero once real logits exceed 1 and fake ones are below -1. */
function hingeD(realLogits: tf.Tensor, fakeLogits: tf.Tensor): tf.Scalar {
  return tf.relu(tf.sub(1, realLogits)).mean().add(
    tf.relu(tf.add(1, fakeLogits)).mean(),
  ) as tf.Scalar;
}

/** G's hinge loss: raise D's logits on the fakes, with no margin. */
function hingeG(fakeLogits: tf.Tensor): tf.Scalar {
  return fakeLogits.mean().neg() as tf.Scalar;
}

/**
 * A VQ-GAN (Esser, Rombach and Ommer 2021) as a composition: the encoder,
 * quantizer and decoder of a `VQVAE` are the generator, a discriminator
 * judges images patch by patch, and a frozen network's features give the
 * perceptual loss. Each player's objective is a `Trainable` for the one
 * `trainStep`: `generatorObjective()` (groups `networks` and `codebook`, as
 * the VQ-VAE's) and `discriminatorObjective()` (D's variables only).
 * Owns the VQ-VAE and the discriminator: `dispose()` frees both.
 */
export class VQGAN {
  /** The encoder, quantizer and decoder. */
  readonly vqvae: VQVAE;
  /** Images -> logits (per patch). */
  readonly discriminator: tf.LayersModel;
  /** The frozen perceptual features, if any. */
  readonly features?: (images: tf.Tensor) => tf.Tensor | tf.Tensor[];
  /** The resolved weights. */
  readonly config: VQGANConfig;
  /** Every decoder layer but the last: quantized grid -> the last layer's input. */
  readonly decoderTrunk: tf.LayersModel;
  /** The decoder's last layer, where the adaptive weight compares the gradients. */
  readonly lastLayer: tf.layers.Layer;
  /** The kernel of the last layer. */
  readonly lastKernel: tf.Variable;

  /** Builds a VQ-GAN around a VQ-VAE; see `VQGANOptions`. Everything is checked before anything is built. */
  constructor(options: VQGANOptions) {
    const where = "VQGAN";
    if (options === null || typeof options !== "object") {
      throw new ArgumentError(where, "options must be an object with vqvae");
    }
    const o = checkOptions(where, options, [
      "vqvae",
      "discriminator",
      "features",
      "perceptualWeight",
      "discWeight",
      "delta",
      "seed",
    ]);
    const vqvae = o.vqvae;
    if (
      vqvae === null || typeof vqvae !== "object" ||
      !(vqvae.encoder instanceof tf.LayersModel) ||
      !(vqvae.decoder instanceof tf.LayersModel) || !vqvae.quantizer
    ) {
      throw new ArgumentError(where, "vqvae must be a VQVAE");
    }
    if (
      o.discriminator !== undefined &&
      !(o.discriminator instanceof tf.LayersModel)
    ) {
      throw new ArgumentError(where, "discriminator must be a tf.LayersModel");
    }
    if (o.features !== undefined && typeof o.features !== "function") {
      throw new ArgumentError(
        where,
        "features must be a function images -> feature tensor(s), e.g. layerFeatures(classifier, [...])",
      );
    }
    const perceptualWeight = checkNumber(
      where,
      "perceptualWeight",
      o.perceptualWeight ?? 1,
      { min: 0 },
    );
    const discWeight = checkNumber(where, "discWeight", o.discWeight ?? 1, {
      min: 0,
    });
    const delta = checkNumber(where, "delta", o.delta ?? 1e-4, {
      min: 0,
      minExclusive: true,
    });
    const seed = checkNumber(where, "seed", o.seed ?? 0);
    const decoder = vqvae.decoder;
    const lastLayer = decoder.layers[decoder.layers.length - 1];
    const kernel = lastLayer?.trainableWeights[0];
    if (!kernel || Array.isArray(lastLayer.input)) {
      throw new ArgumentError(
        where,
        "the decoder's last layer must have one input and a trainable kernel (the adaptive weight is measured there)",
      );
    }
    this.vqvae = vqvae;
    this.features = o.features;
    this.config = { perceptualWeight, discWeight, delta };
    this.lastLayer = lastLayer;
    this.lastKernel = kernel.read() as tf.Variable;
    this.decoderTrunk = tf.model({
      inputs: decoder.inputs,
      outputs: lastLayer.input as tf.SymbolicTensor,
    });
    this.discriminator = o.discriminator ?? patchDiscriminator28({ seed });
  }

  /**
   * The generator's objective: encoder, codebook and decoder (the VQ-VAE's
   * groups `networks` and `codebook`) against reconstruction + perceptual +
   * codebook/commitment + lambda * GAN (`vqganGeneratorLoss`). With
   * `adversarial: false` the GAN term is off (lambda = 0): the warm-up
   * before D is switched on. Its `afterStep` is the VQ-VAE's (EMA,
   * dead-code restarts, code usage).
   */
  generatorObjective(
    options: { adversarial?: boolean } = {},
  ): Trainable<tf.Tensor4D> {
    const where = "VQGAN.generatorObjective";
    const { adversarial = true } = checkOptions(where, options, [
      "adversarial",
    ]);
    if (typeof adversarial !== "boolean") {
      throw new ArgumentError(where, "adversarial must be true or false");
    }
    return {
      trainableVariables: () => this.vqvae.trainableVariables(),
      loss: (x: tf.Tensor4D) => {
        this.#checkBatch("VQGAN.generatorObjective.loss", x);
        return vqganGeneratorLoss(this, x, adversarial);
      },
      afterStep: (x, saved) => this.vqvae.afterStep(x, saved),
    };
  }

  /**
   * The discriminator's objective: D's variables only, against the hinge
   * loss on real images and their reconstructions (`vqganDiscriminatorLoss`).
   * Terms: the mean real and fake logits.
   */
  discriminatorObjective(): Trainable<tf.Tensor4D> {
    return {
      trainableVariables: () => trainableVariables(this.discriminator),
      loss: (x: tf.Tensor4D) => {
        this.#checkBatch("VQGAN.discriminatorObjective.loss", x);
        return vqganDiscriminatorLoss(this, x);
      },
    };
  }

  /**
   * lambda for a batch, as the generator's objective computes it (a plain
   * number: discWeight * ||grad rec|| / (||grad GAN|| + delta) at the
   * decoder's last layer).
   */
  adaptiveWeight(images: tf.Tensor4D): number {
    this.#checkBatch("VQGAN.adaptiveWeight", images);
    const a = tf.tidy(() => {
      const { encoder, quantizer } = this.vqvae;
      const h = encoder.apply(images) as tf.Tensor4D;
      const q = quantizer.forward(h, { skipFiniteCheck: true }).quantized;
      return this.decoderTrunk.apply(q) as tf.Tensor;
    });
    try {
      return lambdaAtLastLayer(this, images, a);
    } finally {
      a.dispose();
    }
  }

  #checkBatch(where: string, x: unknown): void {
    checkTensor(where, "images", x, {
      shape: [null, ...this.vqvae.imageShape],
      dtype: "float32",
    });
    const t = x as tf.Tensor4D;
    if (t.shape[0] === 0) {
      throw new ArgumentError(where, "images is an empty batch (0 images)");
    }
    checkFinite(where, "images", t);
    if (!this.vqvae.quantizer.initialized) {
      throw new ArgumentError(
        where,
        "the codebook is not initialised: call vqvae.initCodebook(firstBatch) first",
      );
    }
  }

  /** Frees the VQ-VAE and the discriminator (not the perceptual network). */
  dispose(): void {
    this.vqvae.dispose();
    this.discriminator.dispose();
  }
}
