import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { ArgumentError } from "../lib/validate.ts";
import { ringCenters } from "../lib/datasets2d.ts";
import {
  ganCurves,
  generatorGradientChart,
  largestBallsGrid,
  lossComparisonFigure,
  modeSharesChart,
  optimalDiscriminatorChart,
  ringDataChart,
  ringSamplesFigure,
  sampleQualityFigure,
  toySamplesFigure,
} from "../lib/figures/gan.ts";
import {
  assert,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";
import { assertTitled, count, markGroup } from "./svg.ts";

await initBackend({ quiet: true });

/** Bars: positioned <rect>s (not the chart backgrounds or legend swatches). */
const barCount = (svg: string) => count(svg, /<rect (?!class)[^>]*\by="/g);

/** n points spread around (cx, cy). */
function cloud(n: number, cx = 0, cy = 0, spread = 0.01): number[][] {
  return Array.from({ length: n }, (_, i) => [
    cx + spread * Math.sin(1.7 * i),
    cy + spread * Math.cos(2.3 * i),
  ]);
}

Deno.test("optimalDiscriminatorChart: four lines with the densities' names", () => {
  const xs = [-1, 0, 1, 2];
  const pData = [0.2, 0.4, 0.2, 0.05];
  const pG = [0.05, 0.2, 0.4, 0.2];
  const dStar = pData.map((p, i) => p / (p + pG[i]));
  const svg = optimalDiscriminatorChart(xs, { pData, pG, dStar }).svg();
  assertTitled(svg, ["The best discriminator for a fixed generator"], [
    "density / probability",
    "p_data = N(0, 1)",
    "optimal D*(x)",
  ]);
  assertEquals(count(markGroup(svg, "line"), /<path\b/g), 4);
  const named = optimalDiscriminatorChart(xs, { pData, pG, dStar }, {
    labels: ["data", "fakes"],
  }).svg();
  assert(named.includes(">fakes<"), "custom density label missing");
  assertThrows(
    () => optimalDiscriminatorChart(xs, { pData, pG: [1, 2], dStar }),
    ArgumentError,
    "pG",
  );
});

Deno.test("generatorGradientChart: two lines on a log axis", () => {
  const vs = [-4, -2, 0, 2];
  const sig = vs.map((v) => 1 / (1 + Math.exp(-v)));
  const svg = generatorGradientChart(vs, {
    saturating: sig,
    nonSaturating: sig.map((s) => 1 - s),
  }).svg();
  assertTitled(svg, ["Gradient magnitude of G's loss w.r.t. D's logit v"], [
    "|d loss / d v|",
    "saturating  log(1 - D)",
  ]);
  assertEquals(count(markGroup(svg, "line"), /<path\b/g), 2);
  assertThrows(
    () => generatorGradientChart(vs, { saturating: sig, nonSaturating: [] }),
    ArgumentError,
    "nonSaturating",
  );
});

Deno.test("lossComparisonFigure: two panels with one line per run", () => {
  const h = (a: number) => ({
    dFake: [0.1 * a, 0.2, 0.3],
    gGradNorm: [a, 2, 3],
  });
  const svg = lossComparisonFigure({ saturating: h(1), "non-saturating": h(2) })
    .svg();
  assertTitled(svg, [
    "Same data, same networks, same D: only G's loss differs",
    "D(G(z)) during training",
    "|gradient| reaching G",
  ], ["mean D(G(z))", "norm"]);
  const split = svg.indexOf(">|gradient| reaching G<");
  assertEquals(count(markGroup(svg.slice(0, split), "line"), /<path\b/g), 2);
  assertEquals(count(markGroup(svg.slice(split), "line"), /<path\b/g), 2);
  assertThrows(() => lossComparisonFigure({}), ArgumentError, "histories");
  assertThrows(
    () => lossComparisonFigure({ a: { dFake: [1] } }),
    ArgumentError,
    "gGradNorm",
  );
});

Deno.test("toySamplesFigure and ringDataChart: one dot per point plus the mode diamonds", async () => {
  const svg = toySamplesFigure(
    { saturating: cloud(30), "non-saturating": cloud(20, 4) },
    ringCenters(1, 4),
  ).svg();
  assertTitled(svg, [
    "Where G's samples ended up (diamond: the data)",
    "saturating: samples after training",
    "non-saturating: samples after training",
  ]);
  assertEquals(count(svg, /<circle\b/g), 50);
  assertThrows(
    () => toySamplesFigure({ a: [[1, 2, 3]] as number[][] }, [[0, 0]]),
    ArgumentError,
  );
  const points = tf.tensor2d(cloud(40, 2, 0));
  const data = await assertNoTensorLeak(() =>
    ringDataChart(points, ringCenters(8, 2), { count: 25 }).svg()
  );
  assertTitled(data, ["The data: 8 Gaussians on a ring"]);
  assertEquals(count(data, /<circle\b/g), 25);
  assertThrows(
    () => ringDataChart(points, ringCenters(8, 2), { count: 41 }),
    ArgumentError,
    "count",
  );
  points.dispose();
});

Deno.test("ringSamplesFigure: a panel per run, subtitled with its ring quality", () => {
  const centers = ringCenters(8, 2);
  // All on mode 0 (collapsed) vs. 10 points on each of the 8 modes.
  const collapsed = cloud(40, 2, 0);
  const spread = centers.flatMap(([x, y]) => cloud(10, x, y));
  const svg = ringSamplesFigure({ "round 1": collapsed, "round 2": spread }, {
    title: "Samples over training",
    std: 0.05,
  }).svg();
  assertTitled(svg, ["Samples over training", "round 1", "round 2"]);
  assert(svg.includes("1/8 modes, 100% high quality"), "collapsed subtitle");
  assert(svg.includes("8/8 modes, 100% high quality"), "covered subtitle");
  assertEquals(count(svg, /<circle\b/g), 120);
  const withCenters = ringSamplesFigure({ a: spread }, {
    title: "t",
    std: 0.05,
    centroids: centers,
  }).svg();
  assertEquals(count(withCenters, /<circle\b/g), 80);
  // The diamonds are a second dot mark.
  assertEquals(count(withCenters, /aria-label="dot"/g), 2);
  assertEquals(count(svg, /aria-label="dot"/g), 2);
  assertThrows(
    () => ringSamplesFigure({ a: spread }, { title: "t", std: 0 }),
    ArgumentError,
    "std",
  );
});

Deno.test("modeSharesChart: 8 bars per run, heights = share of the run's samples", () => {
  const centers = ringCenters(8, 2);
  const onTwo = [
    ...cloud(30, ...centers[0] as [number, number]),
    ...cloud(
      10,
      ...centers[3] as [number, number],
    ),
  ];
  const svg = modeSharesChart({ "k=1": onTwo, "k=3": onTwo.slice(0, 20) }, {
    std: 0.05,
  }).svg();
  assertTitled(svg, [
    "Share of samples landing on each mode (high quality only)",
  ], ["share of samples", "schedule", "mode 7"]);
  assertEquals(barCount(svg), 16);
  assertThrows(
    () => modeSharesChart({ a: onTwo }, { std: NaN }),
    ArgumentError,
    "std",
  );
});

Deno.test("ganCurves: one panel per game curve", () => {
  const history = {
    step: [0, 1, 2],
    time: [0, 0.1, 0.2],
    dReal: [0.6, 0.55, 0.5],
    dFake: [0.4, 0.45, 0.5],
    dLoss: [1.2, 1.3, 1.38],
    gLoss: [0.9, 0.8, 0.7],
    gGradNorm: [1, 1, 1],
  };
  const svg = ganCurves(history, { title: "the game" }).svg();
  assertTitled(svg, ["the game"], ["dReal", "dFake", "dLoss", "gLoss"]);
  assert(!svg.includes("gGradNorm"), "only the four game curves");
  assertThrows(
    () => ganCurves({ step: [0], dReal: [1] }, { title: "x" }),
    ArgumentError,
  );
});

Deno.test("sampleQualityFigure: one Frechet bar and two precision/recall bars per set", () => {
  const scores = [
    {
      name: "noise",
      frechet: 99,
      precision: 0.4,
      recall: 0,
      inceptionScore: 1,
    },
    {
      name: "real",
      frechet: 1.2,
      precision: 0.9,
      recall: 0.94,
      inceptionScore: 6,
    },
    {
      name: "GAN",
      frechet: 88,
      precision: 0.8,
      recall: 0.1,
      inceptionScore: 1.1,
    },
  ];
  const svg = sampleQualityFigure(scores).svg();
  assertTitled(svg, [
    "Sample quality in the classifier's feature space",
    "Fréchet distance to the test set",
    "Precision and recall (k = 3)",
  ], ["lower is better", "share", "noise", "real"]);
  const split = svg.indexOf(">Precision and recall (k = 3)<");
  assertEquals(barCount(svg.slice(0, split)), 3);
  assertEquals(barCount(svg.slice(split)), 6);
  assertThrows(() => sampleQualityFigure([]), ArgumentError, "scores");
  assertThrows(
    () => sampleQualityFigure([{ ...scores[0], frechet: NaN }]),
    ArgumentError,
    "scores[0].frechet",
  );
});

Deno.test("largestBallsGrid: one picture of the chosen images with radius captions; no leak", async () => {
  const images = tf.tidy(() =>
    tf.linspace(0, 1, 5 * 16).reshape([5, 4, 4, 1]) as tf.Tensor4D
  );
  const largest = [{ index: 4, radius: 7.96 }, { index: 1, radius: 5.01 }];
  const svg = await assertNoTensorLeak(() =>
    largestBallsGrid(images, largest).svg()
  );
  assertTitled(svg, ["Real test images with the largest k-NN balls (k = 3)"]);
  assertEquals(count(svg, /<image\b/g), 1);
  // Captions may be shortened to the tile width.
  assert(svg.includes(">r = 8") && svg.includes(">r = 5"), "captions");
  assertThrows(
    () => largestBallsGrid(images, [{ index: 5, radius: 1 }]),
    ArgumentError,
    "largest[0].index",
  );
  assertThrows(() => largestBallsGrid(images, []), ArgumentError, "largest");
  images.dispose();
});
