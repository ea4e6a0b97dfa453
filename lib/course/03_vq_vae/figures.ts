/**
 * The charts of notebook 03 (the deep VQ-VAE): each function takes plain
 * results (tensors or arrays it does not dispose) and returns one `Chart`
 * built with the `plot.ts` helpers, with its title and axis labels.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  bars,
  type Chart,
  column,
  heatmap,
  type HistoryLike,
  imageGrid,
  lineChart,
  type MatrixLike,
  row,
  scatter,
  trainingCurves,
  type VectorLike,
} from "../../plot.ts";
import { ArgumentError, checkInteger, checkNumber } from "../../validate.ts";

function checkSeries(
  where: string,
  name: string,
  series: unknown,
  count: number,
): Record<string, VectorLike> {
  if (
    series === null || typeof series !== "object" ||
    Object.keys(series).length !== count
  ) {
    throw new ArgumentError(
      where,
      `${name} must be a record of ${count} named series`,
    );
  }
  return series as Record<string, VectorLike>;
}

/**
 * Two panels on the same x: functions on the left, their autodiff
 * gradients on the right ("min is trainable, argmin is not"). `values` and
 * `gradients` each map two series names to vectors as long as `x`.
 */
export function minArgminFigure(
  x: VectorLike,
  values: Record<string, VectorLike>,
  gradients: Record<string, VectorLike>,
): Chart {
  const where = "minArgminFigure";
  checkSeries(where, "values", values, 2);
  checkSeries(where, "gradients", gradients, 2);
  return row([
    lineChart(values, {
      x,
      title: "f(x) = min{x, x², 2/x} and g(x) = argmin",
      xLabel: "x",
      yLabel: "value",
      width: 380,
    }),
    lineChart(gradients, {
      x,
      title: "Their autodiff gradients",
      xLabel: "x",
      yLabel: "gradient",
      width: 380,
    }),
  ], { title: "min is trainable, argmin is not" });
}

function rows(where: string, name: string, m: MatrixLike): number[][] {
  const r = m instanceof tf.Tensor ? m.arraySync() as number[][] : m;
  if (
    !Array.isArray(r) || r.length === 0 ||
    r.some((v) => !Array.isArray(v) || v.length !== 2)
  ) {
    throw new ArgumentError(
      where,
      `${name} must be a non-empty [n, 2] matrix of 2-D vectors`,
    );
  }
  return r;
}

/**
 * The 2-D loss demo: encoder vectors h before and after half a commitment
 * step, and the codes before and after one codebook step, as one scatter
 * coloured by role. Every argument is [n, 2] (a tensor or number[][]).
 */
export function quantizerStepsFigure(
  h: MatrixLike,
  hStepped: MatrixLike,
  codes: MatrixLike,
  codesStepped: MatrixLike,
): Chart {
  const where = "quantizerStepsFigure";
  const parts = [
    [rows(where, "h", h), "h"],
    [rows(where, "hStepped", hStepped), "h after half a commitment step"],
    [rows(where, "codes", codes), "e before"],
    [rows(where, "codesStepped", codesStepped), "e after a codebook step"],
  ] as const;
  return scatter(parts.flatMap(([p]) => p), {
    labels: parts.flatMap(([p, label]) => p.map(() => label)),
    title:
      "Codebook loss moves e to the mean of its h; commitment moves h toward e",
    xLabel: "dim 1",
    yLabel: "dim 2",
    legendLabel: "vectors",
    r: 5,
  });
}

/**
 * VQ-VAE training curves from a `trainLoop` history: the three loss terms
 * (log scale) above, the batch perplexity and codes used (of `numCodes`)
 * below, both smoothed.
 */
export function vqvaeTrainingFigure(
  history: HistoryLike,
  { numCodes = 64 }: { numCodes?: number } = {},
): Chart {
  checkInteger("vqvaeTrainingFigure", "numCodes", numCodes, { min: 1 });
  return column([
    trainingCurves(history, {
      keys: ["recon", "codebook", "commitment"],
      title: "Loss terms",
      xLabel: "step",
      yLabel: "mean squared error",
      smooth: 0.9,
      logY: true,
      layout: "overlay",
      height: 240,
    }),
    trainingCurves(history, {
      keys: ["perplexity", "used"],
      title: `Code usage per batch (of K = ${numCodes})`,
      xLabel: "step",
      yLabel: "codes",
      smooth: 0.9,
      layout: "overlay",
      height: 240,
    }),
  ], { title: "VQ-VAE training" });
}

