import { makeTestDir } from "./temp.ts";
import * as tf from "@tensorflow/tfjs";
import * as Plot from "@observablehq/plot";
import { initBackend } from "../lib/backend.ts";
import {
  bars,
  Chart,
  column,
  heatmap,
  histogram,
  imageGrid,
  imageGridPNG,
  lineChart,
  plot,
  row,
  scatter,
  trainingCurves,
  vectorField,
  voronoiPlot,
} from "../lib/plot.ts";
import { decodePNG, decodePNGHeader } from "../lib/png.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";
import { count, markGroup } from "./svg.ts";

await initBackend({ quiet: true });

// ---------------------------------------------------------------------------
// Helpers

/**
 * A small XML well-formedness check: balanced tags, no stray "<" or "&".
 * (Deno has no XML parser; linkedom's parser is too forgiving to test with.)
 */
function assertWellFormedSVG(svg: string): void {
  assert(
    svg.startsWith("<svg"),
    `SVG must start with <svg, got ${svg.slice(0, 20)}`,
  );
  assert(
    svg.slice(0, 200).includes('xmlns="http://www.w3.org/2000/svg"'),
    "the root <svg> needs the SVG xmlns",
  );
  const stack: string[] = [];
  const tag = /<(\/?)([a-zA-Z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (const m of svg.matchAll(tag)) {
    const between = svg.slice(last, m.index);
    assert(
      !between.includes("<"),
      `malformed markup near ${JSON.stringify(between.slice(0, 60))}`,
    );
    assert(
      !/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i.test(between),
      `unescaped & in text ${JSON.stringify(between.slice(0, 60))}`,
    );
    last = m.index! + m[0].length;
    const [, close, name, , selfClose] = m;
    if (selfClose) continue;
    if (close) {
      const open = stack.pop();
      assertEquals(open, name, `</${name}> closes <${open}>`);
    } else {
      stack.push(name);
    }
  }
  assertEquals(stack, [], "unclosed tags");
  assert(!svg.slice(last).includes("<"), "malformed markup at the end");
}

function assertTitleAndLabels(
  svg: string,
  title: string,
  labels: string[],
): void {
  assert(svg.includes(`class="chart-title"`), "no title element");
  assert(
    svg.includes(`>${title}</text>`),
    `title "${title}" not drawn as <text>`,
  );
  for (const label of labels) {
    assert(svg.includes(label), `axis label "${label}" missing`);
  }
}

function clusters(n: number): { points: number[][]; labels: number[] } {
  const centres = [[0, 0], [4, 1], [1, 4]];
  const points: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const k = i % 3;
    labels.push(k);
    points.push([
      centres[k][0] + Math.sin(i * 7.1),
      centres[k][1] + Math.cos(i * 3.3),
    ]);
  }
  return { points, labels };
}

function pngFromSVG(svg: string): Uint8Array {
  const m = svg.match(/href="data:image\/png;base64,([A-Za-z0-9+/=]+)"/);
  assert(m, "no <image> with a data:image/png;base64 href");
  return Uint8Array.from(atob(m[1]), (c) => c.charCodeAt(0));
}

// ---------------------------------------------------------------------------
// Chart basics

Deno.test("every helper requires a non-empty title", () => {
  const pts = [[0, 0], [1, 1]];
  const cases: [string, (o: never) => unknown][] = [
    ["scatter", (o) => scatter(pts, o)],
    ["voronoiPlot", (o) => voronoiPlot(pts, pts, o)],
    ["lineChart", (o) => lineChart({ a: [1, 2] }, o)],
    ["trainingCurves", (o) => trainingCurves({ loss: [1, 2] }, o)],
    ["histogram", (o) => histogram([1, 2, 3], o)],
    ["bars", (o) => bars(["a"], [1], o)],
    ["imageGrid", (o) => imageGrid([[[0]]], o)],
    ["heatmap", (o) => heatmap([[1]], o)],
    ["vectorField", (o) => vectorField(pts, pts, o)],
    ["plot", (o) => plot(o)],
    ["row", (o) => row([], o)],
    ["column", (o) => column([], o)],
  ];
  for (const [name, make] of cases) {
    assertThrows(() => make({} as never), ArgumentError, name, "title");
    assertThrows(
      () => make({ title: "  " } as never),
      ArgumentError,
      name,
      "non-empty",
    );
    assertThrows(() => make(undefined as never), ArgumentError, name, "title");
  }
});

Deno.test("svg() is a standalone, well-formed SVG with the title inside; Jupyter shows it", () => {
  const chart = lineChart({ loss: [3, 2, 1] }, {
    title: 'Loss <&> "quoted"',
    subtitle: "a & b",
  });
  const svg = chart.svg();
  assertWellFormedSVG(svg);
  assert(
    svg.includes("Loss &lt;&amp;&gt; &quot;quoted&quot;"),
    "title not escaped",
  );
  assert(svg.includes("<title>"), "accessible <title> missing");
  assert(svg.includes("a &amp; b"), "subtitle missing");
  const root = svg.match(/^<svg[^>]*>/)![0];
  assert(
    root.includes(`width="${chart.width}"`) &&
      root.includes(`height="${chart.height}"`),
  );
  const bundle =
    (chart as unknown as Record<symbol, () => Record<string, string>>)[
      Symbol.for("Jupyter.display")
    ]();
  assertEquals(bundle["image/svg+xml"], svg);
  assert(bundle["text/plain"].includes("Loss"));
  assert(chart.html().includes(svg));
});

Deno.test("save() writes SVG and refuses to overwrite unless asked", async () => {
  const dir = await makeTestDir();
  try {
    const path = `${dir}/fig.svg`;
    const a = lineChart({ a: [1, 2] }, { title: "First" });
    const b = lineChart({ b: [2, 1] }, { title: "Second" });
    a.save(path);
    const text = Deno.readTextFileSync(path);
    assert(text.startsWith("<?xml"));
    assert(text.includes(">First</text>"));
    assertThrows(
      () => b.save(path),
      ArgumentError,
      "Chart.save",
      "refusing to overwrite",
      "overwrite: true",
    );
    assert(
      Deno.readTextFileSync(path).includes(">First</text>"),
      "file was clobbered",
    );
    b.save(path, { overwrite: true });
    assert(Deno.readTextFileSync(path).includes(">Second</text>"));
    a.save(`${dir}/fig.html`);
    assert(Deno.readTextFileSync(`${dir}/fig.html`).startsWith("<div"));
    assertThrows(
      () => a.save(`${dir}/fig.png`),
      ArgumentError,
      ".svg or .html",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// Scatter / Voronoi

Deno.test("scatter draws one circle per point, centroids, legend and labels", async () => {
  const { points, labels } = clusters(60);
  const centroids = [[0, 0], [4, 1], [1, 4]];
  const chart = await assertNoTensorLeak(() =>
    scatter(points, {
      labels,
      centroids,
      classNames: ["zero", "one", "two"],
      title: "Clusters",
      xLabel: "feature A",
      yLabel: "feature B",
    })
  );
  assert(chart instanceof Chart);
  const svg = chart.svg();
  assertWellFormedSVG(svg);
  assertTitleAndLabels(svg, "Clusters", ["feature A", "feature B"]);
  assertEquals(count(svg, /<circle\b/g), 60);
  // Centroids are diamonds (paths), outlined in black.
  const dots = svg.match(/<g[^>]*aria-label="dot"[^>]*>[\s\S]*?<\/g>/g)!;
  assertEquals(dots.length, 2);
  assertEquals(count(dots[1], /<path\b/g), 3);
  assert(dots[1].includes('stroke="black"'));
  for (const name of ["zero", "one", "two"]) {
    assert(svg.includes(`>${name}</text>`), `legend entry ${name} missing`);
  }
  assertEquals(count(svg, /class="swatch"/g), 3);
});

Deno.test("scatter accepts tensors without leaking and rejects bad shapes", async () => {
  const pts = tf.tensor2d([[0, 0], [1, 1], [2, 0]]);
  const lab = tf.tensor1d([0, 1, 1], "int32");
  try {
    const svg = (await assertNoTensorLeak(() =>
      scatter(pts, { labels: lab, title: "Tensor input" })
    )).svg();
    assertEquals(count(svg, /<circle\b/g), 3);
    assertThrows(
      () =>
        scatter(tf.zeros([3, 3]) as tf.Tensor2D, { title: "t" }),
      ArgumentError,
      "scatter",
      "points",
      "[n, 2]",
    );
    assertThrows(
      () => scatter(pts, { title: "t", labels: [0, 1] }),
      ArgumentError,
      "labels",
      "one entry per point (3)",
    );
    assertThrows(
      () =>
        scatter(pts, { title: "t", labels: [0, 1, 5], classNames: ["a", "b"] }),
      ArgumentError,
      "classNames",
    );
    assertThrows(
      () => scatter([[0, 0], [1]], { title: "t" }),
      ArgumentError,
      "rectangular",
    );
    assertThrows(
      () => scatter(pts, { title: "t", voronoi: true }),
      ArgumentError,
      "centroids",
    );
  } finally {
    tf.dispose([pts, lab]);
  }
});

Deno.test("voronoiPlot draws the centroids' cells around the points", () => {
  const { points, labels } = clusters(30);
  const svg = voronoiPlot(points, [[0, 0], [4, 1], [1, 4]], {
    labels,
    title: "Voronoi",
  }).svg();
  assertWellFormedSVG(svg);
  assertEquals(count(markGroup(svg, "voronoi"), /<path\b/g), 3);
  assertEquals(count(svg, /<circle\b/g), 30);
  // Without labels the cells are drawn as a mesh.
  const mesh = voronoiPlot(points, [[0, 0], [4, 1]], { title: "Mesh" }).svg();
  assert(mesh.includes('aria-label="voronoi mesh"'));
  assertThrows(
    () => voronoiPlot(points, undefined as never, { title: "x" }),
    ArgumentError,
    "voronoiPlot",
    "centroids",
  );
});

// ---------------------------------------------------------------------------
// Lines and training curves

Deno.test("lineChart draws one path per series with a legend", () => {
  const chart = lineChart(
    { "straight-through": [0.5, 0.4, 0.3], "Gumbel-softmax": [0.2, 0.25, 0.6] },
    {
      x: [0.1, 1, 10],
      logX: true,
      title: "Gradient error",
      xLabel: "temperature",
      yLabel: "error",
    },
  );
  const svg = chart.svg();
  assertWellFormedSVG(svg);
  assertTitleAndLabels(svg, "Gradient error", ["temperature", "error"]);
  assertEquals(count(markGroup(svg, "line"), /<path\b/g), 2);
  assert(
    svg.includes(">straight-through</text>") &&
      svg.includes(">Gumbel-softmax</text>"),
  );
  assertThrows(
    () => lineChart({ a: [1, 2] }, { title: "t", x: [1, 2, 3] }),
    ArgumentError,
    "lineChart",
    "options.x has 3",
  );
  assertThrows(
    () => lineChart({ a: [1, 0] }, { title: "t", logY: true }),
    ArgumentError,
    "positive",
  );
  assertThrows(
    () => lineChart([1, 2] as never, { title: "t" }),
    ArgumentError,
    "series",
  );
  assertThrows(
    () => lineChart({}, { title: "t" }),
    ArgumentError,
    "at least one",
  );
  // NaN (a diverged loss) is a gap, not an error.
  lineChart({ a: [1, NaN, 2] }, { title: "gap" });
});

Deno.test("trainingCurves accepts both history formats, smooths and splits scales", () => {
  const step = Array.from({ length: 50 }, (_, i) => i * 10);
  const loss = step.map((s) => 2 * Math.exp(-s / 100) + 0.05);
  const perplexity = step.map((s) => 400 - s / 2);

  // Similar scales: one panel, one line per metric.
  const overlay = trainingCurves(
    { step, loss, other: loss.map((v) => v * 2) },
    {
      title: "Overlay",
    },
  ).svg();
  assertWellFormedSVG(overlay);
  assertEquals(count(markGroup(overlay, "line"), /<path\b/g), 2);
  assertTitleAndLabels(overlay, "Overlay", ["step"]);

  // Very different scales: stacked panels, each with its metric's title.
  const split = trainingCurves({ step, loss, perplexity }, { title: "VQ-VAE" })
    .svg();
  assertWellFormedSVG(split);
  assert(
    split.includes(">loss</text>") && split.includes(">perplexity</text>"),
  );
  assertEquals(count(split, /aria-label="line"/g), 2);

  // Records, key selection, smoothing (faint raw line + smooth line).
  const records = step.map((s, i) => ({ step: s, loss: loss[i], acc: i / 50 }));
  const smooth = trainingCurves(records, {
    title: "Smoothed",
    keys: ["loss"],
    smooth: 0.9,
  }).svg();
  assertEquals(count(smooth, /aria-label="line"/g), 2);
  assert(smooth.includes('stroke-opacity="0.25"'));
  assert(!smooth.includes(">acc<"));

  assertThrows(
    () => trainingCurves(records, { title: "t", keys: ["nope"] }),
    ArgumentError,
    "trainingCurves",
    '"nope"',
  );
  assertThrows(
    () => trainingCurves({ step: [1, 2], loss: [1] }, { title: "t" }),
    ArgumentError,
    "history.loss has 1 values",
  );
  assertThrows(
    () => trainingCurves({ step, loss }, { title: "t", smooth: 1 }),
    ArgumentError,
    "smooth",
  );
});

// ---------------------------------------------------------------------------
// Histogram and bars

Deno.test("histogram draws bins of a flattened tensor", async () => {
  const values = tf.randomNormal([20, 50], 0, 1, "float32", 1);
  try {
    const svg = (await assertNoTensorLeak(() =>
      histogram(values, { title: "Weights", bins: 20, xLabel: "weight" })
    )).svg();
    assertWellFormedSVG(svg);
    assertTitleAndLabels(svg, "Weights", ["weight", "count"]);
    const rects = count(markGroup(svg, "rect"), /<rect\b/g);
    assert(rects >= 10 && rects <= 40, `expected about 20 bins, got ${rects}`);
  } finally {
    values.dispose();
  }
  assertThrows(
    () => histogram([1, NaN], { title: "t" }),
    ArgumentError,
    "values[1]",
    "finite",
  );
  assertThrows(
    () => histogram([1, 2], { title: "t", bins: 0 }),
    ArgumentError,
    "bins",
  );
  assertThrows(
    () => histogram([], { title: "t" }),
    ArgumentError,
    "at least 1",
  );
});

Deno.test("bars draws single and grouped bars with a legend", () => {
  const single = bars(["a", "b", "c"], [1, 2, 3], {
    title: "Counts",
    yLabel: "n",
  }).svg();
  assertWellFormedSVG(single);
  assertEquals(count(markGroup(single, "bar"), /<rect\b/g), 3);

  const pi = [0.1, 0.2, 0.3, 0.4];
  const grouped = bars([0, 1, 2, 3], {
    empirical: [0.11, 0.19, 0.31, 0.39],
    expected: pi,
  }, { title: "Gumbel-max", xLabel: "category k", yLabel: "frequency" }).svg();
  assertWellFormedSVG(grouped);
  assertTitleAndLabels(grouped, "Gumbel-max", ["category k", "frequency"]);
  // Facets nest one <g> per category inside the bar group.
  const barSection = grouped.slice(
    grouped.indexOf('aria-label="bar"'),
    grouped.indexOf('aria-label="rule"'),
  );
  assertEquals(count(barSection, /<rect\b/g), 8);
  assert(
    grouped.includes(">empirical</text>") &&
      grouped.includes(">expected</text>"),
  );
  assertThrows(
    () => bars(["a", "b"], { e: [1, 2], x: [1] }, { title: "t" }),
    ArgumentError,
    'values["x"] has 1 entries but there are 2 categories',
  );
  assertThrows(
    () => bars(["a", "a"], [1, 2], { title: "t" }),
    ArgumentError,
    "distinct",
  );
});

// ---------------------------------------------------------------------------
// Image grids

Deno.test("imageGrid builds one mosaic PNG with gaps, clipping and labels", async () => {
  // 5 images of 2x3: image i is filled with value i / 2 - 0.5 (clipped to [0, 1]).
  const n = 5;
  const images = tf.tidy(() =>
    tf.tensor1d([0, 1, 2, 3, 4]).div(2).sub(0.5).reshape([n, 1, 1, 1]).tile([
      1,
      2,
      3,
      1,
    ])
  );
  try {
    const chart = await assertNoTensorLeak(() =>
      imageGrid(images, {
        title: "Tiles",
        cols: 3,
        labels: ["a", "b", "c", "d", "e"],
        scale: 4,
      })
    );
    const svg = chart.svg();
    assertWellFormedSVG(svg);
    assertTitleAndLabels(svg, "Tiles", []);
    assertEquals(count(svg, /<image\b/g), 1);
    assert(svg.includes('image-rendering="pixelated"'));
    for (const l of ["a", "b", "c", "d", "e"]) {
      assert(svg.includes(`>${l}</text>`));
    }

    const png = imageGridPNG(images, { cols: 3 });
    const { width, height, channels, pixels } = decodePNG(png);
    assertEquals([width, height, channels], [3 * 3 + 2, 2 * 2 + 1, 1]);
    const at = (x: number, y: number) => pixels[y * width + x];
    assertEquals(at(0, 0), 0); // -0.5 clipped to 0
    assertEquals(at(4, 1), 0); // image 1: value 0
    assertEquals(at(8, 0), 128); // image 2: 0.5
    assertEquals(at(0, 3), 255); // image 3: 1
    assertEquals(at(5, 4), 255); // image 4: 1.5 clipped
    assertEquals(at(3, 0), 255); // vertical gap
    assertEquals(at(0, 2), 255); // horizontal gap
    assertEquals(at(8, 4), 255); // empty 6th slot

    // The PNG in the SVG is the same mosaic, plus label bands under rows.
    const shown = decodePNGHeader(pngFromSVG(svg));
    assertEquals(shown.width, width);
    assert(shown.height > height);
  } finally {
    images.dispose();
  }
});

Deno.test("imageGrid accepts [n,h,w], RGB, flat images and nested arrays", () => {
  const gray = tf.zeros([4, 5, 5]);
  const rgb = tf.ones([2, 4, 4, 3]);
  const flat = tf.zeros([3, 16]);
  try {
    assertEquals(decodePNGHeader(imageGridPNG(gray)).colorType, 0);
    const rgbPNG = imageGridPNG(rgb, { cols: 1 });
    const h = decodePNGHeader(rgbPNG);
    assertEquals([h.width, h.height, h.colorType], [4, 9, 2]);
    assertEquals(
      decodePNGHeader(imageGridPNG(flat, { imageShape: [4, 4] })).width,
      14,
    );
    assertThrows(
      () => imageGrid(flat, { title: "flat" }),
      ArgumentError,
      "imageGrid",
      "imageShape",
    );
    assertThrows(
      () => imageGrid(tf.zeros([2, 3, 3, 2]), { title: "two channels" }),
      ArgumentError,
      "c = 1 or 3",
    );
    const nested = imageGrid([[[0, 1], [1, 0]], [[0.5, 0.5], [0.5, 0.5]]], {
      title: "Nested",
      range: "auto",
    }).svg();
    assert(nested.includes("data:image/png;base64,"));
    assertThrows(
      () => imageGrid([[[0, 1], [1]]] as never, { title: "ragged" }),
      ArgumentError,
      "rectangular",
    );
    assertThrows(
      () => imageGrid(gray, { title: "r", range: [1, 0] }),
      ArgumentError,
      "range",
    );
    assertThrows(
      () => imageGrid(gray, { title: "l", labels: ["a"] }),
      ArgumentError,
      "one entry per image (4)",
    );
  } finally {
    tf.dispose([gray, rgb, flat]);
  }
});

Deno.test("imageGrid of 100 28x28 images renders in well under 100 ms", () => {
  const images = tf.randomUniform([100, 28, 28, 1], 0, 1, "float32", 3);
  try {
    imageGrid(images, { title: "warm-up" }).svg();
    const t0 = performance.now();
    const svg = imageGrid(images, { title: "Timing", cols: 10 }).svg();
    const ms = performance.now() - t0;
    assert(svg.length > 0);
    assert(ms < 100, `imageGrid took ${ms.toFixed(1)} ms`);
  } finally {
    images.dispose();
  }
});

// ---------------------------------------------------------------------------
// Heatmap, vector field, layout, generic plot

Deno.test("heatmap draws one cell per entry and a colour ramp", () => {
  const svg = heatmap([[5, 1, 0], [2, 7, 1]], {
    title: "Confusion",
    xTicks: ["a", "b", "c"],
    yTicks: ["x", "y"],
    xLabel: "predicted",
    yLabel: "true class",
  }).svg();
  assertWellFormedSVG(svg);
  assertTitleAndLabels(svg, "Confusion", ["predicted", "true class"]);
  assertEquals(count(markGroup(svg, "cell"), /<rect\b/g), 6);
  assert(svg.includes("<linearGradient"), "colour ramp legend missing");
  assert(svg.includes(">7</text>"), "annotations missing");
  assertThrows(
    () => heatmap([[1, 2]], { title: "t", xTicks: ["a"] }),
    ArgumentError,
    "heatmap",
    "xTicks",
  );
  assertThrows(
    () => heatmap([[1, NaN]], { title: "t" }),
    ArgumentError,
    "finite",
  );
});

Deno.test("vectorField draws one arrow per point", () => {
  const pts: number[][] = [];
  const vec: number[][] = [];
  for (let x = -1; x <= 1; x += 0.5) {
    for (let y = -1; y <= 1; y += 0.5) {
      pts.push([x, y]);
      vec.push([-y, x]);
    }
  }
  const svg = vectorField(pts, vec, {
    title: "Dynamics",
    xLabel: "z1",
    yLabel: "z2",
  }).svg();
  assertWellFormedSVG(svg);
  assertTitleAndLabels(svg, "Dynamics", ["z1", "z2"]);
  assertEquals(count(markGroup(svg, "vector"), /<path\b/g), pts.length);
  assertThrows(
    () => vectorField(pts, vec.slice(1), { title: "t" }),
    ArgumentError,
    "one row per point",
  );
});

Deno.test("row and column compose charts into one SVG", () => {
  const a = lineChart({ a: [1, 2] }, { title: "Left" });
  const b = histogram([1, 2, 3], { title: "Right" });
  const r = row([a, b], { title: "Side by side", gap: 10 });
  const svg = r.svg();
  assertWellFormedSVG(svg);
  assert(svg.includes(">Left</text>") && svg.includes(">Right</text>"));
  assert(svg.includes(">Side by side</text>"));
  assertEquals(r.width, a.width + b.width + 10);
  const c = column([a, b], { title: "Stacked" });
  assert(c.height > a.height + b.height);
  assertThrows(
    () => row([a, "x" as never], { title: "t" }),
    ArgumentError,
    "Chart objects",
  );
});

Deno.test("plot() renders any Plot chart with the legend inside the SVG", () => {
  const data = [{ x: 1, y: 2, kind: "u" }, { x: 2, y: 3, kind: "v" }];
  const chart = plot({
    title: "Custom",
    x: { label: "time" },
    y: { label: "height" },
    color: { legend: true, label: "kind" },
    marks: [Plot.dot(data, { x: "x", y: "y", fill: "kind" })],
  });
  const svg = chart.svg();
  assertWellFormedSVG(svg);
  assertTitleAndLabels(svg, "Custom", ["time", "height"]);
  assertEquals(count(svg, /<circle\b/g), 2);
  assert(svg.includes(">u</text>") && svg.includes(">v</text>"));
  assert(!svg.includes("<div"), "HTML legend leaked into the SVG");
});

Deno.test("trainingCurves draws the metrics of a trainLoop history, not its time key", () => {
  // trainLoop's history: step, the elapsed seconds and the metrics.
  const history = {
    step: [0, 1, 2, 3],
    time: [0.1, 0.2, 0.3, 0.4],
    loss: [4, 3, 2, 1],
  };
  const svg = trainingCurves(history, { title: "Loss" }).svg();
  assertWellFormedSVG(svg);
  assertEquals(count(markGroup(svg, "line"), /<path\b/g), 1);
  assert(!svg.includes(">time<"), "time is drawn as a metric");
  // Asked for by name, the clock can still be drawn.
  const clock = trainingCurves(history, { title: "Clock", keys: ["time"] })
    .svg();
  assertEquals(count(markGroup(clock, "line"), /<path\b/g), 1);
});
