/**
 * Figures of notebook 01 (k-means, Gaussian mixtures and the shallow VQ
 * "VAE"): each function turns the plain results of lib/vq.ts, lib/gmm.ts
 * and ./experiments.ts into one titled, labelled `Chart`, so the notebook
 * cells show the computation and not the plot options.
 *
 * Tensors passed in are only read, never disposed: they stay the caller's.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  bars,
  type Chart,
  column,
  imageGrid,
  type ImagesLike,
  type LabelsLike,
  lineChart,
  type MatrixLike,
  row,
  scatter,
  voronoiPlot,
} from "../../plot.ts";
import { ArgumentError } from "../../validate.ts";
import type { LloydSnapshot } from "./experiments.ts";

const NUMBER_WORDS = [
  "zero",
  "one",
  "two",
  "three",
  "four",
  "five",
  "six",
  "seven",
  "eight",
  "nine",
  "ten",
];

/** Number of rows of an array or tensor argument (at least 1, checked). */
function rowCount(
  where: string,
  name: string,
  m: unknown,
  shape: string,
): number {
  const n = Array.isArray(m)
    ? m.length
    : m instanceof tf.Tensor
    ? m.shape[0]
    : undefined;
  if (typeof n !== "number" || n < 1) {
    throw new ArgumentError(
      where,
      `${name} must be a non-empty ${shape} array or tensor`,
    );
  }
  return n;
}

/**
 * The Voronoi cells of a codebook over the data: every point coloured by its
 * code z, the codewords drawn as diamonds (section 1 of notebook 01).
 *
 * @param points [n, 2] data
 * @param centroids [k, 2] codebook
 * @param codes the code z of every point (length n), e.g. k-means assignments
 * @throws ArgumentError on an empty codebook or mismatched shapes
 */
export function vqCellsFigure(
  points: MatrixLike,
  centroids: MatrixLike,
  codes: LabelsLike,
): Chart {
  const k = rowCount("vqCellsFigure", "centroids", centroids, "[k, 2]");
  return voronoiPlot(points, centroids, {
    title: `Vector quantization with ${NUMBER_WORDS[k] ?? k} centroids`,
    subtitle: "each shaded Voronoi cell is mapped to its centroid (diamond)",
    labels: codes,
    legendLabel: "code z",
  });
}

/**
 * Lloyd's iterations side by side: one small Voronoi panel per snapshot
 * (from `lloydSnapshots`), titled by its step count, subtitled by its inertia.
 *
 * @param points [n, 2] data
 * @param snapshots a non-empty array of `LloydSnapshot`s
 * @throws ArgumentError on an empty `snapshots`
 */
export function lloydFigure(
  points: MatrixLike,
  snapshots: LloydSnapshot[],
): Chart {
  if (!Array.isArray(snapshots) || snapshots.length === 0) {
    throw new ArgumentError(
      "lloydFigure",
      "snapshots must be a non-empty array (from lloydSnapshots)",
    );
  }
  const panels = snapshots.map((s) =>
    voronoiPlot(points, s.centroids, {
      title: `after ${s.steps} assignment step${s.steps > 1 ? "s" : ""}`,
      subtitle: `inertia ${s.inertia.toFixed(0)}`,
      labels: s.assignments,
      width: 300,
      height: 260,
    })
  );
  return row(panels, { title: "Lloyd's iterations from a bad start" });
}

/**
 * Grouped bars of the final inertia of single k-means runs, by seed, one
 * series per seeding method (values from `seedInertias`).
 *
 * @param seeds the seeds (bar categories)
 * @param inertias seeding name -> one inertia per seed
 * @throws ArgumentError on empty inputs or series of the wrong length
 */
export function seedingFigure(
  seeds: number[],
  inertias: Record<string, number[]>,
): Chart {
  const names = inertias && typeof inertias === "object"
    ? Object.keys(inertias)
    : [];
  if (names.length === 0) {
    throw new ArgumentError(
      "seedingFigure",
      "inertias must map at least one seeding name to an array of inertias",
    );
  }
  return bars(seeds, inertias, {
    title: "Final inertia of single runs, by seed",
    xLabel: "seed",
    yLabel: "final inertia",
    legendLabel: "seeding",
    subtitle: "lower is better; k-means++ lands in good minima more often",
  });
}

