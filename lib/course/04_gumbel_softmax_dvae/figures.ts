/**
 * The figures of notebook 04 (Gumbel-softmax and the dVAE): each function
 * takes plain results of the experiments (`./experiments.ts`) or tensors
 * of a `DVAE` and returns a titled, labelled `Chart` built with the helpers
 * of `lib/plot.ts`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import * as Plot from "@observablehq/plot";
import { type EstimatorMoments, estimatorSquaredBias } from "./experiments.ts";
import {
  bars,
  type Chart,
  heatmap,
  imageGrid,
  lineChart,
  plot,
  row,
} from "../../plot.ts";
import {
  ArgumentError,
  checkInteger,
  checkNumber,
  checkOptions,
  checkTensor,
} from "../../validate.ts";

function checkNumbers(where: string, name: string, v: unknown): number[] {
  if (!Array.isArray(v) || v.length === 0) {
    throw new ArgumentError(where, `${name} must be a non-empty number array`);
  }
  v.forEach((x, i) => checkNumber(where, `${name}[${i}]`, x));
  return v;
}

function checkSameLength(
  where: string,
  a: string,
  n: number,
  b: string,
  m: number,
) {
  if (n !== m) {
    throw new ArgumentError(
      where,
      `${a} and ${b} must have the same length, got ${n} and ${m}`,
    );
  }
}

/**
 * Grouped bars of Gumbel-max sample frequencies against the probabilities
 * `pi`, titled with the number of draws and the chi-square statistic
 * (K - 1 degrees of freedom), as from `categoricalChiSquare`.
 */
export function gumbelMaxFigure(
  frequencies: number[],
  pi: number[],
  options: { draws: number; chi2: number },
): Chart {
  const where = "gumbelMaxFigure";
  const { draws, chi2 } = checkOptions(where, options, ["draws", "chi2"]);
  checkNumbers(where, "frequencies", frequencies);
  checkNumbers(where, "pi", pi);
  checkSameLength(where, "frequencies", frequencies.length, "pi", pi.length);
  checkInteger(where, "draws", draws, { min: 1 });
  checkNumber(where, "chi2", chi2, { min: 0 });
  return bars(pi.map((_, k) => String(k + 1)), {
    "Gumbel-max frequency": frequencies,
    "pi": pi,
  }, {
    title: `Gumbel-max: ${draws.toLocaleString("en-US")} samples against pi`,
    subtitle: `chi-square ${chi2.toFixed(2)} with ${
      pi.length - 1
    } degrees of freedom`,
    xLabel: "class k",
    yLabel: "probability",
    legendLabel: "series",
  });
}

// Corners of the K = 3 simplex drawn as an equilateral triangle.
const CORNERS = [[0, 0], [1, 0], [0.5, Math.sqrt(3) / 2]];

/**
 * One panel per temperature of relaxed K = 3 samples (`samples[i]` are the
 * [S][3] Gumbel-softmax draws at `taus[i]`), each drawn on the simplex
 * triangle at c_1 v_1 + c_2 v_2 + c_3 v_3 for the corners v_k. `pi` only
 * labels the figure.
 */
export function gumbelSimplexFigure(
  taus: number[],
  samples: number[][][],
  pi: number[],
): Chart {
  const where = "gumbelSimplexFigure";
  checkNumbers(where, "taus", taus);
  checkNumbers(where, "pi", pi);
  if (!Array.isArray(samples)) {
    throw new ArgumentError(where, "samples must be an array of [S][3] arrays");
  }
  checkSameLength(where, "taus", taus.length, "samples", samples.length);
  samples.forEach((s, i) => {
    if (
      !Array.isArray(s) || s.some((c) => !Array.isArray(c) || c.length !== 3)
    ) {
      throw new ArgumentError(
        where,
        `samples[${i}] must be an array of points with 3 coordinates (K = 3)`,
      );
    }
  });
  const triangle = [...CORNERS, CORNERS[0]].map(([x, y]) => ({ x, y }));
  const panel = (tau: number, z: number[][]) => {
    const pts = z.map((c) => ({
      x: c[1] + 0.5 * c[2],
      y: c[2] * CORNERS[2][1],
    }));
    return plot({
      title: `tau = ${tau}`,
      width: 210,
      height: 200,
      x: { axis: null },
      y: { axis: null },
      marks: [
        Plot.line(triangle, { x: "x", y: "y", stroke: "#999" }),
        Plot.dot(pts, {
          x: "x",
          y: "y",
          r: 1.5,
          fill: "steelblue",
          fillOpacity: 0.5,
        }),
      ],
    });
  };
  return row(taus.map((tau, i) => panel(tau, samples[i])), {
    title: `Gumbel-softmax samples on the simplex, pi = (${pi.join(", ")})`,
    subtitle: "corners: class 1 bottom left, class 2 bottom right, class 3 top",
  });
}

