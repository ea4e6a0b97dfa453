import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import {
  denoisingChart,
  estimatorHistograms,
  estimatorVarianceChart,
  latentSpacesFigure,
  principalAnglesChart,
  priorSamplesFigure,
  rateByDimHeatmap,
  rateDistortionChart,
  stackedImageGrid,
  subspaceBasesFigure,
  testMSEChart,
} from "../lib/figures/vae.ts";
import {
  type BetaSweepPoint,
  compareGradientEstimators,
  gradientVarianceBySamples,
} from "../lib/vae.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";
import { count } from "./svg.ts";

await initBackend({ quiet: true });

/** The title, and each label, appear as SVG text. */
function assertTexts(svg: string, title: string, labels: string[] = []): void {
  assert(svg.startsWith("<svg"), "not an SVG");
  assert(svg.includes(`<title>${title}</title>`), `title "${title}" missing`);
  for (const l of labels) assert(svg.includes(l), `label "${l}" missing`);
}

/** Number of embedded PNG images (image grids). */
const images = (svg: string) => count(svg, /<image\b/g);

const sweep: BetaSweepPoint[] = [
  { beta: 0.1, rate: 70, mse: 0.04, rateByDim: [40, 30], activeUnits: 2 },
  { beta: 1, rate: 20, mse: 0.05, rateByDim: [15, 5], activeUnits: 2 },
  {
    beta: 100,
    rate: 0.01,
    mse: 0.12,
    rateByDim: [0.005, 0.005],
    activeUnits: 0,
  },
  { beta: 300, rate: 0.0, mse: 0.12, rateByDim: [0, 0], activeUnits: 0 },
];

Deno.test("principalAnglesChart: one bar per angle, in degrees", () => {
  const svg = principalAnglesChart([0, Math.PI / 4, Math.PI / 2]).svg();
  assertTexts(
    svg,
    "Principal angles: linear autoencoder vs top-3 PCA subspace",
    [
      "principal angle",
      "degrees",
      "θ3",
    ],
  );
  const bars = svg.match(/<g[^>]*aria-label="bar"[^>]*>[\s\S]*?<\/g>/)![0];
  assertEquals(count(bars, /<rect\b/g), 3);
  assert(svg.includes(">90<"), "the 90° tick is missing");
  assertThrows(() => principalAnglesChart([]), ArgumentError, "angles");
  assertThrows(() => principalAnglesChart([NaN]), ArgumentError, "angles");
});

Deno.test("subspaceBasesFigure: two image grids, no tensor leak", async () => {
  const basis = [Array(196).fill(0.1), Array(196).fill(-0.2)];
  const chart = await assertNoTensorLeak(() =>
    subspaceBasesFigure(basis, basis)
  );
  const svg = chart.svg();
  assertTexts(svg, "Same subspace, different bases", [
    "PCA components",
    "Linear AE decoder rows",
  ]);
  assertEquals(images(svg), 2);
  assertThrows(
    () => subspaceBasesFigure([], basis),
    ArgumentError,
    "pcaComponents",
  );
});

Deno.test("estimatorHistograms and estimatorVarianceChart draw the estimators", () => {
  const toy = {
    f: (z: number) => (z - 2) ** 2,
    df: (z: number) => 2 * (z - 2),
  };
  const at = { mu: 0.5, logSigma: Math.log(0.8), trials: 200, seed: 1 };
  const svg = estimatorHistograms(compareGradientEstimators(toy, at), {
    title: "Spread",
  }).svg();
  assertTexts(svg, "Spread", [
    "reparameterization",
    "score-function",
    "one-sample estimate of ∂/∂μ",
  ]);
  assertEquals(count(svg, /aria-label="rect"/g), 2);
  assertThrows(
    () => estimatorHistograms({}, { title: "x" }),
    ArgumentError,
    "estimates",
  );
  assertThrows(
    () =>
      estimatorHistograms(compareGradientEstimators(toy, at), {
        title: "x",
        estimators: ["nope" as never],
      }),
    ArgumentError,
    "nope",
  );

  const counts = [1, 4, 16];
  const line = estimatorVarianceChart(
    gradientVarianceBySamples(toy, at, counts),
    counts,
  ).svg();
  assertTexts(line, "Variance of the ∂/∂μ estimate vs samples per estimate", [
    "samples S",
    "variance",
    "score-function-baseline",
  ]);
  const lines = line.match(/<g[^>]*aria-label="line"[^>]*>[\s\S]*?<\/g>/)![0];
  assertEquals(count(lines, /<path\b/g), 3);
  assertThrows(
    () => estimatorVarianceChart({ reparameterization: [1] }, []),
    ArgumentError,
    "sampleCounts",
  );
});

