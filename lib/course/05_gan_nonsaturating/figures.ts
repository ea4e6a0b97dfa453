/**
 * The charts of notebook 05 (GANs): thin wrappers that turn the results of
 * lib/gan.ts, lib/metrics.ts and ./experiments.ts into titled, labelled
 * `Chart`s with the helpers of lib/plot.ts. Each returns a `Chart` (display
 * it with `await show(chart)`); tensors passed in stay the caller's (any
 * tensor made here is disposed here).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  bars,
  type Chart,
  imageGrid,
  lineChart,
  type MatrixLike,
  row,
  scatter,
  trainingCurves,
} from "../../plot.ts";
import { ringQuality } from "../../gan.ts";
import { ArgumentError, checkInteger, checkNumber } from "../../validate.ts";
import type { SampleScores } from "./experiments.ts";

function checkRecord<T>(
  where: string,
  name: string,
  value: unknown,
): [string, T][] {
  if (
    value === null || typeof value !== "object" || Array.isArray(value) ||
    value instanceof tf.Tensor || Object.keys(value).length === 0
  ) {
    throw new ArgumentError(
      where,
      `${name} must be a non-empty object mapping names to values`,
    );
  }
  return Object.entries(value as Record<string, T>);
}

function checkSeries(
  where: string,
  name: string,
  value: unknown,
  length?: number,
): readonly number[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ArgumentError(where, `${name} must be a non-empty number[]`);
  }
  if (length !== undefined && value.length !== length) {
    throw new ArgumentError(
      where,
      `${name} must have ${length} values (one per x), got ${value.length}`,
    );
  }
  return value;
}

/** Number of points of a `[n, 2]` tensor or array (validated). */
function pointCount(where: string, name: string, points: unknown): number {
  if (points instanceof tf.Tensor) {
    if (points.rank !== 2 || points.shape[1] !== 2) {
      throw new ArgumentError(
        where,
        `${name} must be [n, 2] points, got shape [${points.shape}]`,
      );
    }
    return points.shape[0];
  }
  if (!Array.isArray(points) || points.length === 0) {
    throw new ArgumentError(where, `${name} must be [n, 2] points`);
  }
  return points.length;
}

const qualityLine = (q: { modesCovered: number; highQualityShare: number }) =>
  `${q.modesCovered}/8 modes, ${
    (100 * q.highQualityShare).toFixed(0)
  }% high quality`;

/**
 * Section 1: the two densities and the optimal discriminator D* on a 1-D
 * grid `xs`, with the coin flip D* = 1/2 of a perfect generator.
 * `labels` name the two densities (default: the notebook's N(0, 1) data and
 * N(1, 1) fakes).
 */
export function optimalDiscriminatorChart(
  xs: readonly number[],
  { pData, pG, dStar }: {
    pData: readonly number[];
    pG: readonly number[];
    dStar: readonly number[];
  },
  { labels = ["p_data = N(0, 1)", "p_g = N(1, 1)"] }: {
    labels?: [string, string];
  } = {},
): Chart {
  const where = "optimalDiscriminatorChart";
  const n = checkSeries(where, "xs", xs).length;
  checkSeries(where, "pData", pData, n);
  checkSeries(where, "pG", pG, n);
  checkSeries(where, "dStar", dStar, n);
  return lineChart({
    [labels[0]]: pData,
    [labels[1]]: pG,
    "optimal D*(x)": dStar,
    "D* when p_g = p_data": xs.map(() => 0.5),
  }, {
    title: "The best discriminator for a fixed generator",
    x: xs,
    xLabel: "x",
    yLabel: "density / probability",
  });
}

/**
 * Section 2: |d loss / d v| of the saturating and the non-saturating
 * generator loss over D's logit `vs` (from `generatorLossGradients(vs)`),
 * on a log axis.
 */
export function generatorGradientChart(
  vs: readonly number[],
  grads: { saturating: readonly number[]; nonSaturating: readonly number[] },
): Chart {
  const where = "generatorGradientChart";
  const n = checkSeries(where, "vs", vs).length;
  checkSeries(where, "grads.saturating", grads?.saturating, n);
  checkSeries(where, "grads.nonSaturating", grads?.nonSaturating, n);
  return lineChart({
    "saturating  log(1 - D)": grads.saturating,
    "non-saturating  -log D": grads.nonSaturating,
  }, {
    title: "Gradient magnitude of G's loss w.r.t. D's logit v",
    subtitle:
      "left: D(G(z)) = sigmoid(v) ~ 0, D rejects the fakes; right: D is fooled",
    x: vs,
    xLabel: "D's logit v on a fake (D(G(z)) = sigmoid(v))",
    yLabel: "|d loss / d v|",
    logY: true,
  });
}

