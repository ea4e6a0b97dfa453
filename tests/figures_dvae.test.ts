import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  dvaeCodeUsageFigure,
  dvaeVsVqFigure,
  estimatorTradeoffFigure,
  gumbelMaxFigure,
  gumbelSimplexFigure,
  gumbelTemperatureFigure,
} from "../lib/figures/dvae.ts";
import {
  assert,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";
import { assertTitled, count, markGroups } from "./svg.ts";

await initBackend({ quiet: true });

Deno.test("gumbelMaxFigure: two bars per class, draws and chi-square in the titles", () => {
  const svg = gumbelMaxFigure([0.1, 0.2, 0.7], [0.2, 0.2, 0.6], {
    draws: 100_000,
    chi2: 3.2,
  }).svg();
  assertTitled(svg, [
    "Gumbel-max: 100,000 samples against pi",
    "chi-square 3.20 with 2 degrees of freedom",
  ], ["class k", "probability"]);
  assertEquals(count(markGroups(svg, "bar"), /<rect/g), 6);
  assert(svg.includes("Gumbel-max frequency"), "legend entry missing");
  assertThrows(
    () => gumbelMaxFigure([0.5, 0.5], [0.2, 0.2, 0.6], { draws: 10, chi2: 1 }),
    ArgumentError,
    "gumbelMaxFigure",
    "same length",
  );
  assertThrows(
    () => gumbelMaxFigure([0.5, 0.5], [0.5, 0.5], { draws: 0, chi2: 1 }),
    ArgumentError,
    "draws",
  );
  assertThrows(
    () => gumbelMaxFigure([0.5, NaN], [0.5, 0.5], { draws: 2, chi2: 1 }),
    ArgumentError,
    "frequencies[1]",
  );
});

Deno.test("gumbelSimplexFigure: one panel per tau, one dot per sample", () => {
  const samples = [
    [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
    [[1 / 3, 1 / 3, 1 / 3], [0.2, 0.3, 0.5]],
  ];
  const svg = gumbelSimplexFigure([0.1, 5], samples, [0.2, 0.3, 0.5]).svg();
  assertTitled(svg, [
    "Gumbel-softmax samples on the simplex, pi = (0.2, 0.3, 0.5)",
    "corners: class 1 bottom left, class 2 bottom right, class 3 top",
    "tau = 0.1",
    "tau = 5",
  ]);
  assertEquals(count(markGroups(svg, "dot"), /<circle/g), 5);
  assertEquals(count(markGroups(svg, "line"), /<path/g), 2);
  assertThrows(
    () => gumbelSimplexFigure([0.1], samples, [0.2, 0.3, 0.5]),
    ArgumentError,
    "gumbelSimplexFigure",
    "same length",
  );
  assertThrows(
    () => gumbelSimplexFigure([1], [[[0.5, 0.5]]], [0.5, 0.5]),
    ArgumentError,
    "3 coordinates",
  );
});

Deno.test("gumbelTemperatureFigure: two lines against a log tau axis", () => {
  const svg = gumbelTemperatureFigure([
    { tau: 0.1, meanGap: 0.05, maxCoord: 0.95 },
    { tau: 1, meanGap: 0.2, maxCoord: 0.6 },
    { tau: 10, meanGap: 0.3, maxCoord: 0.35 },
  ]).svg();
  assertTitled(svg, ["What the temperature does"], [
    "temperature tau",
    "value",
  ]);
  assertEquals(count(markGroups(svg, "line"), /<path/g), 2);
  assert(svg.includes("E[max_k c_k] (1 = one-hot)"), "legend entry missing");
  assertThrows(
    () => gumbelTemperatureFigure([]),
    ArgumentError,
    "gumbelTemperatureFigure",
    "stats",
  );
});

Deno.test("estimatorTradeoffFigure: bias, variance and the REINFORCE reference", () => {
  const m = (mean: number[], totalVariance: number) => ({
    mean,
    variance: [],
    standardError: [],
    totalVariance,
  });
  const exact = [0.1, -0.1, 0];
  const svg = estimatorTradeoffFigure(
    [0.5, 1],
    [m([0.1, -0.1, 0.01], 2), m([0.2, -0.1, 0], 1)],
    m([0.1, -0.1, 0], 3),
    { exact, samples: 400 },
  ).svg();
  assertTitled(svg, [
    "Bias and variance of single-sample gradient estimates",
    "toy objective, K = 3, 400 draws per point",
  ], ["temperature tau", "squared bias / variance"]);
  assertEquals(count(markGroups(svg, "line"), /<path/g), 3);
  assertThrows(
    () => estimatorTradeoffFigure([0.5], [], m([0], 1), { exact, samples: 4 }),
    ArgumentError,
    "estimatorTradeoffFigure",
    "same length",
  );
  assertThrows(
    () =>
      estimatorTradeoffFigure([0.5], [m([1, 2], 1)], m([0], 1), {
        exact,
        samples: 4,
      }),
    ArgumentError,
    "same length",
  );
  assertThrows(
    () =>
      estimatorTradeoffFigure([1], [m([0], 1)], m([0], 1), {
        exact: [0],
        samples: 0,
      }),
    ArgumentError,
    "samples",
  );
});

Deno.test("dvaeCodeUsageFigure: one cell per (variable, class)", () => {
  const svg = dvaeCodeUsageFigure([[0.5, 0.5, 0], [0, 1, 0]]).svg();
  assertTitled(svg, [
    "dVAE code usage on the test set",
    "fraction of images choosing class k for variable n",
  ], ["class k", "variable n"]);
  assertEquals(count(markGroups(svg, "cell"), /<rect/g), 6);
  assertThrows(
    () => dvaeCodeUsageFigure([[0.5, 0.5], [1]]),
    ArgumentError,
    "heatmap",
  );
});

Deno.test("dvaeVsVqFigure: one image of three rows, no tensor left behind", async () => {
  const x = tf.zeros([4, 28, 28, 1]);
  const chart = await assertNoTensorLeak(() =>
    dvaeVsVqFigure(x, x, x, { vqSteps: 20 })
  );
  const svg = chart.svg();
  assertTitled(svg, [
    "Same test images: dVAE vs VQ-VAE",
    "row 1: originals; row 2: dVAE (most likely code); row 3: VQ-VAE (20 steps)",
  ]);
  assertEquals(count(svg, /<image/g), 1);
  const y = tf.zeros([3, 28, 28, 1]);
  assertThrows(
    () => dvaeVsVqFigure(x, y, x, { vqSteps: 20 }),
    ArgumentError,
    "dvaeVsVqFigure",
    "dvaeRec",
  );
  assertThrows(
    () => dvaeVsVqFigure(x, x, x, { vqSteps: -1 }),
    ArgumentError,
    "vqSteps",
  );
  tf.dispose([x, y]);
});
