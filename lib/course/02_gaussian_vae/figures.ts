/**
 * Figures of notebook 02 (the Gaussian VAE refresher): the charts and image
 * grids, built with the lib/plot.ts helpers from the plain data that
 * lib/vae.ts and ./experiments.ts return. Every function returns a `Chart`
 * (display it with `await show(chart)`); tensors it creates are freed before
 * it returns.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import * as Plot from "@observablehq/plot";
import {
  bars,
  type Chart,
  heatmap,
  histogram,
  imageGrid,
  type ImageGridOptions,
  type LabelsLike,
  lineChart,
  type MatrixLike,
  plot,
  row,
  scatter,
} from "../../plot.ts";
import { ArgumentError, checkOptions, checkTensor } from "../../validate.ts";
import type { GradientEstimates, GradientEstimator } from "../../vae.ts";
import type { BetaSweepPoint } from "./experiments.ts";
import type { BetaFitResult } from "./conjugate.ts";

/** Runs `f` in an engine scope, so every tensor it creates is freed on return. */
function freeing<T>(f: () => T): T {
  tf.engine().startScope();
  try {
    return f();
  } finally {
    tf.engine().endScope();
  }
}

function checkNumbers(where: string, name: string, values: unknown): number[] {
  if (
    !Array.isArray(values) || values.length === 0 ||
    values.some((v) => typeof v !== "number" || !Number.isFinite(v))
  ) {
    throw new ArgumentError(
      where,
      `${name} must be a non-empty array of finite numbers`,
    );
  }
  return values;
}

function checkRecord<T>(
  where: string,
  name: string,
  value: unknown,
): [string, T][] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ArgumentError(where, `${name} must be an object keyed by name`);
  }
  const entries = Object.entries(value as Record<string, T>);
  if (entries.length === 0) {
    throw new ArgumentError(where, `${name} must have at least one entry`);
  }
  return entries;
}

function checkSweep(where: string, points: unknown): BetaSweepPoint[] {
  if (
    !Array.isArray(points) || points.length === 0 ||
    points.some((p) =>
      !p || !Number.isFinite(p.beta) || !Number.isFinite(p.rate) ||
      !Number.isFinite(p.mse) || !Array.isArray(p.rateByDim)
    )
  ) {
    throw new ArgumentError(
      where,
      "points must be a non-empty array of betaSweep() results",
    );
  }
  return points;
}

/**
 * Bars of the principal angles between two subspaces, in degrees (0° = the
 * same direction is in both).
 *
 * @param angles radians, as `principalAngles` returns them
 */
export function principalAnglesChart(angles: number[]): Chart {
  const rad = checkNumbers("principalAnglesChart", "angles", angles);
  const deg = rad.map((a) => a * 180 / Math.PI);
  return bars(deg.map((_, i) => `θ${i + 1}`), deg, {
    title:
      `Principal angles: linear autoencoder vs top-${deg.length} PCA subspace`,
    subtitle: "0° = the same direction is in both subspaces",
    xLabel: "principal angle",
    yLabel: "degrees",
  });
}

/**
 * Two bases of a subspace side by side as image grids: the PCA components
 * and the linear autoencoder's decoder rows (flat [k][h*w] arrays).
 */
export function subspaceBasesFigure(
  pcaComponents: number[][],
  aeBasis: number[][],
  options: { imageShape?: [number, number] } = {},
): Chart {
  const where = "subspaceBasesFigure";
  const { imageShape = [14, 14] } = checkOptions(where, options, [
    "imageShape",
  ]);
  for (
    const [name, v] of [["pcaComponents", pcaComponents], [
      "aeBasis",
      aeBasis,
    ]] as const
  ) {
    if (!Array.isArray(v) || v.length === 0 || !Array.isArray(v[0])) {
      throw new ArgumentError(where, `${name} must be a non-empty number[][]`);
    }
  }
  return freeing(() =>
    row([
      imageGrid(tf.tensor(pcaComponents), {
        title: "PCA components",
        imageShape,
        range: "auto",
        cols: 8,
      }),
      imageGrid(tf.tensor(aeBasis), {
        title: "Linear AE decoder rows",
        imageShape,
        range: "auto",
        cols: 8,
      }),
    ], { title: "Same subspace, different bases" })
  );
}