/**
 * Section 2: mean D(G(z)) and the norm of G's gradient per round for runs
 * that differ only in G's loss (`histories`: run name -> trainLoop history
 * with `dFake` and `gGradNorm`), side by side.
 */
export function lossComparisonFigure(
  histories: Record<string, { [metric: string]: readonly number[] }>,
): Chart {
  const where = "lossComparisonFigure";
  const runs = checkRecord<
    { dFake?: readonly number[]; gGradNorm?: readonly number[] }
  >(
    where,
    "histories",
    histories,
  );
  const pick = (key: "dFake" | "gGradNorm") =>
    Object.fromEntries(
      runs.map(([name, h]) => [
        name,
        checkSeries(where, `histories["${name}"].${key}`, h?.[key]),
      ]),
    );
  const size = { width: 330, height: 240 };
  return row([
    lineChart(pick("dFake"), {
      title: "D(G(z)) during training",
      xLabel: "round",
      yLabel: "mean D(G(z))",
      ...size,
    }),
    lineChart(pick("gGradNorm"), {
      title: "|gradient| reaching G",
      xLabel: "round",
      yLabel: "norm",
      logY: true,
      ...size,
    }),
  ], { title: "Same data, same networks, same D: only G's loss differs" });
}

/**
 * Section 2: where each run's samples (`samples`: run name -> [n, 2] points)
 * ended up, with the data's mode centres `centers` as diamonds.
 */
export function toySamplesFigure(
  samples: Record<string, MatrixLike>,
  centers: MatrixLike,
): Chart {
  const where = "toySamplesFigure";
  const runs = checkRecord<MatrixLike>(where, "samples", samples);
  return row(
    runs.map(([name, points]) => {
      pointCount(where, `samples["${name}"]`, points);
      return scatter(points, {
        title: `${name}: samples after training`,
        centroids: centers,
        width: 300,
        height: 260,
      });
    }),
    { title: "Where G's samples ended up (diamond: the data)" },
  );
}

/**
 * Section 3: the first `count` (default 1000) points of the ring data with
 * its mode centres.
 */
export function ringDataChart(
  points: tf.Tensor2D,
  centers: MatrixLike,
  { count = 1000 }: { count?: number } = {},
): Chart {
  const where = "ringDataChart";
  const n = pointCount(where, "points", points);
  checkInteger(where, "count", count, { min: 1, max: n });
  const shown = points.slice([0, 0], [count, 2]);
  try {
    return scatter(shown, {
      title: "The data: 8 Gaussians on a ring",
      centroids: centers,
      width: 320,
      height: 300,
    });
  } finally {
    shown.dispose();
  }
}

/**
 * Section 3: one scatter panel per entry of `samples` (panel title -> [n, 2]
 * generated points), each subtitled with its `ringQuality` (modes covered,
 * high-quality share, for mode width `std`), in one row titled `title`.
 */
export function ringSamplesFigure(
  samples: Record<string, tf.Tensor2D | number[][]>,
  { title, std, centroids, width = 220, height = 220 }: {
    title: string;
    std: number;
    centroids?: MatrixLike;
    width?: number;
    height?: number;
  },
): Chart {
  const where = "ringSamplesFigure";
  checkNumber(where, "std", std, { min: 0, minExclusive: true });
  const panels = checkRecord<tf.Tensor2D | number[][]>(
    where,
    "samples",
    samples,
  );
  return row(
    panels.map(([name, points]) => {
      pointCount(where, `samples["${name}"]`, points);
      return scatter(points, {
        title: name,
        subtitle: qualityLine(ringQuality(points, { std })),
        centroids,
        r: 1.5,
        width,
        height,
      });
    }),
    { title },
  );
}

/**
 * The four curves of a GAN run (D(x), D(G(z)), D's and G's loss), smoothed,
 * one panel each, from a `trainLoop` history.
 */
export function ganCurves(
  history: { [metric: string]: number[] },
  { title, smooth = 0.9 }: { title: string; smooth?: number },
): Chart {
  return trainingCurves(history, {
    title,
    keys: ["dReal", "dFake", "dLoss", "gLoss"],
    smooth,
    layout: "separate",
  });
}

/**
 * Section 3: the share of each run's samples (run name -> [n, 2] points)
 * that land on each of the 8 ring modes as high-quality samples (mode width
 * `std`), as grouped bars.
 */
