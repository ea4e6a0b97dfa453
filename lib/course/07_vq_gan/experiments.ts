/**
 * Helpers of notebook 07 only: a copy of a trained VQ-VAE (the common start
 * of the VQ-VAE and VQ-GAN branches), the sharpness of images (energy of a
 * Laplacian filter), the scores of a set of reconstructions (MSE,
 * sharpness, Frechet distance in classifier features), code grids in
 * batches, and rates of code grids.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkInteger,
  checkOptions,
  checkTensor,
} from "../../validate.ts";
import { modelWeights, setModelWeights } from "../../nn.ts";
import { codeUsage, VQVAE, type VQVAEOptions } from "../../vqvae.ts";
import { classifierFeatures } from "../../classifier.ts";
import { frechetDistance } from "../../metrics.ts";

/**
 * A new VQ-VAE with the same options and a copy of `source`'s encoder,
 * decoder and codebook (ready to train further; `source` is unchanged).
 */
export function copyVQVAE(source: VQVAE, options: VQVAEOptions): VQVAE {
  if (!(source instanceof VQVAE)) {
    throw new ArgumentError("copyVQVAE", "source must be a VQVAE");
  }
  const copy = new VQVAE(options);
  setModelWeights(copy.encoder, modelWeights(source.encoder));
  setModelWeights(copy.decoder, modelWeights(source.decoder));
  copy.quantizer.codebook.assign(source.quantizer.codebook);
  copy.quantizer.initialized = true;
  copy.steps = source.steps;
  return copy;
}

/** The 3x3 Laplacian: the second difference in both directions. */
const LAPLACIAN = [[0, 1, 0], [1, -4, 1], [0, 1, 0]];

/**
 * The high-frequency energy of each image [n, h, w, 1]: the mean square of
 * its Laplacian-filtered version (valid positions). Blur lowers it, edges
 * and texture raise it. Plain numbers, one per image.
 */
export function laplacianEnergy(images: tf.Tensor4D): number[] {
  checkTensor("laplacianEnergy", "images", images, {
    rank: 4,
    dtype: "float32",
  });
  return tf.tidy(() => {
    const kernel = tf.tensor4d(LAPLACIAN.flat(), [3, 3, 1, 1]);
    const response = tf.conv2d(images, kernel, 1, "valid");
    return Array.from(response.square().mean([1, 2, 3]).dataSync());
  });
}

/** The mean of a list of numbers. */
export function mean(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return s / values.length;
}

/** What `reconstructionScores` returns: plain numbers. */
export interface ReconstructionScores {
  /** Mean squared pixel error. */
  mse: number;
  /** Mean Laplacian energy of the reconstructions over that of the originals (1: as sharp). */
  sharpness: number;
  /** Frechet distance between classifier features of the reconstructions and of the originals. */
  frechet: number;
}

/**
 * Scores reconstructions `xhat` of `images`: MSE, the sharpness ratio
 * (`laplacianEnergy`) and the Frechet distance of their classifier features
 * to the originals' (`classifierFeatures`, `frechetDistance`).
 */
export function reconstructionScores(
  classifier: tf.LayersModel,
  images: tf.Tensor4D,
  xhat: tf.Tensor4D,
): ReconstructionScores {
  checkTensor("reconstructionScores", "xhat", xhat, { shape: images.shape });
  const mse = tf.tidy(() => xhat.sub(images).square().mean().dataSync()[0]);
  const sharpness = mean(laplacianEnergy(xhat)) /
    mean(laplacianEnergy(images));
  const [fa, fb] = [
    classifierFeatures(classifier, images),
    classifierFeatures(classifier, xhat.clipByValue(0, 1) as tf.Tensor4D),
  ];
  try {
    return { mse, sharpness, frechet: frechetDistance(fa, fb) };
  } finally {
    tf.dispose([fa, fb]);
  }
}

/** Reconstructions of `images` by a VQ-VAE, in batches (caller disposes). */
export function reconstructAll(
  model: VQVAE,
  images: tf.Tensor4D,
  options: { batchSize?: number } = {},
): tf.Tensor4D {
  const { batchSize = 500 } = checkOptions("reconstructAll", options, [
    "batchSize",
  ]);
  checkInteger("reconstructAll", "batchSize", batchSize, { min: 1 });
  const parts: tf.Tensor4D[] = [];
  const n = images.shape[0];
  for (let s = 0; s < n; s += batchSize) {
    const size = Math.min(batchSize, n - s);
    parts.push(
      tf.tidy(() =>
        model.reconstruct(images.slice([s, 0, 0, 0], [size, 28, 28, 1]))
      ),
    );
  }
  const out = tf.concat(parts) as tf.Tensor4D;
  tf.dispose(parts);
  return out;
}

/**
 * Code grids of the first `limit` images (default all) as token sequences
 * int32 [n, 49] in raster order, encoded in batches (caller disposes).
 */
export function tokensOf(
  model: VQVAE,
  images: tf.Tensor4D,
  options: { limit?: number; batchSize?: number } = {},
): tf.Tensor2D {
  const where = "tokensOf";
  const { limit = images.shape[0], batchSize = 500 } = checkOptions(
    where,
    options,
    ["limit", "batchSize"],
  );
  checkInteger(where, "limit", limit, { min: 1 });
  const n = Math.min(limit, images.shape[0]);
  const parts: tf.Tensor[] = [];
  for (let s = 0; s < n; s += batchSize) {
    const size = Math.min(batchSize, n - s);
    parts.push(
      tf.tidy(() =>
        model.codes(images.slice([s, 0, 0, 0], [size, 28, 28, 1])).reshape([
          size,
          -1,
        ])
      ),
    );
  }
  const out = tf.concat(parts) as tf.Tensor2D;
  tf.dispose(parts);
  return out;
}

/**
 * Bits per image of code grids under an independent model that draws every
 * position from the codes' pooled histogram (entropy in bits times the
 * positions per grid), and the uniform bound positions * log2 K.
 */
export function independentBits(
  codes: tf.Tensor,
  numCodes: number,
): { bits: number; bound: number; perplexity: number } {
  const positions = tf.util.sizeFromShape(codes.shape.slice(1));
  const { perplexity } = codeUsage(codes, numCodes);
  return {
    bits: positions * Math.log2(perplexity),
    bound: positions * Math.log2(numCodes),
    perplexity,
  };
}