/**
 * Histograms of the one-sample d/dmu estimates of some estimators (default
 * the reparameterized and the plain score-function one), side by side.
 */
export function estimatorHistograms(
  estimates: Partial<Record<GradientEstimator, GradientEstimates>>,
  options: { title: string; estimators?: GradientEstimator[] },
): Chart {
  const where = "estimatorHistograms";
  if (options === undefined) {
    throw new ArgumentError(where, "options must be an object with a title");
  }
  const { title, estimators = ["reparameterization", "score-function"] } =
    checkOptions(where, options, ["title", "estimators"]);
  checkRecord(where, "estimates", estimates);
  return row(
    estimators.map((e) => {
      if (!estimates[e]) {
        throw new ArgumentError(where, `estimates has no entry "${e}"`);
      }
      return histogram(estimates[e].dMu, {
        title: e,
        xLabel: "one-sample estimate of ∂/∂μ",
        width: 320,
        height: 220,
      });
    }),
    { title },
  );
}

/**
 * Log-log lines of the variance of the d/dmu estimate against the number of
 * samples per estimate, one line per estimator
 * (`gradientVarianceBySamples` output).
 */
export function estimatorVarianceChart(
  varianceBySamples: Partial<Record<GradientEstimator, number[]>>,
  sampleCounts: number[],
): Chart {
  const where = "estimatorVarianceChart";
  checkRecord(where, "varianceBySamples", varianceBySamples);
  checkNumbers(where, "sampleCounts", sampleCounts);
  return lineChart(varianceBySamples as Record<string, number[]>, {
    title: "Variance of the ∂/∂μ estimate vs samples per estimate",
    x: sampleCounts,
    logX: true,
    logY: true,
    xLabel: "samples S",
    yLabel: "variance",
    legendLabel: "estimator",
  });
}

/**
 * One scatter of 2-D codes per model, side by side, coloured by class
 * (`codes` maps a panel title to an [n, 2] matrix).
 */
export function latentSpacesFigure(
  codes: Record<string, MatrixLike>,
  options: { labels: LabelsLike; classNames?: string[]; title?: string },
): Chart {
  const where = "latentSpacesFigure";
  if (options === undefined) {
    throw new ArgumentError(where, "options must be an object with labels");
  }
  const { labels, classNames, title = "2-D latent spaces of the test set" } =
    checkOptions(where, options, ["labels", "classNames", "title"]);
  const entries = checkRecord<MatrixLike>(where, "codes", codes);
  const plain = labels instanceof tf.Tensor
    ? Array.from(labels.dataSync())
    : labels;
  return row(
    entries.map(([name, points]) =>
      scatter(points, {
        title: name,
        labels: plain,
        classNames,
        r: 1.5,
        width: 380,
        height: 340,
        xLabel: "z₁",
        yLabel: "z₂",
        legendLabel: "class",
      })
    ),
    { title },
  );
}

/**
 * One image grid of several image batches stacked as rows (e.g. originals,
 * then each model's reconstructions). `build` returns the batches; it runs
 * in a scope, so the tensors it creates (reconstructions, decodings) are
 * freed when the chart is drawn. Tensors created before are left alone.
 */
export function stackedImageGrid(
  build: () => tf.Tensor[],
  options: ImageGridOptions,
): Chart {
  const where = "stackedImageGrid";
  if (typeof build !== "function") {
    throw new ArgumentError(
      where,
      "build must be a function returning the image batches",
    );
  }
  return freeing(() => {
    const parts = build();
    if (!Array.isArray(parts) || parts.length === 0) {
      throw new ArgumentError(
        where,
        "build must return a non-empty tf.Tensor[]",
      );
    }
    parts.forEach((p, i) => checkTensor(where, `build()[${i}]`, p));
    return imageGrid(tf.concat(parts), options);
  });
}

/** Anything with `decode(z)` (an `Autoencoder` or a `GaussianVAE`). */
export interface Decoder {
  /** Images [n, 28, 28, 1] for latents z [n, latentDim]. */
  decode(z: tf.Tensor): tf.Tensor;
}

/**
 * Each model's decoder applied to the same prior samples `z`, one image
 * grid per model side by side ("<name> decoder on z ~ N(0, I)").
 */