export function modeSharesChart(
  samples: Record<string, tf.Tensor2D | number[][]>,
  { std }: { std: number },
): Chart {
  const where = "modeSharesChart";
  checkNumber(where, "std", std, { min: 0, minExclusive: true });
  const runs = checkRecord<tf.Tensor2D | number[][]>(where, "samples", samples);
  const shares = Object.fromEntries(runs.map(([name, points]) => {
    const n = pointCount(where, `samples["${name}"]`, points);
    return [name, ringQuality(points, { std }).counts.map((c) => c / n)];
  }));
  return bars(Array.from({ length: 8 }, (_, i) => `mode ${i}`), shares, {
    title: "Share of samples landing on each mode (high quality only)",
    yLabel: "share of samples",
    legendLabel: "schedule",
  });
}

/**
 * Section 5: Frechet distance and precision/recall of each named sample
 * set (`scores`: rows from `sampleScores` with a `name`), side by side.
 */
export function sampleQualityFigure(
  scores: readonly ({ name: string } & SampleScores)[],
): Chart {
  const where = "sampleQualityFigure";
  if (!Array.isArray(scores) || scores.length === 0) {
    throw new ArgumentError(where, "scores must be a non-empty array");
  }
  scores.forEach((s, i) => {
    if (typeof s?.name !== "string") {
      throw new ArgumentError(where, `scores[${i}].name must be a string`);
    }
    for (const key of ["frechet", "precision", "recall"] as const) {
      checkNumber(where, `scores[${i}].${key}`, s[key]);
    }
  });
  const names = scores.map((s) => s.name);
  return row([
    bars(names, scores.map((s) => s.frechet), {
      title: "Fréchet distance to the test set",
      xLabel: "samples",
      yLabel: "lower is better",
      width: 330,
      height: 260,
    }),
    bars(names, {
      precision: scores.map((s) => s.precision),
      recall: scores.map((s) => s.recall),
    }, {
      title: "Precision and recall (k = 3)",
      xLabel: "samples",
      yLabel: "share",
      width: 360,
      height: 260,
    }),
  ], { title: "Sample quality in the classifier's feature space" });
}

/**
 * Section 5: the images (rows of `images`, [N, h, w, c]) with the largest
 * k-NN balls (`largest`, from `largestRadii`), captioned with their radius.
 */
export function largestBallsGrid(
  images: tf.Tensor4D,
  largest: readonly { index: number; radius: number }[],
  { k = 3 }: { k?: number } = {},
): Chart {
  const where = "largestBallsGrid";
  if (!(images instanceof tf.Tensor) || images.rank !== 4) {
    throw new ArgumentError(where, "images must be a [N, h, w, c] tensor");
  }
  if (!Array.isArray(largest) || largest.length === 0) {
    throw new ArgumentError(where, "largest must be a non-empty array");
  }
  largest.forEach(({ index }, i) =>
    checkInteger(where, `largest[${i}].index`, index, {
      min: 0,
      max: images.shape[0] - 1,
    })
  );
  const picked = tf.gather(images, largest.map((b) => b.index));
  try {
    return imageGrid(picked, {
      title: `Real test images with the largest k-NN balls (k = ${k})`,
      cols: 8,
      labels: largest.map((b) => `r = ${b.radius.toFixed(1)}`),
    });
  } finally {
    picked.dispose();
  }
}

/**
 * Section 4: image grids side by side, one per entry of `grids` (panel
 * title -> images [n, h, w, c]), each with an optional subtitle, in one
 * figure titled `title`.
 */
export function gridsSideBySide(
  grids: Record<string, tf.Tensor>,
  { title, cols = 8, subtitles = {} }: {
    title: string;
    cols?: number;
    subtitles?: Record<string, string>;
  },
): Chart {
  const where = "gridsSideBySide";
  const panels = checkRecord<tf.Tensor>(where, "grids", grids);
  checkInteger(where, "cols", cols, { min: 1 });
  return row(
    panels.map(([name, images]) =>
      imageGrid(images, { title: name, subtitle: subtitles[name], cols })
    ),
    { title },
  );
}

/**
 * Section 5: within-class diversity (mean pairwise feature distance inside
 * each class, from `withinClassDiversity`) per class, for the real images
 * and each conditional GAN (`perClass`: name -> one value per class), as
 * grouped bars over the class names.
 */
export function diversityChart(
  perClass: Record<string, readonly number[]>,
  classNames: readonly string[],
): Chart {
  const where = "diversityChart";
  const series = checkRecord<readonly number[]>(where, "perClass", perClass);
  series.forEach(([name, values]) =>
    checkSeries(where, `perClass["${name}"]`, values, classNames.length)
  );
  return bars([...classNames], Object.fromEntries(series), {
    title:
      "Within-class diversity: mean feature distance of two items of a class",
    yLabel: "mean distance",
    legendLabel: "images",
  });
}