/**
 * The average log-likelihood of the shallow VQ-VAE after each EM iteration
 * (`fitGMM(...).history`): it rises monotonically.
 *
 * @param history average log-likelihoods, one per EM iteration
 * @throws ArgumentError (from `lineChart`) on an empty or non-numeric history
 */
export function vqEMFigure(history: number[]): Chart {
  return lineChart({ "average log-likelihood": history }, {
    title: "EM for the shallow VQ-VAE (identity covariance, uniform prior)",
    xLabel: "EM iteration",
    yLabel: "(1/n) Σ ln P(x)",
  });
}

/**
 * The two 2-D point clouds of section 5 side by side: the data coloured by
 * its true component, and samples of the shallow VQ-VAE coloured by their z.
 *
 * @param data `{ points, labels }`, e.g. a `Dataset2D`
 * @param generated `{ samples, z }`, e.g. from `sampleGMM`
 * @throws ArgumentError on missing fields or bad shapes
 */
export function vqSamples2dFigure(
  data: { points: MatrixLike; labels: LabelsLike },
  generated: { samples: MatrixLike; z: LabelsLike },
): Chart {
  if (!data?.points || !generated?.samples) {
    throw new ArgumentError(
      "vqSamples2dFigure",
      "data must have points and generated must have samples ([n, 2])",
    );
  }
  const size = { width: 320, height: 280 };
  return row([
    scatter(data.points, { title: "data", labels: data.labels, ...size }),
    scatter(generated.samples, {
      title: "samples z ~ U, x ~ N(μ_z, I)",
      labels: generated.z,
      ...size,
    }),
  ], { title: "Sampling from the shallow VQ-VAE in 2D" });
}

/** Fashion-MNIST panels of [n, 784] images, 16 per row, twice enlarged. */
function fashionColumn(
  panels: [ImagesLike, string][],
  title: string,
): Chart {
  return column(
    panels.map(([images, caption]) =>
      imageGrid(images, {
        title: caption,
        imageShape: [28, 28],
        cols: 16,
        scale: 2,
      })
    ),
    { title },
  );
}

/**
 * Section 5 on images: the means of the shallow VQ-VAE, its samples
 * (mean + unit noise) and samples of a diagonal GMM, as rows of 28x28 tiles.
 *
 * @param means [K, 784] means of the identity-covariance, uniform-prior GMM
 * @param identitySamples [n, 784] samples of that model
 * @param diagonalSamples [n, 784] samples of a diagonal GMM
 * @throws ArgumentError on missing images (or, from `imageGrid`, bad shapes)
 */
export function vqImageSamplesFigure(
  means: ImagesLike,
  identitySamples: ImagesLike,
  diagonalSamples: ImagesLike,
): Chart {
  const k = rowCount("vqImageSamplesFigure", "means", means, "[K, 784]");
  return fashionColumn([
    [means, `the ${k} means μ_z (identity covariance, uniform prior)`],
    [identitySamples, "samples x ~ N(μ_z, I): unit noise drowns the image"],
    [
      diagonalSamples,
      "samples from a diagonal GMM: centroid + independent pixel noise",
    ],
  ], "Generating Fashion-MNIST with the shallow VQ-VAE");
}

/**
 * Section 6: a k-means codebook of Fashion-MNIST, some originals and their
 * nearest-centroid reconstructions, as rows of 28x28 tiles.
 *
 * @param centroids [K, 784] k-means centroids (the codebook)
 * @param originals [n, 784] images
 * @param reconstructions [n, 784] their quantized versions
 * @throws ArgumentError on missing images (or, from `imageGrid`, bad shapes)
 */
export function fashionCodebookFigure(
  centroids: ImagesLike,
  originals: ImagesLike,
  reconstructions: ImagesLike,
): Chart {
  const k = rowCount(
    "fashionCodebookFigure",
    "centroids",
    centroids,
    "[K, 784]",
  );
  const bits = Math.log2(k);
  const rate = Number.isInteger(bits) ? `${bits}` : bits.toFixed(1);
  return fashionColumn([
    [centroids, `the codebook: ${k} k-means centroids`],
    [originals, "originals"],
    [
      reconstructions,
      `reconstructions by the nearest centroid (${rate} bits each)`,
    ],
  ], "Vector quantization of Fashion-MNIST");
}