export function priorSamplesFigure(
  decoders: Record<string, Decoder>,
  z: tf.Tensor,
  options: { cols?: number } = {},
): Chart {
  const where = "priorSamplesFigure";
  const { cols = 5 } = checkOptions(where, options, ["cols"]);
  const entries = checkRecord<Decoder>(where, "decoders", decoders);
  checkTensor(where, "z", z, { rank: 2 });
  return freeing(() =>
    row(
      entries.map(([name, m]) =>
        imageGrid(m.decode(z), {
          title: `${name} decoder on z ~ N(0, I)`,
          cols,
        })
      ),
      { title: "Samples from the prior" },
    )
  );
}

/** Bars of the test reconstruction MSE per model (`reconstructionMSE` output). */
export function testMSEChart(testMSE: Record<string, number>): Chart {
  const entries = checkRecord<number>("testMSEChart", "testMSE", testMSE);
  return bars(entries.map(([k]) => k), entries.map(([, v]) => v), {
    title: "Test reconstruction MSE",
    xLabel: "model",
    yLabel: "MSE per pixel",
  });
}

/**
 * The rate-distortion curve of a beta sweep: one labelled point per model;
 * the collapsed models (rate < 0.05 nats) share one label.
 *
 * @param options.steps training steps per model (for the subtitle)
 */
export function rateDistortionChart(
  points: BetaSweepPoint[],
  options: { steps: number },
): Chart {
  const where = "rateDistortionChart";
  if (options === undefined) {
    throw new ArgumentError(where, "options must be an object with steps");
  }
  const { steps } = checkOptions(where, options, ["steps"]);
  const sweep = checkSweep(where, points);
  // Collapsed models all sit at rate 0: give them one label.
  const collapsedBetas = sweep.filter((d) => d.rate < 0.05).map((d) => d.beta);
  const labelled = sweep.filter((d) =>
    d.rate >= 0.05 || d.beta === collapsedBetas[0]
  ).map((d) => ({
    ...d,
    label: d.rate < 0.05
      ? `β=${collapsedBetas.join(", ")}: collapsed`
      : `β=${d.beta}`,
  }));
  return plot({
    title: "Rate–distortion curve of the β-VAE (16-D code, test set)",
    subtitle:
      `each point is one model trained for ${steps} steps; labels are β`,
    marginRight: 60,
    x: { label: "rate: KL(q(z|x) ‖ p(z)) in nats", grid: true },
    y: { label: "distortion: MSE per pixel", grid: true, nice: true },
    marks: [
      Plot.line(sweep, { x: "rate", y: "mse", stroke: "steelblue" }),
      Plot.dot(sweep, { x: "rate", y: "mse", fill: "steelblue", r: 4 }),
      Plot.text(labelled, {
        x: "rate",
        y: "mse",
        text: "label",
        dx: 8,
        dy: -8,
        textAnchor: "start",
      }),
    ],
  });
}

/** Heatmap of the KL per latent dimension (columns) for each beta (rows). */
export function rateByDimHeatmap(points: BetaSweepPoint[]): Chart {
  const sweep = checkSweep("rateByDimHeatmap", points);
  return heatmap(sweep.map((s) => s.rateByDim), {
    title: "KL per latent dimension (nats) for each β",
    xLabel: "latent dimension",
    yLabel: "β",
    yTicks: sweep.map((s) => `β=${s.beta}`),
    annotate: false,
    legendLabel: "nats",
  });
}

/** What `denoisingError` returns for the AE and the VAE at one noise level. */
export interface DenoisingPair {
  /** The autoencoder's errors (its `noisyMse` is the noisy-input baseline). */
  ae: { mse: number; noisyMse: number };
  /** The VAE's errors. */
  vae: { mse: number; noisyMse: number };
}

/**
 * Error against the clean images as the noise grows: the noisy input, the
 * AE's and the VAE's reconstructions (one entry of `denoise` per level).
 */
export function denoisingChart(
  noiseLevels: number[],
  denoise: DenoisingPair[],
): Chart {
  const where = "denoisingChart";
  checkNumbers(where, "noiseLevels", noiseLevels);
  if (!Array.isArray(denoise) || denoise.length !== noiseLevels.length) {
    throw new ArgumentError(
      where,
      `denoise must have one entry per noise level (${noiseLevels.length})`,
    );
  }
  return lineChart({
    "noisy input": denoise.map((d) => d.ae.noisyMse),
    AE: denoise.map((d) => d.ae.mse),
    VAE: denoise.map((d) => d.vae.mse),
  }, {
    title: "Error against the clean test images",
    x: noiseLevels,
    xLabel: "noise standard deviation",
    yLabel: "MSE per pixel",
    legendLabel: "output",
  });
}

