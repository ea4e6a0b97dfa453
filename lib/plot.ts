/**
 * The display layer of the course: every figure in the notebooks is a
 * `Chart`, a self-contained SVG with its title drawn inside, so what a
 * student sees inline in Jupyter is exactly what `chart.save("fig.svg")`
 * writes to disk.
 *
 * Charts are drawn with Observable Plot on a linkedom document (Deno has no
 * DOM). Plot puts titles and categorical legends in HTML around its SVG;
 * those would be lost in a saved `.svg`, so this module renders them itself,
 * as SVG, in a band above the plot.
 *
 * Data may be tf tensors or plain arrays. Every helper requires a title and
 * labels its axes, because unlabelled figures teach nothing.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";
import { encodePNG, pngDataURL, writeNewFile } from "./png.ts";
import {
  ArgumentError,
  checkInteger,
  checkNumber,
  checkOptions,
  checkSize,
  toMatrix,
} from "./validate.ts";

// ---------------------------------------------------------------------------
// Shared plumbing

const JUPYTER_DISPLAY: unique symbol = Symbol.for("Jupyter.display") as never;
const SVG_NS = "http://www.w3.org/2000/svg";
const FONT =
  "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
const PAD = 10;

// One document for all charts: Plot only creates detached elements in it.
let sharedDocument: unknown;
function domDocument(): unknown {
  if (!sharedDocument) {
    sharedDocument = (parseHTML(
      "<!DOCTYPE html><html><body></body></html>",
    ) as unknown as { document: unknown }).document;
  }
  return sharedDocument;
}

/** Escapes text for use inside SVG/HTML text and attribute values. */
function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(
    />/g,
    "&gt;",
  ).replace(/"/g, "&quot;");
}

// Rough width of sans-serif text; only used to lay out legends and titles,
// where a few pixels of error just change the spacing.
function textWidth(text: string, fontSize: number): number {
  return Math.ceil(text.length * fontSize * 0.6);
}

function describe(value: unknown): string {
  if (value instanceof tf.Tensor) {
    return `a ${value.dtype} tensor of shape [${value.shape.join(", ")}]`;
  }
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) {
    return `a ${value.constructor.name} of length ${
      (value as Uint8Array).length
    }`;
  }
  if (typeof value === "string") return JSON.stringify(value);
  return String(value);
}

/** Options every chart accepts. */
export interface ChartOptions {
  /** Drawn in bold above the chart, inside the SVG. Required. */
  title: string;
  /** Optional second line under the title. */
  subtitle?: string;
  /** Width of the plot area in pixels (without the title band). */
  width?: number;
  /** Height of the plot area in pixels (without the title band). */
  height?: number;
}

/** Options of charts with x and y axes. */
export interface AxisOptions extends ChartOptions {
  /** Label of the horizontal axis. */
  xLabel?: string;
  /** Label of the vertical axis. */
  yLabel?: string;
}

// The option keys of each chart helper, for checkOptions (a misspelled key
// is an error naming the closest one, not an option silently ignored).
const CHART_KEYS = ["title", "subtitle", "width", "height"];
const AXIS_KEYS = [...CHART_KEYS, "xLabel", "yLabel"];
const KEYS = {
  scatter: [
    ...AXIS_KEYS,
    ...["labels", "classNames", "centroids", "voronoi", "colorCentroids"],
    ...["r", "legendLabel"],
  ],
  lineChart: [...AXIS_KEYS, "x", "logX", "logY", "legendLabel"],
  trainingCurves: [...AXIS_KEYS, "keys", "logY", "smooth", "layout"],
  histogram: [...AXIS_KEYS, "bins", "normalize"],
  bars: [...AXIS_KEYS, "legendLabel"],
  imageGrid: [
    ...["title", "subtitle", "labels", "scale", "cols", "range"],
    ...["imageShape", "gap", "gapColor", "labelRows"],
  ],
  heatmap: [
    ...AXIS_KEYS,
    ...["xTicks", "yTicks", "scheme", "annotate", "legendLabel"],
  ],
  vectorField: [...AXIS_KEYS, "maxLength", "maxMagnitude"],
  layout: ["title", "subtitle", "gap"],
};

function checkTitle(
  where: string,
  options: unknown,
  known?: readonly string[],
): string {
  if (options === null || typeof options !== "object") {
    throw new ArgumentError(
      where,
      `options must be an object with a title, e.g. { title: "K-means clusters" }, got ${
        describe(options)
      }`,
    );
  }
  if (known) checkOptions(where, options, known);
  const { title, subtitle } = options as {
    title?: unknown;
    subtitle?: unknown;
  };
  if (typeof title !== "string" || title.trim() === "") {
    throw new ArgumentError(
      where,
      `options.title must be a non-empty string (every chart needs a title), got ${
        describe(title)
      }`,
    );
  }
  if (subtitle !== undefined && typeof subtitle !== "string") {
    throw new ArgumentError(
      where,
      `options.subtitle must be a string, got ${describe(subtitle)}`,
    );
  }
  return title;
}

function checkLabel(
  where: string,
  name: string,
  value: unknown,
  fallback: string,
): string {
  if (value === undefined) return fallback;
  if (typeof value !== "string") {
    throw new ArgumentError(
      where,
      `${name} must be a string, got ${describe(value)}`,
    );
  }
  return value;
}

function size(
  where: string,
  options: ChartOptions,
  width: number,
  height: number,
): { width: number; height: number } {
  return {
    width: options.width === undefined
      ? width
      : checkInteger(where, "options.width", options.width, {
        min: 50,
        max: 8000,
      }),
    height: options.height === undefined
      ? height
      : checkInteger(where, "options.height", options.height, {
        min: 50,
        max: 8000,
      }),
  };
}

/** A 1-D numeric input: a number array, a typed array or a tensor. */
export type VectorLike = readonly number[] | ArrayLike<number> | tf.Tensor;
/** An [n, d] numeric input: a rectangular `number[][]` or a rank-2 tensor. */
export type MatrixLike = number[][] | tf.Tensor2D;

/**
 * Reads a 1-D input into a plain array. Tensors of rank 1 are accepted (any
 * rank with `flatten`). `finite` rejects NaN/Infinity; otherwise they are
 * kept (lines draw them as gaps).
 */
function toVector(
  where: string,
  name: string,
  data: unknown,
  { finite = true, flatten = false, minLength = 1 }: {
    finite?: boolean;
    flatten?: boolean;
    minLength?: number;
  } = {},
): number[] {
  let values: ArrayLike<unknown>;
  if (data instanceof tf.Tensor) {
    if (data.isDisposed) {
      throw new ArgumentError(where, `${name} has already been disposed`);
    }
    if (!flatten && data.rank !== 1) {
      throw new ArgumentError(
        where,
        `${name} must be a rank-1 tensor or a number array, got ${
          describe(data)
        }`,
      );
    }
    values = data.dataSync();
  } else if (
    Array.isArray(data) ||
    (ArrayBuffer.isView(data) && !(data instanceof DataView))
  ) {
    values = data as ArrayLike<unknown>;
  } else {
    throw new ArgumentError(
      where,
      `${name} must be a number array, a typed array or a tf.Tensor, got ${
        describe(data)
      }`,
    );
  }
  if (values.length < minLength) {
    throw new ArgumentError(
      where,
      `${name} must hold at least ${minLength} value${
        minLength === 1 ? "" : "s"
      }, got ${values.length}`,
    );
  }
  const out = new Array<number>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== "number" || (finite && !Number.isFinite(v))) {
      throw new ArgumentError(
        where,
        `${name}[${i}] must be a ${finite ? "finite " : ""}number, got ${
          describe(v)
        }`,
      );
    }
    out[i] = v;
  }
  return out;
}

