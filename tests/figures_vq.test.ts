import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { ArgumentError } from "../lib/validate.ts";
import { lloydSnapshots } from "../lib/vq.ts";
import {
  fashionCodebookFigure,
  lloydFigure,
  seedingFigure,
  vqCellsFigure,
  vqEMFigure,
  vqImageSamplesFigure,
  vqSamples2dFigure,
} from "../lib/figures/vq.ts";
import {
  assert,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";
import { assertTitled, count, markGroup } from "./svg.ts";

await initBackend({ quiet: true });

const points = [[0, 0], [0, 1], [1, 0], [5, 5], [5, 6], [6, 5], [9, 0]];
const codes = [0, 0, 0, 1, 1, 1, 2];
const codebook = [[0.3, 0.3], [5.3, 5.3], [9, 0]];

Deno.test("vqCellsFigure: one dot per point, three cells, three diamonds", () => {
  const svg = vqCellsFigure(points, codebook, codes).svg();
  assertTitled(
    svg,
    [
      "Vector quantization with three centroids",
      "each shaded Voronoi cell is mapped to its centroid (diamond)",
    ],
    ["x₁", "x₂", "code z"],
  );
  assertEquals(count(svg, /<circle\b/g), points.length);
  assertEquals(count(markGroup(svg, "voronoi"), /<path\b/g), 3);
  const dots = svg.match(/<g[^>]*aria-label="dot"[^>]*>[\s\S]*?<\/g>/g)!;
  assertEquals(count(dots[1], /<path\b/g), 3); // the codewords (diamonds)
  const many = Array.from({ length: 12 }, (_, i) => [i, i % 3]);
  assert(
    vqCellsFigure(many, many, many.map((_, i) => i)).svg().includes(
      ">Vector quantization with 12 centroids</text>",
    ),
  );
  assertThrows(
    () => vqCellsFigure(points, [], codes),
    ArgumentError,
    "vqCellsFigure",
    "centroids",
  );
  assertThrows(
    () => vqCellsFigure(points, codebook, [0, 1]),
    ArgumentError,
    "labels",
  );
});

Deno.test("lloydFigure: one Voronoi panel per snapshot", () => {
  const snaps = lloydSnapshots(points, [[0, 0], [1, 1], [2, 2]], [1, 2, 4]);
  const svg = lloydFigure(points, snaps).svg();
  assertTitled(
    svg,
    [
      "Lloyd's iterations from a bad start",
      "after 1 assignment step",
      "after 2 assignment steps",
      "after 4 assignment steps",
      `inertia ${snaps[2].inertia.toFixed(0)}`,
    ],
    ["x₁", "x₂"],
  );
  assertEquals(count(svg, /<circle\b/g), 3 * points.length);
  assertThrows(
    () => lloydFigure(points, []),
    ArgumentError,
    "lloydFigure",
    "snapshots",
  );
});

Deno.test("seedingFigure: grouped bars, one per seed and seeding", () => {
  const svg = seedingFigure([0, 1, 2], {
    "k-means++": [10, 11, 10],
    random: [12, 15, 11],
  }).svg();
  assertTitled(
    svg,
    ["Final inertia of single runs, by seed", "k-means++", "random"],
    ["seed", "final inertia", "seeding"],
  );
  const barSection = svg.slice(
    svg.indexOf('aria-label="bar"'),
    svg.indexOf('aria-label="rule"'),
  );
  assertEquals(count(barSection, /<rect\b/g), 6);
  assertThrows(
    () => seedingFigure([0, 1], {}),
    ArgumentError,
    "seedingFigure",
    "inertias",
  );
  assertThrows(
    () => seedingFigure([0, 1], { random: [1, 2, 3] }),
    ArgumentError,
    "bars",
  );
});

Deno.test("vqEMFigure: one line of the log-likelihood", () => {
  const svg = vqEMFigure([-5, -4.6, -4.5, -4.48]).svg();
  assertTitled(
    svg,
    ["EM for the shallow VQ-VAE (identity covariance, uniform prior)"],
    ["EM iteration", "(1/n) Σ ln P(x)"],
  );
  assertEquals(count(markGroup(svg, "line"), /<path\b/g), 1);
  assertThrows(() => vqEMFigure([]), ArgumentError, "lineChart");
});

Deno.test("vqSamples2dFigure: data and samples side by side", async () => {
  const samples = tf.tensor2d([[0, 0.5], [5, 5.5], [9, 1], [1, 1]]);
  const z = tf.tensor1d([0, 1, 2, 0], "int32");
  try {
    const svg = (await assertNoTensorLeak(() =>
      vqSamples2dFigure({ points, labels: codes }, { samples, z })
    )).svg();
    assertTitled(
      svg,
      [
        "Sampling from the shallow VQ-VAE in 2D",
        "data",
        "samples z ~ U, x ~ N(μ_z, I)",
      ],
      ["x₁", "x₂"],
    );
    assertEquals(count(svg, /<circle\b/g), points.length + 4);
    assertThrows(
      () =>
        vqSamples2dFigure(
          { points, labels: codes },
          {} as { samples: number[][]; z: number[] },
        ),
      ArgumentError,
      "vqSamples2dFigure",
    );
  } finally {
    tf.dispose([samples, z]);
  }
});

Deno.test("vqImageSamplesFigure and fashionCodebookFigure: three image rows", async () => {
  const a = tf.randomUniform([8, 784], 0, 1, "float32", 1) as tf.Tensor2D;
  const b = tf.randomUniform([16, 784], 0, 1, "float32", 2) as tf.Tensor2D;
  try {
    const gen = (await assertNoTensorLeak(() => vqImageSamplesFigure(a, b, b)))
      .svg();
    assertTitled(
      gen,
      [
        "Generating Fashion-MNIST with the shallow VQ-VAE",
        "the 8 means μ_z (identity covariance, uniform prior)",
        "samples x ~ N(μ_z, I): unit noise drowns the image",
        "samples from a diagonal GMM: centroid + independent pixel noise",
      ],
    );
    assertEquals(count(gen, /<image\b/g), 3);
    const code = fashionCodebookFigure(a, b, b).svg();
    assertTitled(
      code,
      [
        "Vector quantization of Fashion-MNIST",
        "the codebook: 8 k-means centroids",
        "originals",
        "reconstructions by the nearest centroid (3 bits each)",
      ],
    );
    assertEquals(count(code, /<image\b/g), 3);
    assertThrows(
      () => vqImageSamplesFigure([], b, b),
      ArgumentError,
      "vqImageSamplesFigure",
      "means",
    );
    assertThrows(
      () => fashionCodebookFigure(a, tf.zeros([2, 5]), b),
      ArgumentError,
      "imageGrid",
    );
  } finally {
    tf.dispose([a, b]);
  }
});