function checkFits(where: string, results: unknown): BetaFitResult[] {
  if (
    !Array.isArray(results) || results.length === 0 ||
    results.some((r) =>
      !r || !Number.isFinite(r.beta) || !Number.isFinite(r.objective) ||
      !Number.isFinite(r.rate) || !Number.isFinite(r.distortion)
    )
  ) {
    throw new ArgumentError(
      where,
      "results must be a non-empty array of BetaObjectiveFit.results()",
    );
  }
  return results;
}

/**
 * The beta objective at its optimum q_beta against beta, with the ELBO of
 * the same q and log p(x): the objective lies above log p(x) for beta < 1
 * (no longer a bound), touches it at beta = 1 and falls below for beta > 1,
 * while every ELBO stays below.
 *
 * @param results `BetaObjectiveFit.results(x)`, by increasing beta
 * @param logEvidence log p(x) of the same observation
 */
export function betaBoundChart(
  results: BetaFitResult[],
  logEvidence: number,
): Chart {
  const where = "betaBoundChart";
  const fits = checkFits(where, results);
  checkNumbers(where, "[logEvidence]", [logEvidence]);
  return lineChart({
    "max over q of the β objective": fits.map((r) => r.objective),
    "ELBO of that q": fits.map((r) => r.elbo),
    "log p(x)": fits.map(() => logEvidence),
  }, {
    title: "For β < 1 the β objective exceeds log p(x)",
    subtitle: "linear-Gaussian model, one observation; q fitted per β",
    x: fits.map((r) => r.beta),
    logX: true,
    xLabel: "β (weight of the KL term)",
    yLabel: "nats",
    legendLabel: "value",
  });
}

/**
 * The rate-distortion curve traced by the fitted q_beta (rate KL(q || p),
 * distortion E_q (x - a z)^2), with the tangent of slope -2 c beta drawn at
 * some betas: each q_beta minimises D + 2 c beta R, so the curve touches
 * that line there.
 *
 * @param results `BetaObjectiveFit.results(x)`
 * @param options.c the decoder variance of the model
 * @param options.tangents betas (present in `results`) to draw tangents at
 */
export function tangentRateDistortionChart(
  results: BetaFitResult[],
  options: { c: number; tangents: number[] },
): Chart {
  const where = "tangentRateDistortionChart";
  const fits = checkFits(where, results);
  if (options === undefined) {
    throw new ArgumentError(where, "options must be an object { c, tangents }");
  }
  const { c, tangents } = checkOptions(where, options, ["c", "tangents"]);
  checkNumbers(where, "[options.c]", [c]);
  checkNumbers(where, "options.tangents", tangents);
  const rates = fits.map((r) => r.rate);
  const halfWidth = (Math.max(...rates) - Math.min(...rates)) / 6;
  const lines = tangents.flatMap((beta) => {
    const at = fits.find((r) => r.beta === beta);
    if (!at) {
      throw new ArgumentError(where, `no fit at β = ${beta} in results`);
    }
    const slope = -2 * c * beta;
    return [-1, 1].map((side) => ({
      beta: `β = ${beta}: slope −2cβ = ${slope.toFixed(2).replace("-", "−")}`,
      rate: at.rate + side * halfWidth,
      distortion: at.distortion + slope * side * halfWidth,
    }));
  });
  return plot({
    title: "Each β picks the point where the curve has slope −2cβ",
    subtitle: "rate–distortion curve of the fitted q's; tangents at some β",
    x: { label: "rate: KL(q ‖ p(z)) in nats", grid: true },
    y: { label: "distortion: E (x − a z)²", grid: true, nice: true },
    color: { legend: true },
    marks: [
      Plot.line(fits, { x: "rate", y: "distortion", stroke: "#888" }),
      Plot.dot(fits, { x: "rate", y: "distortion", fill: "#888", r: 3 }),
      Plot.line(lines, {
        x: "rate",
        y: "distortion",
        z: "beta",
        stroke: "beta",
        strokeWidth: 2,
      }),
    ],
  });
}
