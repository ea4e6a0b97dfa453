/**
 * The charts of notebook 07 (VQ-GAN): each takes plain results (tensors it
 * does not dispose, or numbers) and returns one `Chart` from `plot.ts`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  bars,
  type Chart,
  type HistoryLike,
  imageGrid,
  row,
  trainingCurves,
} from "../../plot.ts";
import { ArgumentError, checkOptions } from "../../validate.ts";
import type { ReconstructionScores } from "./experiments.ts";

/** The absolute Laplacian response of images, scaled for display (new tensor). */
function laplacianMagnitude(images: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const kernel = tf.tensor4d([0, 1, 0, 1, -4, 1, 0, 1, 0], [3, 3, 1, 1]);
    return tf.conv2d(images.clipByValue(0, 1) as tf.Tensor4D, kernel, 1, "same")
      .abs()
      .div(2).clipByValue(0, 1) as tf.Tensor4D;
  });
}

/**
 * Rows of images and, under them, their Laplacian magnitudes (the
 * high-frequency content a blurred image lacks): the originals first, then
 * each named set of reconstructions of the same images.
 */
export function sharpnessFigure(
  originals: tf.Tensor4D,
  reconstructions: Record<string, tf.Tensor4D>,
  options: { title: string },
): Chart {
  const { title } = checkOptions("sharpnessFigure", options, ["title"]);
  const sets: Record<string, tf.Tensor4D> = {
    original: originals,
    ...reconstructions,
  };
  const n = originals.shape[0];
  const tiles = tf.tidy(() =>
    tf.concat(
      Object.values(sets).flatMap((x) => [
        x.clipByValue(0, 1),
        laplacianMagnitude(x),
      ]),
    )
  );
  const labels = Object.keys(sets).flatMap((name) => [
    ...Array(n).fill(name),
    ...Array(n).fill(`|Δ ${name}|`),
  ]);
  try {
    return imageGrid(tiles, {
      title,
      subtitle:
        "each set of images, then the magnitude of its Laplacian (edges and texture)",
      cols: n,
      labels,
    });
  } finally {
    tiles.dispose();
  }
}

/** Three panels of bars: MSE, sharpness (Laplacian energy ratio) and Frechet distance per model. */
export function comparisonFigure(
  scores: Record<string, ReconstructionScores>,
): Chart {
  const names = Object.keys(scores);
  if (names.length === 0) {
    throw new ArgumentError("comparisonFigure", "scores is empty");
  }
  const panel = (key: keyof ReconstructionScores, title: string) =>
    bars(names, names.map((n) => scores[n][key]), {
      title,
      xLabel: "model",
      yLabel: key,
      width: 240,
      height: 220,
    });
  return row([
    panel("mse", "MSE (lower: closer in pixels)"),
    panel("sharpness", "Laplacian energy / originals'"),
    panel("frechet", "Fréchet distance (lower: closer in features)"),
  ], { title: "Test reconstructions at the same codebook" });
}

/** The VQ-GAN's training curves: the generator's terms, lambda, and D's mean logits. */
export function vqganCurves(history: HistoryLike): Chart {
  return trainingCurves(history, {
    title: "VQ-GAN fine-tuning: the generator's terms, λ and D's logits",
    keys: ["recon", "perceptual", "gan", "lambda", "dReal", "dFake"],
    layout: "separate",
    smooth: 0.9,
  });
}

/** Bits per image of code grids: bars per model, with the uniform bound as a bar of its own. */
export function rateFigure(
  bits: Record<string, number>,
  options: { title: string },
): Chart {
  const { title } = checkOptions("rateFigure", options, ["title"]);
  const names = Object.keys(bits);
  return bars(names, names.map((n) => bits[n]), {
    title,
    xLabel: "code model",
    yLabel: "bits per image",
    width: 520,
    height: 260,
  });
}
