import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  minArgminFigure,
  quantizerStepsFigure,
  vqvaeCodebookFigure,
  vqvaePriorFigure,
  vqvaeTrainingFigure,
  vqvaeVariantsFigure,
} from "../lib/figures/vqvae.ts";
import { assertEquals, assertNoTensorLeak, assertThrows } from "./assert.ts";
import { assertTitled, count } from "./svg.ts";

await initBackend({ quiet: true });

/** The inner markup of every `<g aria-label="...">` group (the marks of one kind). */
function markGroups(svg: string, label: string): string[] {
  return [
    ...svg.matchAll(
      new RegExp(`<g[^>]*aria-label="${label}"[^>]*>([\\s\\S]*?)</g>`, "g"),
    ),
  ].map((m) => m[1]);
}

const history = {
  step: [0, 1, 2, 3],
  recon: [1, 0.5, 0.3, 0.2],
  codebook: [0.1, 0.05, 0.02, 0.01],
  commitment: [0.1, 0.05, 0.02, 0.01],
  perplexity: [3, 4, 5, 6],
  used: [5, 6, 7, 8],
};

Deno.test("minArgminFigure: two panels of two lines each", () => {
  const x = [0.5, 1, 1.5, 2];
  const svg = minArgminFigure(
    x,
    { "f = min": [0.25, 1, 1.33, 1], "g = argmin": [1, 0, 2, 2] },
    { "df/dx": [1, 1, -0.9, -0.5], "dg/dx": [0, 0, 0, 0] },
  ).svg();
  assertTitled(svg, [
    "min is trainable, argmin is not",
    "f(x) = min{x, x², 2/x} and g(x) = argmin",
    "Their autodiff gradients",
  ], ["value", "gradient"]);
  const lines = markGroups(svg, "line");
  assertEquals(lines.length, 2);
  for (const g of lines) assertEquals(count(g, /<path\b/g), 2);
  assertThrows(
    () => minArgminFigure(x, { only: x }, { a: x, b: x }),
    ArgumentError,
    "values",
  );
  assertThrows(
    () => minArgminFigure(x, { a: x, b: x }, { a: x, b: [1, 2] }),
    ArgumentError,
  );
});

Deno.test("quantizerStepsFigure: one dot per vector, four roles", async () => {
  const h = tf.tensor2d([[0, 0], [1, 0.4], [3, 3]]);
  const e = tf.tensor2d([[1.5, 1.6], [2.2, 2.2]]);
  let svg = "";
  await assertNoTensorLeak(() => {
    svg = quantizerStepsFigure(h, [[0.1, 0.1], [1, 0.5], [2.8, 2.8]], e, [
      [0.5, 0.2],
      [3, 3],
    ]).svg();
  });
  assertTitled(svg, [
    "Codebook loss moves e to the mean of its h; commitment moves h toward e",
  ], ["dim 1", "dim 2", "h after half a commitment step", "e before"]);
  assertEquals(count(markGroups(svg, "dot")[0], /<circle\b/g), 3 + 3 + 2 + 2);
  assertThrows(
    () => quantizerStepsFigure(h, [[1, 2, 3]], e, e),
    ArgumentError,
    "hStepped",
  );
  assertThrows(() => quantizerStepsFigure([], h, e, e), ArgumentError, "h");
  tf.dispose([h, e]);
});

Deno.test("vqvaeTrainingFigure: loss terms and code usage panels", () => {
  const svg = vqvaeTrainingFigure(history, { numCodes: 16 }).svg();
  assertTitled(svg, [
    "VQ-VAE training",
    "Loss terms",
    "Code usage per batch (of K = 16)",
  ], ["mean squared error", "codes", "step"]);
  // Each panel: the raw curves (faint) and their smoothed versions.
  const paths = markGroups(svg, "line").map((g) => count(g, /<path\b/g));
  assertEquals(paths, [3, 3, 2, 2]);
  assertThrows(
    () => vqvaeTrainingFigure({ step: [0], recon: [1] }),
    ArgumentError,
  );
  assertThrows(
    () => vqvaeTrainingFigure(history, { numCodes: 0 }),
    ArgumentError,
    "numCodes",
  );
});

Deno.test("vqvaeCodebookFigure: one heatmap cell per entry, labelled tiles", () => {
  const codebook = tf.tensor2d([[1, -1, 0], [0.5, 0.2, -0.3]]);
  const tiles = tf.zeros([2, 28, 28, 1]);
  const svg = vqvaeCodebookFigure(codebook, tiles).svg();
  assertTitled(svg, [
    "The learned codebook",
    "Codebook E (2 x 3)",
    "Decoder output of a grid filled with code k",
  ], ["dimension", "code"]);
  assertEquals(count(markGroups(svg, "cell")[0], /<rect\b/g), 6);
  assertEquals(count(svg, /<image\b/g), 1);
  const three = tf.zeros([3, 28, 28, 1]);
  assertThrows(
    () => vqvaeCodebookFigure(codebook, three),
    ArgumentError,
    "tiles",
  );
  assertThrows(
    () => vqvaeCodebookFigure(tf.zeros([2]) as unknown as tf.Tensor2D, tiles),
    ArgumentError,
    "codebook",
  );
  tf.dispose([codebook, tiles, three]);
});

Deno.test("vqvaeVariantsFigure: one line per run in each panel, cut to steps", () => {
  const runs = { "gradient + restart": history, "EMA": history };
  const svg = vqvaeVariantsFigure(runs, 3).svg();
  assertTitled(svg, [
    "Codebook variants",
    "Codes used per batch",
    "Reconstruction error",
  ], ["codes (of 64)", "MSE", "step"]);
  const lines = markGroups(svg, "line");
  assertEquals(lines.map((g) => count(g, /<path\b/g)), [2, 2]);
  // Three points per curve: two segments, i.e. "M" then two "L" commands.
  const d = lines[0].match(/ d="([^"]*)"/)![1];
  assertEquals(count(d, /L/g), 2);
  assertThrows(() => vqvaeVariantsFigure(runs, 0), ArgumentError, "steps");
  assertThrows(() => vqvaeVariantsFigure({}, 3), ArgumentError, "runs");
  assertThrows(
    () => vqvaeVariantsFigure({ a: { used: [1] } }, 3),
    ArgumentError,
    "recon",
  );
});

Deno.test("vqvaePriorFigure: NLL curve, two bars, a sample grid", () => {
  const samples = tf.zeros([4, 28, 28, 1]);
  const prior = { step: [0, 1, 2], bitsPerImage: [250, 220, 200] };
  const svg = vqvaePriorFigure(prior, { bound: 294, testBits: 190 }, samples)
    .svg();
  assertTitled(svg, [
    "Phase II: the learned prior",
    "Prior training: NLL of each batch",
    "Bits per image",
    "Decoded samples of the learned prior",
  ], ["bits per image", "bits", "uniform prior (rate bound)"]);
  assertEquals(count(markGroups(svg, "bar")[0], /<rect\b/g), 2);
  assertEquals(count(svg, /<image\b/g), 1);
  assertThrows(
    () => vqvaePriorFigure(prior, { bound: NaN, testBits: 1 }, samples),
    ArgumentError,
    "bound",
  );
  samples.dispose();
});