/**
 * The learned codebook: the matrix E [K, d] as a heatmap, beside the
 * decoder's image for each code (`tiles` [K, 28, 28, 1], values in [0, 1]),
 * labelled 0..K-1.
 */
export function vqvaeCodebookFigure(
  codebook: tf.Tensor2D,
  tiles: tf.Tensor,
): Chart {
  const where = "vqvaeCodebookFigure";
  if (!(codebook instanceof tf.Tensor) || codebook.rank !== 2) {
    throw new ArgumentError(where, "codebook must be a [K, d] tensor");
  }
  const [k, d] = codebook.shape;
  if (!(tiles instanceof tf.Tensor) || tiles.shape[0] !== k) {
    throw new ArgumentError(
      where,
      `tiles must be a tensor of ${k} images, one per code`,
    );
  }
  return row([
    heatmap(codebook, {
      title: `Codebook E (${k} x ${d})`,
      xLabel: "dimension",
      yLabel: "code",
      scheme: "RdBu",
      annotate: false,
      width: 300,
      height: 420,
    }),
    imageGrid(tiles, {
      title: "Decoder output of a grid filled with code k",
      cols: 8,
      labels: Array.from({ length: k }, (_, i) => i),
    }),
  ], { title: "The learned codebook" });
}

/**
 * Codebook variants side by side: codes used per batch and reconstruction
 * error (log scale) over the first `steps` recorded steps of each run
 * (`runs` maps a name to a history with `used` and `recon`).
 */
export function vqvaeVariantsFigure(
  runs: Record<string, { used?: number[]; recon?: number[] }>,
  steps: number,
): Chart {
  const where = "vqvaeVariantsFigure";
  checkInteger(where, "steps", steps, { min: 1 });
  if (runs === null || typeof runs !== "object" || !Object.keys(runs).length) {
    throw new ArgumentError(
      where,
      "runs must be a non-empty record of histories",
    );
  }
  const curves = (key: "used" | "recon") =>
    Object.fromEntries(
      Object.entries(runs).map(([name, h]) => {
        if (!Array.isArray(h?.[key])) {
          throw new ArgumentError(where, `runs["${name}"] has no ${key} array`);
        }
        return [name, h[key]!.slice(0, steps)];
      }),
    );
  return row([
    lineChart(curves("used"), {
      title: "Codes used per batch",
      xLabel: "step",
      yLabel: "codes (of 64)",
      width: 380,
    }),
    lineChart(curves("recon"), {
      title: "Reconstruction error",
      xLabel: "step",
      yLabel: "MSE",
      logY: true,
      width: 380,
    }),
  ], { title: "Codebook variants" });
}

/**
 * Phase II in one figure: the prior's training NLL, the bits per image of
 * the uniform prior (`bound`) against the learned prior's test NLL
 * (`testBits`), and decoded samples of the prior (`samples`, values in [0, 1]).
 */
export function vqvaePriorFigure(
  priorHistory: HistoryLike,
  { bound, testBits }: { bound: number; testBits: number },
  samples: tf.Tensor,
): Chart {
  const where = "vqvaePriorFigure";
  checkNumber(where, "bound", bound, { min: 0 });
  checkNumber(where, "testBits", testBits, { min: 0 });
  return column([
    trainingCurves(priorHistory, {
      keys: ["bitsPerImage"],
      title: "Prior training: NLL of each batch",
      xLabel: "step",
      yLabel: "bits per image",
      smooth: 0.9,
      height: 200,
    }),
    bars(["uniform prior (rate bound)", "learned prior (test NLL)"], [
      bound,
      testBits,
    ], { title: "Bits per image", yLabel: "bits", height: 200 }),
    imageGrid(samples, {
      title: "Decoded samples of the learned prior",
      cols: 10,
    }),
  ], { title: "Phase II: the learned prior" });
}