Deno.test("latentSpacesFigure: one scatter per model, a dot per code", async () => {
  const a = tf.tensor2d([[0, 0], [1, 1], [2, 0]]);
  const labels = tf.tensor1d([0, 1, 1], "int32");
  const svg = (await assertNoTensorLeak(() =>
    latentSpacesFigure({
      "AE codes": a,
      "VAE means": [[0, 1], [1, 0], [2, 2]],
    }, {
      labels,
      classNames: ["cat", "dog"],
    })
  )).svg();
  assertTexts(svg, "2-D latent spaces of the test set", [
    "AE codes",
    "VAE means",
    "z₁",
    "z₂",
    "dog",
  ]);
  assertEquals(count(svg, /<circle\b/g), 6);
  assertThrows(
    () => latentSpacesFigure({}, { labels: [] }),
    ArgumentError,
    "codes",
  );
  tf.dispose([a, labels]);
});

Deno.test("stackedImageGrid and priorSamplesFigure free what they create", async () => {
  const x = tf.ones([3, 28, 28, 1]);
  const model = { decode: (z: tf.Tensor) => tf.zeros([z.shape[0], 28, 28, 1]) };
  const grid = await assertNoTensorLeak(() =>
    stackedImageGrid(() => [x, x.mul(0.5)], { title: "Rows", cols: 3 })
  );
  assertTexts(grid.svg(), "Rows");
  assertEquals(images(grid.svg()), 1);
  assert(!x.isDisposed, "a tensor made before build must survive");
  assertThrows(
    () => stackedImageGrid(() => [], { title: "Rows" }),
    ArgumentError,
    "non-empty",
  );
  assertThrows(
    () => stackedImageGrid("no" as never, { title: "Rows" }),
    ArgumentError,
    "build",
  );

  const z = tf.zeros([4, 2]);
  const prior = await assertNoTensorLeak(() =>
    priorSamplesFigure({ AE: model, VAE: model }, z)
  );
  assertTexts(prior.svg(), "Samples from the prior", [
    "AE decoder on z ~ N(0, I)",
    "VAE decoder on z ~ N(0, I)",
  ]);
  assertEquals(images(prior.svg()), 2);
  assertThrows(() => priorSamplesFigure({}, z), ArgumentError, "decoders");
  assertThrows(
    () => priorSamplesFigure({ AE: model }, tf.zeros([4])),
    ArgumentError,
    "z",
  );
  tf.dispose([x, z]);
});

Deno.test("testMSEChart: one bar per model", () => {
  const svg = testMSEChart({ "AE 2-D": 0.05, "VAE 2-D": 0.06, "AE 16-D": 0.03 })
    .svg();
  assertTexts(svg, "Test reconstruction MSE", [
    "model",
    "MSE per pixel",
    "AE 16-D",
  ]);
  const bars = svg.match(/<g[^>]*aria-label="bar"[^>]*>[\s\S]*?<\/g>/)![0];
  assertEquals(count(bars, /<rect\b/g), 3);
  assertThrows(() => testMSEChart({}), ArgumentError, "testMSE");
});

Deno.test("rateDistortionChart: a dot per model, collapsed models share one label", () => {
  const svg = rateDistortionChart(sweep, { steps: 60 }).svg();
  assertTexts(svg, "Rate–distortion curve of the β-VAE (16-D code, test set)", [
    "rate: KL(q(z|x) ‖ p(z)) in nats",
    "distortion: MSE per pixel",
    "trained for 60 steps",
    "β=100, 300: collapsed",
    "β=0.1",
  ]);
  assertEquals(count(svg, /<circle\b/g), 4);
  const labels = svg.match(/<g[^>]*aria-label="text"[^>]*>[\s\S]*?<\/g>/)![0];
  assertEquals(count(labels, /<text\b/g), 3);
  assertThrows(
    () => rateDistortionChart([], { steps: 1 }),
    ArgumentError,
    "points",
  );
});

Deno.test("rateByDimHeatmap: a cell per (beta, dimension)", () => {
  const svg = rateByDimHeatmap(sweep).svg();
  assertTexts(svg, "KL per latent dimension (nats) for each β", [
    "latent dimension",
    "β=300",
  ]);
  const cells = svg.match(/<g[^>]*aria-label="cell"[^>]*>[\s\S]*?<\/g>/)![0];
  assertEquals(count(cells, /<rect\b/g), 8);
  assertThrows(
    () => rateByDimHeatmap([{ beta: 1 } as never]),
    ArgumentError,
    "points",
  );
});

Deno.test("denoisingChart: three lines over the noise levels", () => {
  const d = (m: number) => ({
    ae: { mse: m, noisyMse: 2 * m },
    vae: { mse: 1.1 * m, noisyMse: 2 * m },
  });
  const svg = denoisingChart([0, 0.5], [d(0.03), d(0.05)]).svg();
  assertTexts(svg, "Error against the clean test images", [
    "noise standard deviation",
    "MSE per pixel",
    "noisy input",
  ]);
  const lines = svg.match(/<g[^>]*aria-label="line"[^>]*>[\s\S]*?<\/g>/)![0];
  assertEquals(count(lines, /<path\b/g), 3);
  assertThrows(
    () => denoisingChart([0, 0.5], [d(0.03)]),
    ArgumentError,
    "one entry per noise level",
  );
});