/** Reads an [n, 2] input into parallel x and y arrays. */
function toPoints(
  where: string,
  name: string,
  data: unknown,
): { xs: number[]; ys: number[] } {
  const { matrix, created } = toMatrix(where, name, data);
  try {
    if (matrix.shape[1] !== 2) {
      throw new ArgumentError(
        where,
        `${name} must have shape [n, 2] (one 2-D point per row), got shape [${
          matrix.shape.join(", ")
        }]; project higher-dimensional data to 2-D first (e.g. PCA)`,
      );
    }
    const flat = matrix.dataSync();
    const n = matrix.shape[0];
    const xs = new Array<number>(n);
    const ys = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      xs[i] = flat[2 * i];
      ys[i] = flat[2 * i + 1];
    }
    return { xs, ys };
  } finally {
    if (created) matrix.dispose();
  }
}

/** Class labels: integers (optionally named by `classNames`) or strings. */
export type LabelsLike = VectorLike | readonly string[];

function toLabels(
  where: string,
  data: unknown,
  n: number,
  classNames: readonly string[] | undefined,
): { values: (string | number)[]; numeric: boolean } {
  if (Array.isArray(data) && data.length > 0 && typeof data[0] === "string") {
    if (data.some((d) => typeof d !== "string")) {
      throw new ArgumentError(
        where,
        "options.labels must be all numbers or all strings",
      );
    }
    if (data.length !== n) {
      throw new ArgumentError(
        where,
        `options.labels must have one entry per point (${n}), got ${data.length}`,
      );
    }
    return { values: data as string[], numeric: false };
  }
  const values = toVector(where, "options.labels", data);
  if (values.length !== n) {
    throw new ArgumentError(
      where,
      `options.labels must have one entry per point (${n}), got ${values.length}`,
    );
  }
  if (classNames !== undefined) {
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (!Number.isInteger(v) || v < 0 || v >= classNames.length) {
        throw new ArgumentError(
          where,
          `options.labels[${i}] is ${v}, not an index into options.classNames (length ${classNames.length})`,
        );
      }
    }
  }
  return { values, numeric: true };
}

function checkClassNames(where: string, value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    throw new ArgumentError(
      where,
      `options.classNames must be an array of strings, got ${describe(value)}`,
    );
  }
  return value;
}

// ---------------------------------------------------------------------------
// Chart

/** A rendered SVG fragment with its size (internal building block). */
interface Block {
  /** SVG markup starting with `<svg` (positioned later via x/y). */
  markup: string;
  width: number;
  height: number;
}

function place(block: Block, x: number, y: number): string {
  return block.markup.replace(/^<svg\b/, `<svg x="${x}" y="${y}"`);
}

/**
 * A finished figure: SVG with the title (and legend) drawn inside it.
 * Display it by making it the last expression of a notebook cell; save it
 * with `save(path)`. Build one with the helpers (`scatter`, `lineChart`,
 * ...) or with `plot(options)` for any Observable Plot chart.
 */
export class Chart {
  /** The chart's title. */
  readonly title: string;
  /** Optional subtitle, drawn under the title. */
  readonly subtitle: string | undefined;
  /** Total width of `svg()` in pixels. */
  readonly width: number;
  /** Total height of `svg()` in pixels. */
  readonly height: number;
  readonly #body: Block;
  readonly #legend: Block | undefined;
  readonly #titleSize: number;

  /**
   * Assembles a chart from an SVG body (markup starting with `<svg`) and an
   * optional legend block. Most code should use the helpers instead.
   */
  constructor(
    { title, subtitle, body, legend, titleSize = 16 }: {
      title: string;
      subtitle?: string;
      body: { markup: string; width: number; height: number };
      legend?: { markup: string; width: number; height: number };
      titleSize?: number;
    },
  ) {
    checkTitle("Chart", { title, subtitle });
    if (typeof body?.markup !== "string" || !body.markup.startsWith("<svg")) {
      throw new ArgumentError(
        "Chart",
        "body.markup must be SVG markup starting with <svg",
      );
    }
    this.title = title;
    this.subtitle = subtitle;
    this.#body = body;
    this.#legend = legend;
    this.#titleSize = titleSize;
    const titleW = PAD + textWidth(title, titleSize) + PAD;
    const subW = subtitle ? PAD + textWidth(subtitle, 12) + PAD : 0;
    this.width = Math.ceil(
      Math.max(body.width, titleW, subW, legend ? legend.width + 2 * PAD : 0),
    );
    this.height = Math.ceil(this.#bodyTop() + body.height);
  }

  #titleBand(): number {
    return this.#titleSize + 14 + (this.subtitle ? 16 : 0);
  }