/**
 * Bias of the relaxed sample (||E[c] - pi||_1) and closeness to one-hot
 * (E[max_k c_k]) against the temperature, from `relaxationStats`.
 */
export function gumbelTemperatureFigure(
  stats: { tau: number; meanGap: number; maxCoord: number }[],
): Chart {
  if (!Array.isArray(stats) || stats.length === 0) {
    throw new ArgumentError(
      "gumbelTemperatureFigure",
      "stats must be a non-empty array of { tau, meanGap, maxCoord }",
    );
  }
  return lineChart({
    "|E[c] - pi|_1 (bias of the relaxed sample)": stats.map((s) => s.meanGap),
    "E[max_k c_k] (1 = one-hot)": stats.map((s) => s.maxCoord),
  }, {
    title: "What the temperature does",
    x: stats.map((s) => s.tau),
    logX: true,
    xLabel: "temperature tau",
    yLabel: "value",
  });
}

/**
 * Squared bias and variance of Gumbel-softmax gradient estimates against
 * the temperature (`gumbel[i]` are the moments at `taus[i]`), with the
 * variance of the unbiased REINFORCE estimator as a flat reference line.
 * `exact` is the true gradient (its length is K for one variable);
 * `samples` the number of draws per point (for the subtitle).
 */
export function estimatorTradeoffFigure(
  taus: number[],
  gumbel: EstimatorMoments[],
  reinforce: EstimatorMoments,
  options: { exact: number[]; samples: number },
): Chart {
  const where = "estimatorTradeoffFigure";
  const { exact, samples } = checkOptions(where, options, ["exact", "samples"]);
  checkNumbers(where, "taus", taus);
  if (!Array.isArray(gumbel)) {
    throw new ArgumentError(where, "gumbel must be an array of moments");
  }
  checkSameLength(where, "taus", taus.length, "gumbel", gumbel.length);
  checkNumber(where, "reinforce.totalVariance", reinforce?.totalVariance);
  checkNumbers(where, "exact", exact);
  checkInteger(where, "samples", samples, { min: 1 });
  return lineChart({
    "Gumbel-softmax: squared bias": gumbel.map((m) =>
      estimatorSquaredBias(m.mean, exact)
    ),
    "Gumbel-softmax: variance (trace)": gumbel.map((m) => m.totalVariance),
    "REINFORCE: variance (trace), unbiased": taus.map(() =>
      reinforce.totalVariance
    ),
  }, {
    title: "Bias and variance of single-sample gradient estimates",
    subtitle: `toy objective, K = ${exact.length}, ${samples} draws per point`,
    x: taus,
    logX: true,
    logY: true,
    xLabel: "temperature tau",
    yLabel: "squared bias / variance",
  });
}

/** Heatmap of a dVAE code-usage table [N][K] (from `DVAE.codeUsage`). */
export function dvaeCodeUsageFigure(usage: number[][]): Chart {
  return heatmap(usage, {
    title: "dVAE code usage on the test set",
    subtitle: "fraction of images choosing class k for variable n",
    xLabel: "class k",
    yLabel: "variable n",
    annotate: false,
    legendLabel: "fraction",
  });
}

/**
 * Three image rows: the originals, the dVAE reconstructions (most likely
 * code) and the VQ-VAE reconstructions after `vqSteps` training steps.
 * Tensors [n, 28, 28, 1] of the same shape; none is disposed.
 */
export function dvaeVsVqFigure(
  originals: tf.Tensor,
  dvaeRec: tf.Tensor,
  vqRec: tf.Tensor,
  options: { vqSteps: number },
): Chart {
  const where = "dvaeVsVqFigure";
  const { vqSteps } = checkOptions(where, options, ["vqSteps"]);
  const t = checkTensor(where, "originals", originals, {
    shape: [null, 28, 28, 1],
  });
  checkTensor(where, "dvaeRec", dvaeRec, { shape: t.shape });
  checkTensor(where, "vqRec", vqRec, { shape: t.shape });
  checkInteger(where, "vqSteps", vqSteps, { min: 0 });
  const grid = tf.concat([originals, dvaeRec, vqRec]);
  try {
    return imageGrid(grid, {
      title: "Same test images: dVAE vs VQ-VAE",
      subtitle:
        `row 1: originals; row 2: dVAE (most likely code); row 3: VQ-VAE (${vqSteps} steps)`,
      cols: t.shape[0],
    });
  } finally {
    grid.dispose();
  }
}
