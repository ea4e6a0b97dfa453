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
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkInteger,
  checkNumber,
  checkOptions,
  checkTensor,
} from "./validate.ts";

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
  return tf.tidy(() =>
    tf.relu(tf.sub(1, realLogits)).mean().add(
      tf.relu(tf.add(1, fakeLogits)).mean(),
    ) as tf.Scalar
  );
}

/** The generator's hinge loss: -mean(D(G(z))), raise the fake logits. */
export function hingeGeneratorLoss(fakeLogits: tf.Tensor): tf.Scalar {
  checkTensor("hingeGeneratorLoss", "fakeLogits", fakeLogits, {
    dtype: "float32",
  });
  return tf.tidy(() => fakeLogits.mean().neg() as tf.Scalar);
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
  { delta = 1e-4 }: { delta?: number } = {},
): number {
  const where = "adaptiveWeight";
  checkTensor(where, "gradRec", gradRec, { dtype: "float32" });
  checkTensor(where, "gradGan", gradGan, {
    shape: gradRec.shape,
    dtype: "float32",
  });
  checkNumber(where, "delta", delta, { min: 0, minExclusive: true });
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
        const { grads } = tf.variableGrads(f, [variable]);
        return grads[variable.name] ?? tf.zerosLike(variable);
      });
    }
  } catch (e) {
    tf.dispose(Object.values(out));
    throw e;
  }
  return out;
}