  #bodyTop(): number {
    return this.#titleBand() + (this.#legend ? this.#legend.height + 6 : 0);
  }

  /**
   * A standalone SVG document (with `xmlns`, white background, title and
   * legend drawn as SVG elements): what `save` writes and Jupyter shows.
   */
  svg(): string {
    const { width: w, height: h, title, subtitle } = this;
    const ts = this.#titleSize;
    const parts = [
      `<svg xmlns="${SVG_NS}" xmlns:xlink="http://www.w3.org/1999/xlink" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="${FONT}" role="img" aria-label="${
        esc(title)
      }">`,
      `<title>${esc(title)}</title>`,
      `<rect width="${w}" height="${h}" fill="white"/>`,
      `<text class="chart-title" x="${PAD}" y="${
        ts + 6
      }" font-size="${ts}" font-weight="bold" fill="#111">${esc(title)}</text>`,
    ];
    if (subtitle) {
      parts.push(
        `<text class="chart-subtitle" x="${PAD}" y="${
          ts + 22
        }" font-size="12" fill="#555">${esc(subtitle)}</text>`,
      );
    }
    if (this.#legend) {
      parts.push(place(this.#legend, PAD, this.#titleBand()));
    }
    parts.push(place(this.#body, 0, this.#bodyTop()), "</svg>");
    return parts.join("");
  }

  /** The chart as an HTML fragment (the SVG in a `<div>`), for HTML reports. */
  html(): string {
    return `<div class="chart" style="display:inline-block">${this.svg()}</div>`;
  }

  /**
   * Writes the chart to `path`: SVG for `.svg`, an HTML fragment for
   * `.html`. Refuses to replace an existing file unless
   * `{ overwrite: true }`, so earlier results are never lost silently.
   */
  save(
    path: string,
    { overwrite = false }: { overwrite?: boolean } = {},
  ): void {
    if (typeof path !== "string" || !/\.(svg|html?)$/i.test(path)) {
      throw new ArgumentError(
        "Chart.save",
        `path must end in .svg or .html, got ${
          describe(path)
        } (use imageGridPNG + savePNG for PNG files)`,
      );
    }
    const text = /\.svg$/i.test(path)
      ? `<?xml version="1.0" encoding="UTF-8"?>\n${this.svg()}\n`
      : this.html();
    writeNewFile("Chart.save", path, new TextEncoder().encode(text), {
      overwrite,
    });
  }

  /** Short description, so `console.log(chart)` is readable. */
  toString(): string {
    return `Chart "${this.title}" (${this.width}x${this.height} SVG)`;
  }

  /** Jupyter (Deno kernel) display hook: shows the SVG inline. */
  [JUPYTER_DISPLAY](): Record<string, string> {
    return { "image/svg+xml": this.svg(), "text/plain": this.toString() };
  }
}

// ---------------------------------------------------------------------------
// Legends

function swatchLegend(
  label: string | undefined,
  items: { name: string; color: string }[],
  maxWidth: number,
): Block {
  const fs = 11;
  const rowH = 18;
  const parts: string[] = [];
  let x = 0;
  let y = 0;
  let widest = 0;
  if (label) {
    parts.push(
      `<text x="0" y="${
        rowH / 2 + 4
      }" font-size="${fs}" font-weight="bold" fill="#111">${esc(label)}</text>`,
    );
    x = textWidth(label, fs) + 12;
  }
  for (const { name, color } of items) {
    const w = 14 + textWidth(name, fs) + 14;
    if (x > 0 && x + w > maxWidth) {
      widest = Math.max(widest, x);
      x = 0;
      y += rowH;
    }
    parts.push(
      `<rect class="swatch" x="${x}" y="${
        y + 4
      }" width="10" height="10" fill="${esc(color)}"/>`,
      `<text x="${x + 14}" y="${y + 13}" font-size="${fs}" fill="#111">${
        esc(name)
      }</text>`,
    );
    x += w;
  }
  widest = Math.max(widest, x);
  const height = y + rowH;
  return {
    markup:
      `<svg class="legend" width="${widest}" height="${height}" viewBox="0 0 ${widest} ${height}" overflow="visible">${
        parts.join("")
      }</svg>`,
    width: widest,
    height,
  };
}

type PlotElement = {
  tagName: string;
  outerHTML: string;
  children: ArrayLike<PlotElement>;
  getAttribute(name: string): string | null;
  setAttribute(name: string, value: string): void;
  scale(name: string): Plot.Scale | undefined;
};

function legendFor(
  el: PlotElement,
  maxWidth: number,
  requestedLabel: unknown,
): Block | undefined {
  const scale = el.scale("color");
  if (!scale) return undefined;
  // Plot only fills in scale.label when it can infer one from a channel name.
  const label = typeof requestedLabel === "string"
    ? requestedLabel
    : scale.label ?? undefined;
  if (scale.type === "ordinal" || scale.type === "categorical") {
    const domain = Array.from(scale.domain ?? []);
    return swatchLegend(
      label,
      domain.map((d) => ({ name: String(d), color: String(scale.apply(d)) })),
      maxWidth,
    );
  }
  return rampLegend(label, scale, Math.min(280, maxWidth));
}

let gradientCounter = 0;

// Plot's own ramp legend paints a <canvas>, which linkedom lacks, so the
// gradient is drawn here from samples of the scale.
function rampLegend(
  label: string | undefined,
  scale: Plot.Scale,
  width: number,
): Block | undefined {
  const domain = Array.from(scale.domain ?? []) as number[];
  if (domain.length < 2 || domain.some((d) => typeof d !== "number")) {
    return undefined;
  }
  const lo = domain[0];
  const hi = domain[domain.length - 1];
  const log = scale.type === "log" && lo > 0 && hi > 0;
  const at = (t: number) => log ? lo * (hi / lo) ** t : lo + t * (hi - lo);
  const id = `chart-ramp-${++gradientCounter}`;
  const stops = Array.from({ length: 17 }, (_, k) => {
    const t = k / 16;
    return `<stop offset="${t}" stop-color="${
      esc(String(scale.apply(at(t))))
    }"/>`;
  }).join("");
  const fmt = (v: number) => {
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(1);
    return String(Number(v.toPrecision(3)));
  };
  const top = label ? 14 : 0;
  // The end labels are anchored inward so they never stick out of the legend.
  const anchor = (t: number) => t === 0 ? "start" : t === 1 ? "end" : "middle";
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((t) => {
    const x = t * width;
    return `<line x1="${x}" x2="${x}" y1="${top}" y2="${
      top + 14
    }" stroke="#111"/><text x="${x}" y="${
      top + 26
    }" font-size="10" text-anchor="${anchor(t)}" fill="#111">${
      fmt(at(t))
    }</text>`;
  }).join("");
  const height = top + 30;
  return {
    markup:
      `<svg class="legend" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" overflow="visible"><defs><linearGradient id="${id}">${stops}</linearGradient></defs>${
        label
          ? `<text x="0" y="10" font-size="11" font-weight="bold" fill="#111">${
            esc(label)
          }</text>`
          : ""
      }<rect x="0" y="${top}" width="${width}" height="10" fill="url(#${id})"/>${ticks}</svg>`,
    width,
    height,
  };
}

// ---------------------------------------------------------------------------
// Generic plot

/** Options of `plot`: any Observable Plot options plus a required title. */
export type PlotChartOptions = Plot.PlotOptions & {
  /** Drawn inside the SVG. Required. */
  title: string;
  /** Optional second line under the title. */
  subtitle?: string;
};

function renderPlot(
  where: string,
  options: PlotChartOptions,
  { titleSize }: { titleSize?: number } = {},
): Chart {
  const title = checkTitle(where, options);
  const color = options.color as
    | { legend?: unknown; label?: unknown }
    | undefined;
  const wantLegend = Boolean(color?.legend);
  const el = Plot.plot({
    ...options,
    title: undefined,
    subtitle: undefined,
    caption: undefined,
    // Legends are drawn by Chart, as SVG, so they survive `save`.
    color: { ...(options.color ?? {}), legend: false },
    document: domDocument() as never,
  } as Plot.PlotOptions) as unknown as PlotElement;
  let svgEl: PlotElement = el;
  if (el.tagName.toLowerCase() !== "svg") {
    // A <figure>: the plot is its last direct <svg> child (swatches come first).
    const kids = Array.from(el.children).filter((c) =>
      c.tagName.toLowerCase() === "svg"
    );
    svgEl = kids[kids.length - 1];
  }
  const width = Number(svgEl.getAttribute("width")) || 640;
  const height = Number(svgEl.getAttribute("height")) || 400;
  svgEl.setAttribute("overflow", "visible");
  return new Chart({
    title,
    subtitle: options.subtitle,
    body: { markup: svgEl.outerHTML, width, height },
    legend: wantLegend
      ? legendFor(el, Math.max(width - 2 * PAD, 200), color?.label)
      : undefined,
    titleSize,
  });
}

/**
 * Renders any Observable Plot chart (`Plot.plot` options, marks included)
 * as a `Chart`; the linkedom document is injected, `title` is required and
 * `color: { legend: true }` draws the legend inside the SVG.
 *
 * @example
 * plot({ title: "Sine", x: { label: "t" }, marks: [Plot.line(data, { x: "t", y: "v" })] })
 */
export function plot(options: PlotChartOptions): Chart {
  return renderPlot("plot", options);
}

// ---------------------------------------------------------------------------
// Scatter and Voronoi

/** Options of `scatter` and `voronoiPlot`. */
export interface ScatterOptions extends AxisOptions {
  /** One class/cluster label per point; colours the points. */
  labels?: LabelsLike;
  /** Names for integer labels (label i is shown as classNames[i]). */
  classNames?: string[];
  /** Cluster centres, [k, 2]: drawn as large black-outlined diamonds. */
  centroids?: MatrixLike;
  /** Shade the Voronoi cells of the centroids (needs `centroids`). */
  voronoi?: boolean;
  /**
   * Fill centroid i with the colour of label i (default: true when labels
   * are integers, as for k-means assignments; set false when the labels are
   * unrelated classes).
   */
  colorCentroids?: boolean;
  /** Point radius in pixels (default 3, or 2 for more than 2000 points). */
  r?: number;
  /** Title of the colour legend (default "label"). */
  legendLabel?: string;
}

/**
 * 2-D scatter plot of `points` ([n, 2]) coloured by `labels`, with optional
 * centroids and their Voronoi cells.
 */
export function scatter(points: MatrixLike, options: ScatterOptions): Chart {
  return scatterImpl("scatter", points, options);
}

/**
 * `points` with the Voronoi cells of `centroids` (the regions a nearest-
 * centroid quantiser maps to each code), e.g. for k-means or a VQ codebook.
 */
export function voronoiPlot(
  points: MatrixLike,
  centroids: MatrixLike,
  options: Omit<ScatterOptions, "centroids" | "voronoi">,
): Chart {
  if (centroids === undefined) {
    throw new ArgumentError("voronoiPlot", "centroids must be given ([k, 2])");
  }
  return scatterImpl("voronoiPlot", points, {
    ...(options ?? {}) as ScatterOptions,
    centroids,
    voronoi: true,
  });
}

function scatterImpl(
  where: string,
  points: MatrixLike,
  options: ScatterOptions,
): Chart {
  const title = checkTitle(where, options, KEYS.scatter);
  const { xs, ys } = toPoints(where, "points", points);
  const n = xs.length;
  const classNames = checkClassNames(where, options.classNames);
  const r = options.r === undefined
    ? (n > 2000 ? 2 : 3)
    : checkNumber(where, "options.r", options.r, { min: 0.1, max: 50 });
  const { width, height } = size(where, options, 640, 440);
  const labels = options.labels === undefined
    ? undefined
    : toLabels(where, options.labels, n, classNames);
  const cents = options.centroids === undefined
    ? undefined
    : toPoints(where, "options.centroids", options.centroids);
  if (options.voronoi && !cents) {
    throw new ArgumentError(
      where,
      "options.voronoi needs options.centroids ([k, 2]) to draw cells around",
    );
  }
  const name = (v: string | number) =>
    typeof v === "number" && classNames ? classNames[v] : String(v);
  const colorCentroids = cents !== undefined && labels !== undefined &&
    labels.numeric && (options.colorCentroids ?? true);
  if (colorCentroids && classNames && cents!.xs.length > classNames.length) {
    throw new ArgumentError(
      where,
      `colouring ${
        cents!.xs.length
      } centroids by label needs as many classNames, got ${classNames.length}; pass colorCentroids: false`,
    );
  }

  const rows = xs.map((x, i) => ({
    x,
    y: ys[i],
    c: labels ? name(labels.values[i]) : undefined,
  }));
  const centRows = cents
    ? cents.xs.map((x, i) => ({ x, y: cents.ys[i], c: name(i) }))
    : [];

  // Legend order follows the label values (0, 1, 2, ...), not first appearance.
  let domain: string[] | undefined;
  if (labels) {
    const raw = new Set<string | number>(labels.values);
    if (colorCentroids) centRows.forEach((_, i) => raw.add(i));
    const sorted = [...raw].sort((a, b) =>
      typeof a === "number" && typeof b === "number"
        ? a - b
        : String(a).localeCompare(String(b))
    );
    domain = [...new Set(sorted.map(name))];
  }

  const marks: Plot.Markish[] = [];
  if (options.voronoi && cents) {
    marks.push(
      colorCentroids
        ? Plot.voronoi(centRows, {
          x: "x",
          y: "y",
          fill: "c",
          fillOpacity: 0.12,
          stroke: "#444",
          strokeWidth: 1,
        })
        : Plot.voronoiMesh(centRows, {
          x: "x",
          y: "y",
          stroke: "#444",
          strokeOpacity: 0.8,
        }),
    );
  }
  marks.push(
    Plot.dot(rows, {
      x: "x",
      y: "y",
      r,
      fill: labels ? "c" : "steelblue",
      fillOpacity: 0.8,
    }),
  );
  if (cents) {
    marks.push(
      Plot.dot(centRows, {
        x: "x",
        y: "y",
        r: Math.max(7, 2.5 * r),
        symbol: "diamond",
        fill: colorCentroids ? "c" : "white",
        stroke: "black",
        strokeWidth: 1.5,
      }),
    );
  }
  return renderPlot(where, {
    title,
    subtitle: options.subtitle,
    width,
    height,
    grid: true,
    x: { label: checkLabel(where, "options.xLabel", options.xLabel, "x₁") },
    y: { label: checkLabel(where, "options.yLabel", options.yLabel, "x₂") },
    color: labels
      ? {
        type: "categorical",
        domain,
        scheme: domain!.length > 10 ? "turbo" : "observable10",
        legend: true,
        label: checkLabel(
          where,
          "options.legendLabel",
          options.legendLabel,
          "label",
        ),
      }
      : undefined,
    marks,
  });
}

// ---------------------------------------------------------------------------
// Lines

/** Options of `lineChart`. */
export interface LineChartOptions extends AxisOptions {
  /** Shared x values (default 0, 1, 2, ...); same length as every series. */
  x?: VectorLike;
  /** Logarithmic x axis (x values must be > 0). */
  logX?: boolean;
  /** Logarithmic y axis (y values must be > 0). */
  logY?: boolean;
  /** Title of the colour legend (default "series"). */
  legendLabel?: string;
}

interface LineSeries {
  name: string;
  xs: number[];
  ys: number[];
  faint?: boolean;
}

function checkLog(
  where: string,
  axis: string,
  values: number[],
  seriesName: string,
) {
  const bad = values.findIndex((v) => Number.isFinite(v) && v <= 0);
  if (bad >= 0) {
    throw new ArgumentError(
      where,
      `a log ${axis} axis needs positive values, but ${seriesName}[${bad}] is ${
        values[bad]
      }`,
    );
  }
}

/**
 * Plot's default 40px left margin clips long tick labels such as "−1,400";
 * size it from the widest label the y values can produce.
 */
function leftMarginFor(values: number[], logY = false): number {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return 40;
  const label = (v: number) =>
    logY || Math.abs(v) < 1
      ? v.toPrecision(2)
      : Math.round(v).toLocaleString("en-US");
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const chars = Math.max(label(lo).length, label(hi).length);
  return Math.max(40, 14 + 6.5 * chars);
}

function linesPlot(
  where: string,
  title: string,
  series: LineSeries[],
  options: AxisOptions & {
    logX?: boolean;
    logY?: boolean;
    legendLabel?: string;
  },
  defaults: { xLabel: string; yLabel: string },
  { titleSize }: { titleSize?: number } = {},
): Chart {
  const { width, height } = size(where, options, 640, 360);
  for (const s of series) {
    if (options.logX) checkLog(where, "x", s.xs, "x");
    if (options.logY) checkLog(where, "y", s.ys, s.name);
  }
  const names = [...new Set(series.map((s) => s.name))];
  // Non-finite values (a diverged loss) become gaps rather than errors.
  const toRows = (s: LineSeries) =>
    s.ys.map((y, i) => ({
      series: s.name,
      x: s.xs[i],
      y: Number.isFinite(y) ? y : NaN,
    }));
  const faint = series.filter((s) => s.faint).flatMap(toRows);
  const solid = series.filter((s) => !s.faint).flatMap(toRows);
  const marks: Plot.Markish[] = [];
  if (faint.length) {
    marks.push(
      Plot.line(faint, {
        x: "x",
        y: "y",
        stroke: "series",
        strokeOpacity: 0.25,
      }),
    );
  }
  marks.push(
    Plot.line(solid, { x: "x", y: "y", stroke: "series", strokeWidth: 1.75 }),
  );
  return renderPlot(where, {
    title,
    subtitle: options.subtitle,
    width,
    height,
    grid: true,
    marginLeft: leftMarginFor(solid.map((r) => r.y), options.logY),
    x: {
      label: checkLabel(
        where,
        "options.xLabel",
        options.xLabel,
        defaults.xLabel,
      ),
      type: options.logX ? "log" : "linear",
    },
    y: {
      label: checkLabel(
        where,
        "options.yLabel",
        options.yLabel,
        defaults.yLabel,
      ),
      type: options.logY ? "log" : "linear",
    },
    color: {
      type: "categorical",
      domain: names,
      scheme: names.length > 10 ? "turbo" : "observable10",
      legend: names.length > 1,
      label: options.legendLabel,
    },
    marks,
  }, { titleSize });
}

/**
 * Multi-line chart: one line per entry of `series` (name -> y values),
 * with a colour legend when there is more than one. NaN/Infinity values are
 * drawn as gaps.
 *
 * @example
 * lineChart({ "straight-through": errST, "Gumbel-softmax": errGS }, { title: "Gradient error", xLabel: "temperature", logX: true })
 */
export function lineChart(
  series: Record<string, VectorLike>,
  options: LineChartOptions,
): Chart {
  const where = "lineChart";
  const title = checkTitle(where, options, KEYS.lineChart);
  if (
    series === null || typeof series !== "object" || Array.isArray(series) ||
    series instanceof tf.Tensor
  ) {
    throw new ArgumentError(
      where,
      `series must be an object mapping names to y values, e.g. { loss: [...] }, got ${
        describe(series)
      }`,
    );
  }
  const entries = Object.entries(series);
  if (entries.length === 0) {
    throw new ArgumentError(
      where,
      "series must contain at least one named series",
    );
  }
  const xs = options.x === undefined
    ? undefined
    : toVector(where, "options.x", options.x);
  const lines = entries.map(([name, ys]) => {
    const y = toVector(where, `series["${name}"]`, ys, { finite: false });
    if (xs && xs.length !== y.length) {
      throw new ArgumentError(
        where,
        `series["${name}"] has ${y.length} values but options.x has ${xs.length}`,
      );
    }
    return { name, xs: xs ?? y.map((_, i) => i), ys: y };
  });
  return linesPlot(where, title, lines, options, {
    xLabel: xs ? "x" : "index",
    yLabel: "value",
  });
}

/** Training history: parallel arrays (`step` optional) or one record per step. */
export type HistoryLike =
  | { step?: number[]; [metric: string]: number[] | undefined }
  | readonly Record<string, number>[];

/** Options of `trainingCurves`. */
export interface TrainingCurvesOptions extends AxisOptions {
  /** Metrics to draw (default: every key except `step` and `time`). */
  keys?: string[];
  /** Logarithmic y axis. */
  logY?: boolean;
  /**
   * Exponential-moving-average factor in [0, 1) (TensorBoard-style, bias-
   * corrected). When > 0 the raw curve is drawn faintly behind the smooth one.
   */
  smooth?: number;
  /**
   * "overlay": one axis for all metrics; "separate": one panel per metric;
   * "auto" (default): separate when magnitudes differ by more than 30x and
   * the y axis is linear.
   */
  layout?: "auto" | "overlay" | "separate";
}

function normalizeHistory(
  where: string,
  history: unknown,
): { steps: number[]; metrics: Map<string, number[]> } {
  const metrics = new Map<string, number[]>();
  if (Array.isArray(history)) {
    if (history.length === 0) {
      throw new ArgumentError(where, "history must hold at least one record");
    }
    const keys = new Set<string>();
    history.forEach((rec, i) => {
      if (rec === null || typeof rec !== "object") {
        throw new ArgumentError(
          where,
          `history[${i}] must be a record like { step, loss }`,
        );
      }
      for (const [k, v] of Object.entries(rec)) {
        if (typeof v === "number") keys.add(k);
      }
    });
    const steps = history.map((rec, i) =>
      typeof rec.step === "number" ? rec.step : i
    );
    for (const k of keys) {
      if (k === "step") continue;
      metrics.set(
        k,
        history.map((rec) => typeof rec[k] === "number" ? rec[k] : NaN),
      );
    }
    return { steps, metrics };
  }
  if (
    history === null || typeof history !== "object" ||
    history instanceof tf.Tensor
  ) {
    throw new ArgumentError(
      where,
      `history must be { step: number[], loss: number[], ... } or an array of { step, loss, ... } records, got ${
        describe(history)
      }`,
    );
  }
  const rec = history as Record<string, unknown>;
  let steps: number[] | undefined = rec.step === undefined
    ? undefined
    : toVector(where, "history.step", rec.step, { minLength: 0 });
  for (const [k, v] of Object.entries(rec)) {
    if (k === "step") continue;
    const ys = toVector(where, `history.${k}`, v, {
      finite: false,
      minLength: 0,
    });
    steps ??= ys.map((_, i) => i);
    if (ys.length !== steps.length) {
      throw new ArgumentError(
        where,
        `history.${k} has ${ys.length} values but history.step has ${steps.length}`,
      );
    }
    metrics.set(k, ys);
  }
  return { steps: steps ?? [], metrics };
}

/** Bias-corrected exponential moving average that skips NaN/Infinity. */
function ema(values: number[], factor: number): number[] {
  let avg = 0;
  let weight = 0;
  return values.map((v) => {
    if (!Number.isFinite(v)) return NaN;
    avg = factor * avg + (1 - factor) * v;
    weight = factor * weight + (1 - factor);
    return avg / weight;
  });
}

function typicalMagnitude(values: number[]): number {
  const finite = values.filter(Number.isFinite).map(Math.abs).sort((a, b) =>
    a - b
  );
  return finite.length ? finite[Math.floor(finite.length / 2)] : NaN;
}

/**
 * Training curves, one line per metric against `step`. Metrics on very
 * different scales (e.g. a loss and an accuracy) get separate stacked
 * panels so neither is flattened.
 *
 * @example
 * trainingCurves({ step, loss, perplexity }, { title: "VQ-VAE training", smooth: 0.9 })
 */
export function trainingCurves(
  history: HistoryLike,
  options: TrainingCurvesOptions,
): Chart {
  const where = "trainingCurves";
  const title = checkTitle(where, options, KEYS.trainingCurves);
  const { steps, metrics } = normalizeHistory(where, history);
  // trainLoop's history also holds the clock (`time`): not a metric to draw.
  let keys = [...metrics.keys()].filter((k) => k !== "time");
  if (options.keys !== undefined) {
    if (!Array.isArray(options.keys) || options.keys.length === 0) {
      throw new ArgumentError(
        where,
        "options.keys must be a non-empty array of metric names",
      );
    }
    for (const k of options.keys) {
      if (!metrics.has(k)) {
        throw new ArgumentError(
          where,
          `options.keys names "${k}", which is not in history (has ${
            keys.map((c) => `"${c}"`).join(", ") || "no metrics"
          })`,
        );
      }
    }
    keys = options.keys;
  }
  if (keys.length === 0) {
    throw new ArgumentError(
      where,
      "history has no metrics to plot (only step)",
    );
  }
  if (steps.length === 0) {
    throw new ArgumentError(where, "history is empty (no steps recorded yet)");
  }
  const smooth = options.smooth === undefined
    ? 0
    : checkNumber(where, "options.smooth", options.smooth, {
      min: 0,
      max: 0.999,
    });
  const layout = options.layout ?? "auto";
  if (!["auto", "overlay", "separate"].includes(layout)) {
    throw new ArgumentError(
      where,
      `options.layout must be "auto", "overlay" or "separate", got ${
        describe(layout)
      }`,
    );
  }
  const series = (k: string): LineSeries[] => {
    const ys = metrics.get(k)!;
    return smooth > 0
      ? [{ name: k, xs: steps, ys, faint: true }, {
        name: k,
        xs: steps,
        ys: ema(ys, smooth),
      }]
      : [{ name: k, xs: steps, ys }];
  };
  const mags = keys.map((k) => typicalMagnitude(metrics.get(k)!)).filter((m) =>
    m > 0
  );
  const spread = mags.length > 1 ? Math.max(...mags) / Math.min(...mags) : 1;
  const separate = keys.length > 1 &&
    (layout === "separate" ||
      (layout === "auto" && !options.logY && spread > 30));
  const defaults = {
    xLabel: "step",
    yLabel: keys.length === 1 ? keys[0] : "value",
  };
  if (!separate) {
    return linesPlot(where, title, keys.flatMap(series), {
      ...options,
      legendLabel: "metric",
    }, defaults);
  }
  const panelHeight = options.height ??
    Math.max(160, Math.round(420 / keys.length));
  const panels = keys.map((k) =>
    linesPlot(
      where,
      k,
      series(k),
      {
        ...options,
        title: k,
        subtitle: undefined,
        height: panelHeight,
        yLabel: k,
      },
      defaults,
      { titleSize: 13 },
    )
  );
  return stack("column", where, panels, { title, subtitle: options.subtitle });
}

// ---------------------------------------------------------------------------
// Histogram and bars

/** Options of `histogram`. */
export interface HistogramOptions extends AxisOptions {
  /** Approximate number of bins (default 30). */
  bins?: number;
  /** Show proportions instead of counts. */
  normalize?: boolean;
}

/** Histogram of `values` (an array or a tensor of any rank, flattened). */
export function histogram(
  values: VectorLike,
  options: HistogramOptions,
): Chart {
  const where = "histogram";
  const title = checkTitle(where, options, KEYS.histogram);
  const data = toVector(where, "values", values, { flatten: true });
  const bins = options.bins === undefined
    ? 30
    : checkInteger(where, "options.bins", options.bins, { min: 1, max: 1000 });
  const { width, height } = size(where, options, 640, 360);
  const reduce = options.normalize ? "proportion" : "count";
  return renderPlot(where, {
    title,
    subtitle: options.subtitle,
    width,
    height,
    x: { label: checkLabel(where, "options.xLabel", options.xLabel, "value") },
    y: {
      label: checkLabel(
        where,
        "options.yLabel",
        options.yLabel,
        options.normalize ? "proportion" : "count",
      ),
      grid: true,
    },
    marks: [
      Plot.rectY(
        data,
        {
          ...Plot.binX({ y: reduce }, {
            x: (d: number) => d,
            thresholds: bins,
          }),
          fill: "steelblue",
        },
      ),
      Plot.ruleY([0]),
    ],
  });
}

/** Options of `bars`. */
export interface BarsOptions extends AxisOptions {
  /** Title of the colour legend for grouped bars (default "series"). */
  legendLabel?: string;
}

/**
 * Bar chart of one value per category, or grouped bars when `values` maps
 * series names to arrays (e.g. `{ empirical, expected }` for Gumbel-max
 * sample frequencies against the softmax probabilities).
 */
export function bars(
  categories: readonly (string | number)[],
  values: VectorLike | Record<string, VectorLike>,
  options: BarsOptions,
): Chart {
  const where = "bars";
  const title = checkTitle(where, options, KEYS.bars);
  if (
    !Array.isArray(categories) || categories.length === 0 ||
    categories.some((c) => typeof c !== "string" && typeof c !== "number")
  ) {
    throw new ArgumentError(
      where,
      `categories must be a non-empty array of strings or numbers, got ${
        describe(categories)
      }`,
    );
  }
  const cats = categories.map(String);
  if (new Set(cats).size !== cats.length) {
    throw new ArgumentError(where, "categories must be distinct");
  }
  const grouped = values !== null && typeof values === "object" &&
    !Array.isArray(values) &&
    !ArrayBuffer.isView(values) && !(values instanceof tf.Tensor);
  const seriesEntries: [string, unknown][] = grouped
    ? Object.entries(values as Record<string, VectorLike>)
    : [["value", values]];
  if (seriesEntries.length === 0) {
    throw new ArgumentError(where, "values must contain at least one series");
  }
  const rows = seriesEntries.flatMap(([name, vs]) => {
    const v = toVector(where, grouped ? `values["${name}"]` : "values", vs);
    if (v.length !== cats.length) {
      throw new ArgumentError(
        where,
        `${
          grouped ? `values["${name}"]` : "values"
        } has ${v.length} entries but there are ${cats.length} categories`,
      );
    }
    return v.map((value, i) => ({ category: cats[i], series: name, value }));
  });
  const names = seriesEntries.map(([n]) => n);
  const { width, height } = size(
    where,
    options,
    Math.max(360, Math.min(960, 80 + cats.length * (20 + 14 * names.length))),
    360,
  );
  const xLabel = checkLabel(
    where,
    "options.xLabel",
    options.xLabel,
    "category",
  );
  const yLabel = checkLabel(where, "options.yLabel", options.yLabel, "value");
  if (!grouped) {
    return renderPlot(where, {
      title,
      subtitle: options.subtitle,
      width,
      height,
      x: { domain: cats, label: xLabel },
      y: { label: yLabel, grid: true },
      marks: [
        Plot.barY(rows, { x: "category", y: "value", fill: "steelblue" }),
        Plot.ruleY([0]),
      ],
    });
  }
  return renderPlot(where, {
    title,
    subtitle: options.subtitle,
    width,
    height,
    fx: { domain: cats, label: xLabel, padding: 0.15 },
    x: { domain: names, axis: null, padding: 0.05 },
    y: { label: yLabel, grid: true },
    color: {
      type: "categorical",
      domain: names,
      scheme: "observable10",
      legend: true,
      label: checkLabel(
        where,
        "options.legendLabel",
        options.legendLabel,
        "series",
      ),
    },
    marks: [
      Plot.barY(rows, {
        fx: "category",
        x: "series",
        y: "value",
        fill: "series",
      }),
      Plot.ruleY([0]),
    ],
  });
}

// ---------------------------------------------------------------------------
// Image grids

/** Images: a tensor [n,h,w], [n,h,w,1|3] (or [n, h*w*c] with `imageShape`), or nested number arrays. */
export type ImagesLike =
  | tf.Tensor
  | number[][][]
  | number[][][][];

/** Options of `imageGridPNG` (the layout of the mosaic). */
export interface ImageGridLayout {
  /** Tiles per row (default min(n, 10)). */
  cols?: number;
  /** Values mapped to black..white; outside values are clipped. Default [0, 1]; "auto" uses the data's min and max. */
  range?: [number, number] | "auto";
  /** Tile shape [h, w] or [h, w, c] for flat images of shape [n, h*w*c]. */
  imageShape?: number[];
  /** Gap between tiles in image pixels (default 1). */
  gap?: number;
  /** Gray level 0..255 of the gaps (default 255, white). */
  gapColor?: number;
  /** Extra blank image rows under each tile row (used for labels). */
  labelRows?: number;
}

/** Options of `imageGrid`. */
export interface ImageGridOptions extends ImageGridLayout {
  /** Drawn above the grid, inside the SVG. Required. */
  title: string;
  /** Optional second line under the title. */
  subtitle?: string;
  /** One caption per image (e.g. class names), drawn under its tile. */
  labels?: readonly (string | number)[];
  /** Display pixels per image pixel (default: about 64 px per tile). */
  scale?: number;
}

interface Mosaic {
  pixels: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3;
  n: number;
  tileH: number;
  tileW: number;
  cols: number;
  rows: number;
  gap: number;
  pitchY: number;
}

function flattenNested(
  where: string,
  data: unknown,
): { values: number[]; shape: number[] } {
  const shape: number[] = [];
  let probe: unknown = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  const values: number[] = [];
  const walk = (v: unknown, depth: number, path: string) => {
    if (depth === shape.length) {
      if (typeof v !== "number") {
        throw new ArgumentError(
          where,
          `images${path} must be a number, got ${describe(v)}`,
        );
      }
      values.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new ArgumentError(
        where,
        `images must be a rectangular nested array: images${path} should have length ${
          shape[depth]
        }, got ${describe(v)}`,
      );
    }
    v.forEach((e, i) => walk(e, depth + 1, `${path}[${i}]`));
  };
  walk(data, 0, "");
  return { values, shape };
}

function buildMosaic(
  where: string,
  images: unknown,
  layout: ImageGridLayout,
): Mosaic {
  let values: ArrayLike<number>;
  let shape: number[];
  if (images instanceof tf.Tensor) {
    if (images.isDisposed) {
      throw new ArgumentError(where, "images has already been disposed");
    }
    values = images.dataSync();
    shape = images.shape;
  } else if (Array.isArray(images)) {
    ({ values, shape } = flattenNested(where, images));
  } else {
    throw new ArgumentError(
      where,
      `images must be a tf.Tensor [n, h, w] / [n, h, w, 1 or 3] or nested number arrays, got ${
        describe(images)
      }`,
    );
  }
  for (let i = 0; i < values.length; i++) {
    // NaN would be drawn as black pixels: say so instead of a plausible image.
    if (!Number.isFinite(values[i])) {
      throw new ArgumentError(
        where,
        `images must be finite, but value ${i} is ${
          values[i]
        } (did the model diverge?)`,
      );
    }
  }
  const n = shape[0];
  let tileShape = shape.slice(1);
  if (layout.imageShape !== undefined) {
    const s = layout.imageShape;
    if (
      !Array.isArray(s) || (s.length !== 2 && s.length !== 3) ||
      s.some((d) => !Number.isInteger(d) || d < 1)
    ) {
      throw new ArgumentError(
        where,
        `options.imageShape must be [h, w] or [h, w, c] of positive integers, got ${
          describe(s)
        }`,
      );
    }
    const per = tf.util.sizeFromShape(s);
    const have = tf.util.sizeFromShape(tileShape);
    if (per !== have) {
      throw new ArgumentError(
        where,
        `options.imageShape [${
          s.join(", ")
        }] holds ${per} values but each image has ${have}`,
      );
    }
    tileShape = s;
  }
  const rankOk = tileShape.length === 2 ||
    (tileShape.length === 3 && (tileShape[2] === 1 || tileShape[2] === 3));
  if (!n || !rankOk || tileShape.some((d) => !(d >= 1))) {
    const hint = tileShape.length === 1
      ? `; flat images need options.imageShape, e.g. imageShape: [28, 28]`
      : "";
    throw new ArgumentError(
      where,
      `images must have shape [n, h, w] or [n, h, w, c] with n >= 1 and c = 1 or 3, got shape [${
        shape.join(", ")
      }]${hint}`,
    );
  }
  const [h, w] = tileShape;
  const channels = (tileShape[2] ?? 1) as 1 | 3;
  const cols = layout.cols === undefined
    ? Math.min(n, 10)
    : checkInteger(where, "options.cols", layout.cols, { min: 1 });
  const gap = layout.gap === undefined
    ? 1
    : checkInteger(where, "options.gap", layout.gap, { min: 0, max: 64 });
  const gapColor = layout.gapColor === undefined
    ? 255
    : checkInteger(where, "options.gapColor", layout.gapColor, {
      min: 0,
      max: 255,
    });
  const labelRows = layout.labelRows ?? 0;

  let lo: number;
  let hi: number;
  const range = layout.range ?? [0, 1];
  if (range === "auto") {
    lo = Infinity;
    hi = -Infinity;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!(hi > lo)) hi = lo + 1; // constant images: avoid 0/0
  } else {
    if (
      !Array.isArray(range) || range.length !== 2 ||
      !range.every((v) => typeof v === "number" && Number.isFinite(v)) ||
      !(range[1] > range[0])
    ) {
      throw new ArgumentError(
        where,
        `options.range must be [min, max] with min < max, or "auto", got ${
          describe(range)
        }`,
      );
    }
    [lo, hi] = range;
  }

  const rows = Math.ceil(n / cols);
  const pitchY = h + gap + labelRows;
  const width = cols * w + (cols - 1) * gap;
  const height = rows * pitchY - gap;
  checkSize(where, "the grid's pixels", width * height * channels);
  const pixels = new Uint8Array(width * height * channels).fill(gapColor);
  const k = 255 / (hi - lo);
  const per = h * w * channels;
  for (let i = 0; i < n; i++) {
    const x0 = (i % cols) * (w + gap);
    const y0 = Math.floor(i / cols) * pitchY;
    const base = i * per;
    for (let y = 0; y < h; y++) {
      let src = base + y * w * channels;
      let dst = ((y0 + y) * width + x0) * channels;
      for (let j = 0; j < w * channels; j++, src++, dst++) {
        const v = (values[src] - lo) * k;
        // NaN fails both comparisons and lands on 0 (black).
        pixels[dst] = v > 0 ? (v < 255 ? Math.round(v) : 255) : 0;
      }
    }
  }
  return {
    pixels,
    width,
    height,
    channels,
    n,
    tileH: h,
    tileW: w,
    cols,
    rows,
    gap,
    pitchY,
  };
}

/**
 * The mosaic of `images` as PNG bytes (for `savePNG` or `Deno.writeFile`):
 * tiles in rows of `cols`, separated by 1-pixel gaps, values clipped to
 * `range`.
 */
export function imageGridPNG(
  images: ImagesLike,
  options: ImageGridLayout = {},
): Uint8Array {
  const m = buildMosaic("imageGridPNG", images, options ?? {});
  return encodePNG(m.pixels, m.width, m.height, m.channels);
}

/**
 * Shows `images` as one grid picture (a single PNG, crisp when enlarged),
 * with optional captions under the tiles.
 *
 * @example
 * imageGrid(xBatch.slice([0, 0, 0, 0], [32, 28, 28, 1]), { title: "Reconstructions", cols: 8, labels })
 */
export function imageGrid(
  images: ImagesLike,
  options: ImageGridOptions,
): Chart {
  const where = "imageGrid";
  const title = checkTitle(where, options, KEYS.imageGrid);
  const labels = options.labels;
  if (
    labels !== undefined &&
    (!Array.isArray(labels) ||
      labels.some((l) => typeof l !== "string" && typeof l !== "number"))
  ) {
    throw new ArgumentError(
      where,
      `options.labels must be an array of strings or numbers, got ${
        describe(labels)
      }`,
    );
  }
  // Decide the scale before the mosaic: label bands depend on it.
  const probe = images instanceof tf.Tensor ? images.shape : undefined;
  const guessH = options.imageShape?.[0] ?? probe?.[1] ??
    (Array.isArray(images) ? images[0]?.length : 28) ?? 28;
  const scale = options.scale === undefined
    ? Math.max(1, Math.min(8, Math.round(64 / Math.max(1, guessH))))
    : checkInteger(where, "options.scale", options.scale, { min: 1, max: 32 });
  const labelPx = 13;
  const m = buildMosaic(where, images, {
    ...options,
    labelRows: labels ? Math.ceil(labelPx / scale) : 0,
  });
  if (labels && labels.length !== m.n) {
    throw new ArgumentError(
      where,
      `options.labels must have one entry per image (${m.n}), got ${labels.length}`,
    );
  }
  const url = pngDataURL(encodePNG(m.pixels, m.width, m.height, m.channels));
  const dispW = m.width * scale;
  const dispH = m.height * scale;
  const tileDispW = m.tileW * scale;
  const fontSize = 10;
  const maxChars = Math.max(
    2,
    Math.floor((tileDispW + m.gap * scale) / (fontSize * 0.6)),
  );
  const clip = (s: string) =>
    s.length > maxChars ? s.slice(0, maxChars - 1) + "…" : s;
  const textRows = (labels ?? []).map((l, i) => ({
    x: PAD + ((i % m.cols) * (m.tileW + m.gap) + m.tileW / 2) * scale,
    y: (Math.floor(i / m.cols) * m.pitchY + m.tileH) * scale + 2,
    text: clip(String(l)),
  }));
  return renderPlot(where, {
    title,
    subtitle: options.subtitle,
    width: dispW + 2 * PAD,
    height: dispH + PAD,
    margin: 0,
    // Identity scales: every position below is in SVG pixels.
    x: { type: "identity", axis: null },
    y: { type: "identity", axis: null },
    marks: [
      Plot.image([0], {
        x: () => PAD + dispW / 2,
        y: () => dispH / 2,
        width: dispW,
        height: dispH,
        src: () => url,
        imageRendering: "pixelated",
        preserveAspectRatio: "none",
      }),
      ...(labels
        ? [
          Plot.text(textRows, {
            x: "x",
            y: "y",
            text: "text",
            fontSize,
            lineAnchor: "top",
            fill: "#111",
          }),
        ]
        : []),
    ],
  });
}

// ---------------------------------------------------------------------------
// Heatmap and vector field

/** Options of `heatmap`. */
export interface HeatmapOptions extends AxisOptions {
  /** Names of the columns (default 0, 1, ...). */
  xTicks?: (string | number)[];
  /** Names of the rows (default 0, 1, ...). */
  yTicks?: (string | number)[];
  /** Colour scheme (any Plot scheme; default "blues"). */
  scheme?: string;
  /** Write the value in each cell (default: when there are at most 150 cells). */
  annotate?: boolean;
  /** Title of the colour legend (default "value"). */
  legendLabel?: string;
}

/**
 * Heatmap of a matrix (rows top to bottom), e.g. a confusion matrix or
 * code usage per class.
 */
export function heatmap(matrix: MatrixLike, options: HeatmapOptions): Chart {
  const where = "heatmap";
  const title = checkTitle(where, options, KEYS.heatmap);
  const { matrix: m, created } = toMatrix(where, "matrix", matrix);
  let flat: Float32Array;
  const [rowsN, colsN] = m.shape;
  try {
    flat = m.dataSync() as Float32Array;
  } finally {
    if (created) m.dispose();
  }
  const ticks = (name: string, value: unknown, count: number): string[] => {
    if (value === undefined) {
      return Array.from({ length: count }, (_, i) => String(i));
    }
    if (!Array.isArray(value) || value.length !== count) {
      throw new ArgumentError(
        where,
        `${name} must have one name per ${
          name === "options.xTicks" ? "column" : "row"
        } (${count}), got ${describe(value)}`,
      );
    }
    const out = value.map(String);
    if (new Set(out).size !== out.length) {
      throw new ArgumentError(where, `${name} must be distinct`);
    }
    return out;
  };
  const xs = ticks("options.xTicks", options.xTicks, colsN);
  const ys = ticks("options.yTicks", options.yTicks, rowsN);
  const cells = Array.from(flat, (v, k) => ({
    x: xs[k % colsN],
    y: ys[Math.floor(k / colsN)],
    v,
  }));
  const every = (names: string[]) => {
    const step = Math.ceil(names.length / 25);
    return names.filter((_, i) => i % step === 0);
  };
  const cellPx = Math.max(
    6,
    Math.min(40, Math.floor(560 / Math.max(rowsN, colsN))),
  );
  const { width, height } = size(
    where,
    options,
    60 + colsN * cellPx + 20,
    30 + rowsN * cellPx + 40,
  );
  const annotate = options.annotate ?? rowsN * colsN <= 150;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of flat) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const mid = (lo + hi) / 2;
  const fmt = (v: number) =>
    Number.isInteger(v)
      ? String(v)
      : Math.abs(v) >= 100
      ? v.toFixed(0)
      : v.toPrecision(2);
  return renderPlot(where, {
    title,
    subtitle: options.subtitle,
    width,
    height,
    marginLeft: 60,
    padding: 0,
    x: {
      domain: xs,
      ticks: every(xs),
      label: checkLabel(where, "options.xLabel", options.xLabel, "column"),
      axis: "bottom",
    },
    y: {
      domain: ys,
      ticks: every(ys),
      label: checkLabel(where, "options.yLabel", options.yLabel, "row"),
    },
    color: {
      scheme: options.scheme ?? "blues",
      legend: true,
      label: checkLabel(
        where,
        "options.legendLabel",
        options.legendLabel,
        "value",
      ),
    } as Plot.ScaleOptions,
    marks: [
      Plot.cell(cells, { x: "x", y: "y", fill: "v", inset: 0.5 }),
      ...(annotate
        ? [
          Plot.text(cells, {
            x: "x",
            y: "y",
            text: (d: { v: number }) => fmt(d.v),
            // Dark text on light cells and vice versa ("blues" is light at the low end).
            fill: (d: { v: number }) => (d.v > mid ? "white" : "black"),
            fontSize: 10,
          }),
        ]
        : []),
    ],
  });
}

/** Options of `vectorField`. */
export interface VectorFieldOptions extends AxisOptions {
  /** Longest arrow in pixels (default: about the grid spacing). */
  maxLength?: number;
  /**
   * The speed |v| at the top of the colour scale and of the arrow-length
   * scale (default: the largest |v| of this chart). Give panels that are
   * compared the same value, so one colour means one speed in all of them.
   */
  maxMagnitude?: number;
}

/**
 * Arrows `vectors[i]` at `points[i]` (both [n, 2]), coloured by magnitude,
 * e.g. the dynamics f(z, t) of a neural ODE on a grid.
 */
export function vectorField(
  points: MatrixLike,
  vectors: MatrixLike,
  options: VectorFieldOptions,
): Chart {
  const where = "vectorField";
  const title = checkTitle(where, options, KEYS.vectorField);
  const p = toPoints(where, "points", points);
  const v = toPoints(where, "vectors", vectors);
  const n = p.xs.length;
  if (v.xs.length !== n) {
    throw new ArgumentError(
      where,
      `vectors must have one row per point (${n}), got ${v.xs.length}`,
    );
  }
  const { width, height } = size(where, options, 520, 480);
  // Loops, not Math.min(...a): spreading 100,000+ values overflows the stack.
  const extent = (a: number[]) => {
    let lo = Infinity;
    let hi = -Infinity;
    for (const x of a) {
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
    if (hi === lo) {
      lo -= 1;
      hi += 1;
    }
    const padding = 0.05 * (hi - lo);
    return [lo - padding, hi + padding] as [number, number];
  };
  const xd = extent(p.xs);
  const yd = extent(p.ys);
  const margin = { top: 20, right: 20, bottom: 40, left: 50 };
  const frameW = width - margin.left - margin.right;
  const frameH = height - margin.top - margin.bottom;
  // Pixels per data unit, so arrow directions are right on screen even when
  // the x and y axes have different scales.
  const kx = frameW / (xd[1] - xd[0]);
  const ky = frameH / (yd[1] - yd[0]);
  const maxLength = options.maxLength === undefined
    ? Math.max(6, 0.9 * Math.sqrt((frameW * frameH) / Math.max(1, n)))
    : checkNumber(where, "options.maxLength", options.maxLength, { min: 1 });
  const rows = p.xs.map((x, i) => {
    const dx = v.xs[i];
    const dy = v.ys[i];
    return {
      x,
      y: p.ys[i],
      rotate: (Math.atan2(dx * kx, dy * ky) * 180) / Math.PI,
      length: Math.hypot(dx, dy),
    };
  });
  let fastest = 0;
  for (const r of rows) fastest = Math.max(fastest, r.length);
  const longest = options.maxMagnitude === undefined
    ? fastest || 1
    : checkNumber(where, "options.maxMagnitude", options.maxMagnitude, {
      min: 0,
      minExclusive: true,
    });
  return renderPlot(where, {
    title,
    subtitle: options.subtitle,
    width,
    height,
    ...{
      marginTop: margin.top,
      marginRight: margin.right,
      marginBottom: margin.bottom,
      marginLeft: margin.left,
    },
    grid: true,
    x: {
      domain: xd,
      label: checkLabel(where, "options.xLabel", options.xLabel, "z₁"),
    },
    y: {
      domain: yd,
      label: checkLabel(where, "options.yLabel", options.yLabel, "z₂"),
    },
    length: { domain: [0, longest], range: [0, maxLength] },
    color: {
      domain: [0, longest],
      scheme: "viridis",
      legend: true,
      label: "|v|",
    } as Plot.ScaleOptions,
    marks: [
      Plot.vector(rows, {
        x: "x",
        y: "y",
        rotate: "rotate",
        length: "length",
        stroke: "length",
        anchor: "middle",
      }),
    ],
  });
}

// ---------------------------------------------------------------------------
// Layout

/** Options of `row` and `column`. */
export interface LayoutOptions {
  /** Drawn above the whole group. Required. */
  title: string;
  /** Optional second line under the title. */
  subtitle?: string;
  /** Space between charts in pixels (default 16). */
  gap?: number;
}

function stack(
  direction: "row" | "column",
  where: string,
  charts: unknown,
  options: LayoutOptions,
): Chart {
  const title = checkTitle(where, options, KEYS.layout);
  if (
    !Array.isArray(charts) || charts.length === 0 ||
    charts.some((c) => !(c instanceof Chart))
  ) {
    throw new ArgumentError(
      where,
      `charts must be a non-empty array of Chart objects, got ${
        describe(charts)
      }`,
    );
  }
  const gap = options.gap === undefined
    ? 16
    : checkInteger(where, "options.gap", options.gap, { min: 0, max: 500 });
  const parts: string[] = [];
  let offset = 0;
  let cross = 0;
  for (const c of charts as Chart[]) {
    const block = { markup: c.svg(), width: c.width, height: c.height };
    parts.push(
      direction === "row" ? place(block, offset, 0) : place(block, 0, offset),
    );
    offset += (direction === "row" ? c.width : c.height) + gap;
    cross = Math.max(cross, direction === "row" ? c.height : c.width);
  }
  offset -= gap;
  const [width, height] = direction === "row"
    ? [offset, cross]
    : [cross, offset];
  return new Chart({
    title,
    subtitle: options.subtitle,
    body: {
      markup:
        `<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${
          parts.join("")
        }</svg>`,
      width,
      height,
    },
  });
}

/** Lays charts side by side in one figure (one SVG, so it saves as one file). */
export function row(charts: Chart[], options: LayoutOptions): Chart {
  return stack("row", "row", charts, options);
}

/** Stacks charts vertically in one figure. */
export function column(charts: Chart[], options: LayoutOptions): Chart {
  return stack("column", "column", charts, options);
}