/**
 * Straight-through against the true gradient of the softened quantizer
 * (`straightThroughAngles`): the mean cosine between the two (left) and the
 * median ratio of their lengths (right), against the hard quantizer's
 * distortion, one line per temperature.
 */
export function straightThroughAngleFigure(
  angles: {
    distortion: number[];
    cosine: Record<string, number[]>;
    gradientRatio: Record<string, number[]>;
  },
): Chart {
  const where = "straightThroughAngleFigure";
  if (angles === null || typeof angles !== "object") {
    throw new ArgumentError(
      where,
      "angles must be what straightThroughAngles returns",
    );
  }
  const { distortion, cosine, gradientRatio } = angles;
  return row([
    lineChart(cosine, {
      x: distortion,
      logX: true,
      title: "cos(straight-through, true gradient)",
      xLabel: "distortion ||h − q(h)||² (coarse codes → right)",
      yLabel: "mean cosine",
      legendLabel: "softened quantizer",
      width: 390,
    }),
    lineChart(gradientRatio, {
      x: distortion,
      logX: true,
      title: "|true gradient| / |straight-through|",
      xLabel: "distortion ||h − q(h)||² (coarse codes → right)",
      yLabel: "median ratio",
      legendLabel: "softened quantizer",
      width: 390,
    }),
  ], {
    title:
      "Straight-through is the true gradient once the distortion is below T",
  });
}

/** One swept setting: its values and the `sweepPoint` of the run at each. */
export interface SweepSeries {
  /** The setting's values (the x axis, log scale). */
  values: number[];
  /** The summary of the run at each value. */
  points: {
    mse: number;
    perplexity: number;
    used: number;
    commitment: number;
  }[];
}

/**
 * Two sweeps of short VQ-VAE runs, one row each: code perplexity, test
 * reconstruction MSE and the commitment distance ||h - e||^2 against the
 * swept setting (log scales). `sweeps` maps a setting's axis label (e.g.
 * "codebook learning rate") to its values and run summaries.
 */
export function codebookSweepFigure(
  sweeps: Record<string, SweepSeries>,
): Chart {
  const where = "codebookSweepFigure";
  if (
    sweeps === null || typeof sweeps !== "object" ||
    Object.keys(sweeps).length === 0
  ) {
    throw new ArgumentError(where, "sweeps must be a non-empty record");
  }
  const panels = Object.entries(sweeps).map(([label, { values, points }]) => {
    if (!Array.isArray(values) || values.length !== points?.length) {
      throw new ArgumentError(
        where,
        `sweeps["${label}"] needs as many points as values`,
      );
    }
    const chart = (
      key: "perplexity" | "mse" | "commitment",
      title: string,
      logY: boolean,
    ) =>
      lineChart({ [key]: points.map((p) => p[key]) }, {
        x: values,
        logX: true,
        logY,
        title,
        xLabel: label,
        yLabel: key === "perplexity" ? "codes" : "mean squared error",
        width: 260,
        height: 220,
      });
    return row([
      chart("perplexity", "Code perplexity (test)", false),
      chart("mse", "Reconstruction MSE (test)", false),
      chart("commitment", "||h − sg(e)||² at the end", true),
    ], { title: `Sweeping the ${label}` });
  });
  return column(panels, {
    title: "The codebook's learning rate and β act on different things",
  });
}

/**
 * Samples of several generative models, one titled image row each
 * (`samples` maps a row title to images [n, 28, 28, 1] with values in [0, 1]).
 */
export function latentSamplesFigure(samples: Record<string, tf.Tensor>): Chart {
  const where = "latentSamplesFigure";
  const entries = samples !== null && typeof samples === "object"
    ? Object.entries(samples)
    : [];
  if (
    entries.length === 0 || entries.some(([, t]) => !(t instanceof tf.Tensor))
  ) {
    throw new ArgumentError(
      where,
      "samples must be a non-empty record of image tensors",
    );
  }
  return column(
    entries.map(([title, images]) => imageGrid(images, { title, cols: 10 })),
    { title: "Samples: decoded draws from each model's prior" },
  );
}
