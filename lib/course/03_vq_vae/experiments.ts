/**
 * Helpers of notebook 03 only: plain-data summaries of a VQ-VAE, the
 * straight-through check table, the angle between the straight-through and
 * a softened quantizer's gradient, the summary of a short sweep run, the
 * autoencoder / VAE / VQ-VAE comparison, rate bounds of code grids, and
 * saving/loading a trained run.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkInteger,
  checkNumber,
  checkOptions,
  checkTensor,
} from "../../validate.ts";
import { randomNormal, rngFrom, rngOrStream, type Seed } from "../../random.ts";
import { countParameters } from "../../nn.ts";
import {
  codeUsage,
  vectorQuantize,
  VQVAE,
  type VQVAEEvaluation,
} from "../../vqvae.ts";
import { Autoencoder, GaussianVAE } from "../../vae.ts";

const JUPYTER_DISPLAY = Symbol.for("Jupyter.display");

/** What `vqvaeSizes` returns: plain numbers. */
export interface VQVAESizes {
  /** Shape of the encoder output h for one image: [1, 7, 7, d]. */
  latentShape: number[];
  /** Number of code positions l = 7 * 7. */
  positions: number;
  /** Code width d. */
  dim: number;
  /** Codebook size K. */
  numCodes: number;
  /** Trainable parameters of the encoder. */
  encoderParameters: number;
  /** Trainable parameters of the decoder. */
  decoderParameters: number;
  /** Entries of the codebook, K * d. */
  codebookParameters: number;
}

/**
 * The shape of h for one image and the parameter counts of a VQ-VAE's
 * parts. Encodes one blank image to read the shape (no tensor is left).
 */
export function vqvaeSizes(model: VQVAE): VQVAESizes {
  if (!(model instanceof VQVAE)) {
    throw new ArgumentError("vqvaeSizes", "model must be a VQVAE");
  }
  const latentShape = tf.tidy(() => {
    const blank: tf.Tensor = tf.zeros([1, ...model.imageShape]);
    return model.encode(blank as tf.Tensor4D).shape;
  });
  const { numCodes, dim } = model.config;
  return {
    latentShape,
    positions: latentShape[1] * latentShape[2],
    dim,
    numCodes,
    encoderParameters: countParameters(model.encoder),
    decoderParameters: countParameters(model.decoder),
    codebookParameters: numCodes * dim,
  };
}

/** One row of a `StraightThroughTable`: plain numbers. */
export interface StraightThroughRow {
  /** The name of the form. */
  form: string;
  /** Largest |form(h) - q(h)|: 0 when the form has the quantizer's value. */
  valueError: number;
  /** Largest |d<up, form(h)>/dh - up|: 0 when the gradient is passed straight through. */
  gradientError: number;
}

/** What `straightThroughTable` returns: the rows, and a narrow table for `show`. */
export interface StraightThroughTable extends DisplayTable<StraightThroughRow> {
  /** Largest |d<up, q(h)>/dh|: the true derivative of the quantizer (0). */
  quantizerGradient: number;
}

const formatError = (v: number) => v === 0 ? "0" : v.toExponential(1);

/** Something `show` displays as a narrow table: its rows as plain data, and Jupyter's display hook. */
export interface DisplayTable<Row> {
  /** One entry per table row. */
  rows: Row[];
  /** Jupyter's display hook: an HTML table (and plain text outside Jupyter). */
  [JUPYTER_DISPLAY](): Record<string, string>;
}

const escapeHTML = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** The HTML and plain-text bundle of a table: first column left-aligned (as code when `codeFirst`), the rest right-aligned. */
function tableBundle(
  header: string[],
  cells: string[][],
  note: string,
  codeFirst: boolean,
): Record<string, string> {
  const widths = header.map((_, j) =>
    Math.max(...[header, ...cells].map((c) => c[j].length))
  );
  const line = (c: string[]) =>
    c.map((s, j) => j === 0 ? s.padEnd(widths[j]) : s.padStart(widths[j]))
      .join("  ");
  const align = (j: number) => `text-align:${j === 0 ? "left" : "right"}`;
  const first = (s: string) =>
    codeFirst ? `<code>${escapeHTML(s)}</code>` : escapeHTML(s);
  const html = `<table><thead><tr>${
    header.map((s, j) => `<th style="${align(j)}">${escapeHTML(s)}</th>`)
      .join("")
  }</tr></thead><tbody>${
    cells.map((c) =>
      `<tr>${
        c.map((s, j) =>
          `<td style="${align(j)}">${j === 0 ? first(s) : escapeHTML(s)}</td>`
        ).join("")
      }</tr>`
    ).join("")
  }</tbody></table>${note ? `<p>${escapeHTML(note)}</p>` : ""}`;
  return {
    "text/html": html,
    "text/plain": [line(header), ...cells.map(line), ...(note ? [note] : [])]
      .join("\n"),
  };
}

/**
 * Checks written forms of the straight-through estimator against the
 * quantizer `quantize`: for each form, the largest deviation of its value
 * from q(h) and of its gradient (with upstream gradient `upstream`) from
 * `upstream` itself; and the largest entry of the quantizer's own gradient.
 * Plain numbers, displayed by `show` as a narrow three-column table.
 *
 * @throws ArgumentError when `forms` is empty or h and upstream differ in shape
 */
export function straightThroughTable(
  forms: Record<string, (h: tf.Tensor) => tf.Tensor>,
  quantize: (h: tf.Tensor) => tf.Tensor,
  h: tf.Tensor,
  upstream: tf.Tensor,
): StraightThroughTable {
  const where = "straightThroughTable";
  const entries = forms !== null && typeof forms === "object"
    ? Object.entries(forms)
    : [];
  if (
    entries.length === 0 || entries.some(([, f]) => typeof f !== "function")
  ) {
    throw new ArgumentError(
      where,
      "forms must be a non-empty record of functions",
    );
  }
  if (typeof quantize !== "function") {
    throw new ArgumentError(where, "quantize must be a function");
  }
  checkTensor(where, "h", h, { dtype: "float32" });
  checkTensor(where, "upstream", upstream, {
    shape: h.shape,
    dtype: "float32",
  });
  const maxAbs = (t: tf.Tensor) => t.abs().max().dataSync()[0];
  const gradOf = (f: (a: tf.Tensor) => tf.Tensor) =>
    tf.grad((a: tf.Tensor) => f(a).mul(upstream).sum())(h);
  const { rows, quantizerGradient } = tf.tidy(() => {
    const q = quantize(h);
    return {
      quantizerGradient: maxAbs(gradOf(quantize)),
      rows: entries.map(([form, fn]) => ({
        form,
        valueError: maxAbs(fn(h).sub(q)),
        gradientError: maxAbs(gradOf(fn).sub(upstream)),
      })),
    };
  });
  const header = ["form", "max |value − q|", "max |grad − upstream|"];
  const cells = rows.map((r) => [
    r.form,
    formatError(r.valueError),
    formatError(r.gradientError),
  ]);
  const note = `the quantizer's own gradient: max |dq/dh| = ${
    formatError(quantizerGradient)
  }`;
  return {
    rows,
    quantizerGradient,
    [JUPYTER_DISPLAY]: () => tableBundle(header, cells, note, true),
  };
}

/**
 * The mean of the rows of `h` [n, d] assigned to each code of `codebook`
 * [K, d] (nearest code): the k-means update. A code with no vector gets
 * NaN (0 / 0). Returns a [K, d] tensor the caller disposes.
 */
export function assignedMeans(
  h: tf.Tensor2D,
  codebook: tf.Tensor2D,
): tf.Tensor2D {
  const where = "assignedMeans";
  checkTensor(where, "h", h, { rank: 2, dtype: "float32" });
  checkTensor(where, "codebook", codebook, { rank: 2, dtype: "float32" });
  const out = vectorQuantize(h, codebook);
  tf.dispose([out.quantized, out.codebookLoss, out.commitmentLoss, out.loss]);
  const k = codebook.shape[0];
  const idx = out.indices as tf.Tensor1D;
  const means = tf.tidy(() =>
    tf.unsortedSegmentSum(h, idx, k).div(
      tf.unsortedSegmentSum(tf.ones([h.shape[0], 1]), idx, k),
    ) as tf.Tensor2D
  );
  idx.dispose();
  return means;
}

/** A matrix as JSON with every entry rounded to `digits` decimals, e.g. "[[0.5,0.467]]". */
export function roundedJSON(t: tf.Tensor | number[][], digits = 3): string {
  const where = "roundedJSON";
  checkInteger(where, "digits", digits, { min: 0, max: 15 });
  const rows = t instanceof tf.Tensor
    ? (checkTensor(where, "t", t, { rank: 2 }).arraySync() as number[][])
    : t;
  if (!Array.isArray(rows) || rows.some((r) => !Array.isArray(r))) {
    throw new ArgumentError(where, "t must be a rank-2 tensor or a number[][]");
  }
  return JSON.stringify(rows.map((r) => r.map((v) => +v.toFixed(digits))));
}

/** A trained VQ-VAE and its training history, as saved by `saveVQVAERun`. */
export interface VQVAERun {
  /** The model (the caller disposes it). */
  model: VQVAE;
  /** Metrics per recorded step, as `trainLoop` returns them. */
  history: Record<string, number[]>;
}

/**
 * Loads a model saved by `saveVQVAERun` from `<path>.json`/`.bin` and its
 * history from `<path>.history.json`; null when `<path>.json` does not exist.
 */
export async function loadVQVAERun(path: string): Promise<VQVAERun | null> {
  if (typeof path !== "string" || path === "") {
    throw new ArgumentError("loadVQVAERun", "path must be a non-empty string");
  }
  const exists = await Deno.stat(`${path}.json`).then(() => true, () => false);
  if (!exists) return null;
  const model = await VQVAE.load(path);
  try {
    const history = JSON.parse(
      await Deno.readTextFile(`${path}.history.json`),
    ) as Record<string, number[]>;
    return { model, history };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * Saves a model and its history as one save (`VQVAE.save` with the history
 * as `<path>.history.json`): all three files or none. Never overwrites.
 */
export async function saveVQVAERun(
  model: VQVAE,
  history: Record<string, number[]>,
  path: string,
): Promise<void> {
  const where = "saveVQVAERun";
  if (!(model instanceof VQVAE)) {
    throw new ArgumentError(where, "model must be a VQVAE");
  }
  if (history === null || typeof history !== "object") {
    throw new ArgumentError(where, "history must be a record of number arrays");
  }
  await model.save(path, {
    files: { "history.json": JSON.stringify(history) },
  });
}

/**
 * Code grids int32 [limit, 7, 7] of the first `limit` images (default all),
 * encoded `batchSize` (default 1000) at a time to bound memory. The caller
 * disposes the result.
 */
export function codesInBatches(
  model: VQVAE,
  images: tf.Tensor4D,
  options?: { limit?: number; batchSize?: number },
): tf.Tensor3D {
  const where = "codesInBatches";
  const { limit, batchSize = 1000 } = checkOptions(where, options, [
    "limit",
    "batchSize",
  ]);
  if (!(model instanceof VQVAE)) {
    throw new ArgumentError(where, "model must be a VQVAE");
  }
  checkTensor(where, "images", images, {
    shape: [null, ...model.imageShape],
  });
  const n = checkInteger(where, "limit", limit ?? images.shape[0], {
    min: 1,
    max: images.shape[0],
  });
  checkInteger(where, "batchSize", batchSize, { min: 1 });
  const parts: tf.Tensor3D[] = [];
  try {
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      parts.push(tf.tidy(() =>
        model.codes(
          images.slice([start, 0, 0, 0], [size, ...model.imageShape]),
        )
      ));
    }
    return tf.concat(parts) as tf.Tensor3D;
  } finally {
    tf.dispose(parts);
  }
}

/** The rate bound of a code grid under the uniform prior: H W log2 K bits per image. */
export function rateBoundBits(numCodes: number, height = 7, width = 7): number {
  checkInteger("rateBoundBits", "numCodes", numCodes, { min: 1 });
  checkInteger("rateBoundBits", "height", height, { min: 1 });
  checkInteger("rateBoundBits", "width", width, { min: 1 });
  return height * width * Math.log2(numCodes);
}

/**
 * Code grids int32 [n, height, width] drawn from the uniform prior (caller
 * disposes). Without a seed, the package's shared stream continues.
 */
export function uniformCodes(
  n: number,
  numCodes: number,
  options?: { height?: number; width?: number; seed?: Seed },
): tf.Tensor3D {
  const where = "uniformCodes";
  const { height = 7, width = 7, seed } = checkOptions(where, options, [
    "height",
    "width",
    "seed",
  ]);
  checkInteger(where, "n", n, { min: 1 });
  checkInteger(where, "numCodes", numCodes, { min: 1 });
  checkInteger(where, "height", height, { min: 1 });
  checkInteger(where, "width", width, { min: 1 });
  const rng = rngOrStream(seed, where);
  const values = new Int32Array(n * height * width);
  for (let i = 0; i < values.length; i++) values[i] = rng.int(numCodes);
  return tf.tensor3d(values, [n, height, width], "int32");
}

/** What `independentCodeBits` returns: plain numbers. */
export interface IndependentCodeBits {
  /** Perplexity of the pooled code histogram (an effective number of codes). */
  perplexity: number;
  /** Bits per grid if every position were coded independently with that histogram: H W log2(perplexity). */
  bits: number;
}

/**
 * The code length of a grid when its positions are coded independently
 * with the empirical code distribution of `codes` (int32 [n, H, W]):
 * H W times the entropy in bits, i.e. H W log2(perplexity). Between a
 * learned prior's NLL (which also uses the dependencies) and the rate
 * bound H W log2 K (which uses neither).
 */
export function independentCodeBits(
  codes: tf.Tensor3D,
  numCodes: number,
): IndependentCodeBits {
  const where = "independentCodeBits";
  checkTensor(where, "codes", codes, { rank: 3, dtype: "int32" });
  const { perplexity } = codeUsage(codes, numCodes);
  return {
    perplexity,
    bits: codes.shape[1] * codes.shape[2] * Math.log2(perplexity),
  };
}

// ---------------------------------------------------------------------------
// Why straight-through works: against the true gradient of a softened quantizer

/**
 * The softened quantizer: each row h_i of h [n, d] becomes the average of
 * the codes weighted by softmax_k(-||h_i - e_k||^2 / T). Differentiable;
 * as T -> 0 all the weight goes to the nearest code (the hard quantizer).
 */
function softQuantizer(
  h: tf.Tensor2D,
  codebook: tf.Tensor2D,
  temperature: number,
): tf.Tensor2D {
  // ||h - e||^2 = ||h||^2 - 2 h.e + ||e||^2, as in nearestCodes: [n, K].
  const squared = h.square().sum(1, true)
    .sub(tf.matMul(h, codebook, false, true).mul(2))
    .add(codebook.square().sum(1).expandDims(0));
  const weights = tf.softmax(squared.neg().div(temperature)); // p(k | h_i)
  return tf.matMul(weights, codebook);
}

/** The codes of a square lattice with the given spacing that covers [-radius, radius]^2, as [K, 2]. */
function squareLattice(spacing: number, radius: number): tf.Tensor2D {
  const m = Math.round(radius / spacing);
  const codes: number[] = [];
  for (let i = -m; i <= m; i++) {
    for (let j = -m; j <= m; j++) codes.push(i * spacing, j * spacing);
  }
  return tf.tensor2d(codes, [codes.length / 2, 2]);
}

/** Options of `straightThroughAngles`. */
export interface StraightThroughAnglesOptions {
  /** Lattice spacings of the 2-D codebooks, coarse to fine (default 2 down to 0.12). */
  spacings?: number[];
  /** Temperatures T of the softened quantizer (default [0.005, 0.02, 0.08]). */
  temperatures?: number[];
  /** Number of random points h ~ N(0, I) and upstream gradients g ~ N(0, I) (default 1000). */
  points?: number;
  /** Seed of h and g (default 0). */
  seed?: number;
}

/** What `straightThroughAngles` returns: plain numbers, one entry per spacing. */
export interface StraightThroughAngles {
  /** The lattice spacings. */
  spacings: number[];
  /** Mean squared distortion ||h - q(h)||^2 of the hard (nearest-code) quantizer at each spacing. */
  distortion: number[];
  /** Per temperature ("T = 0.02"): the mean cosine between the straight-through gradient g and the true gradient J^T g. */
  cosine: Record<string, number[]>;
  /** Per temperature: the median of |J^T g| / |g| (0: the true gradient vanishes, 1: as large as straight-through's). */
  gradientRatio: Record<string, number[]>;
}

const cosineOf = (a: number[], b: number[]) => {
  const dot = a.reduce((s, v, i) => s + v * b[i], 0);
  const norms = Math.hypot(...a) * Math.hypot(...b);
  return norms > 0 ? dot / norms : 0; // a zero gradient has no direction
};

const median = (v: number[]) => {
  const s = [...v].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * How good the straight-through gradient is, on 2-D codebooks (square
 * lattices) of decreasing spacing: for random points h and upstream
 * gradients g, straight-through passes g itself; the softened quantizer
 * `softQuantizer` at temperature T has the true gradient J^T g (by
 * autodiff). Reports, per spacing, the hard quantizer's distortion and, per
 * temperature, the mean cosine between the two gradients and the median
 * ratio of their lengths. Plain numbers.
 *
 * ```ts
 * const angles = straightThroughAngles({ points: 300 });
 * angles.cosine["T = 0.02"]; // ~0.6 for coarse codebooks, ~1 once the distortion is well below T
 * ```
 */
export function straightThroughAngles(
  options?: StraightThroughAnglesOptions,
): StraightThroughAngles {
  const where = "straightThroughAngles";
  const o = checkOptions(where, options, [
    "spacings",
    "temperatures",
    "points",
    "seed",
  ]);
  const spacings = o.spacings ?? [2, 1.4, 1, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12];
  const temperatures = o.temperatures ?? [0.005, 0.02, 0.08];
  for (
    const [name, list] of [["spacings", spacings], [
      "temperatures",
      temperatures,
    ]] as const
  ) {
    if (!Array.isArray(list) || list.length === 0) {
      throw new ArgumentError(where, `${name} must be a non-empty array`);
    }
    list.forEach((v, i) =>
      checkNumber(where, `${name}[${i}]`, v, { min: 0, minExclusive: true })
    );
  }
  const n = checkInteger(where, "points", o.points ?? 1000, { min: 1 });
  const rng = rngFrom(checkNumber(where, "seed", o.seed ?? 0));
  const [h, g] = tf.tidy(() => [
    randomNormal([n, 2], { seed: rng }) as tf.Tensor2D,
    randomNormal([n, 2], { seed: rng }) as tf.Tensor2D,
  ]);
  const gRows = g.arraySync() as number[][];
  const result: StraightThroughAngles = {
    spacings: [...spacings],
    distortion: [],
    cosine: {},
    gradientRatio: {},
  };
  try {
    for (const spacing of spacings) {
      const codebook = squareLattice(spacing, 4.5);
      try {
        result.distortion.push(tf.tidy(() => {
          const q = vectorQuantize(h, codebook, { skipFiniteCheck: true });
          return q.quantized.sub(h).square().sum(1).mean().dataSync()[0];
        }));
        for (const t of temperatures) {
          const trueGrad = tf.tidy(() =>
            tf.grad((x: tf.Tensor) =>
              softQuantizer(x as tf.Tensor2D, codebook, t).mul(g).sum()
            )(h).arraySync() as number[][]
          );
          const key = `T = ${t}`;
          (result.cosine[key] ??= []).push(
            trueGrad.reduce((s, r, i) => s + cosineOf(r, gRows[i]), 0) / n,
          );
          (result.gradientRatio[key] ??= []).push(
            median(
              trueGrad.map((r, i) =>
                Math.hypot(...r) / Math.hypot(...gRows[i])
              ),
            ),
          );
        }
      } finally {
        codebook.dispose();
      }
    }
  } finally {
    tf.dispose([h, g]);
  }
  return result;
}

// ---------------------------------------------------------------------------
// Short sweep runs and the autoencoder / VAE / VQ-VAE comparison

/** What `sweepPoint` returns: plain numbers. */
export interface SweepPoint {
  /** Reconstruction MSE per pixel on the evaluation images. */
  mse: number;
  /** Perplexity of their code histogram. */
  perplexity: number;
  /** Codes they use (of K). */
  used: number;
  /** Mean commitment distance ||h - sg(e)||^2 over the last tenth of the training steps. */
  commitment: number;
}

/**
 * The summary of one short training run: test reconstruction error and code
 * usage of `model` on `images` (`VQVAE.evaluate`), and how far the encoder
 * outputs sat from their codes at the end of training (from `history`, as
 * `trainLoop` returns it).
 */
export function sweepPoint(
  model: VQVAE,
  history: Record<string, number[]>,
  images: tf.Tensor4D,
): SweepPoint {
  const where = "sweepPoint";
  if (!(model instanceof VQVAE)) {
    throw new ArgumentError(where, "model must be a VQVAE");
  }
  const commitment = history?.commitment;
  if (!Array.isArray(commitment) || commitment.length === 0) {
    throw new ArgumentError(where, "history must have a commitment array");
  }
  const tail = commitment.slice(
    -Math.max(1, Math.round(commitment.length / 10)),
  );
  const ev = model.evaluate(images);
  return {
    mse: ev.mse,
    perplexity: ev.perplexity,
    used: ev.used,
    commitment: tail.reduce((a, b) => a + b, 0) / tail.length,
  };
}

/** A sweep of one setting as a narrow table: the setting, test MSE, perplexity, codes used, commitment distance. */
export function sweepTable(
  setting: string,
  values: readonly number[],
  points: readonly SweepPoint[],
): DisplayTable<SweepPoint & { value: number }> {
  const where = "sweepTable";
  if (!Array.isArray(values) || values.length !== points?.length) {
    throw new ArgumentError(
      where,
      "values and points must be arrays of the same length",
    );
  }
  const rows = points.map((p, i) => ({ value: values[i], ...p }));
  const header = [
    setting,
    "test MSE",
    "perplexity",
    "codes used",
    "||h − e||²",
  ];
  const cells = rows.map((r) => [
    String(r.value),
    r.mse.toFixed(4),
    r.perplexity.toFixed(1),
    String(r.used),
    r.commitment.toExponential(1),
  ]);
  return {
    rows,
    [JUPYTER_DISPLAY]: () => tableBundle(header, cells, "", false),
  };
}

/** One row of `latentComparison`. */
export interface LatentComparisonRow {
  /** The model's name. */
  model: string;
  /** Test reconstruction MSE per pixel. */
  mse: number;
  /** Rate in bits per image: the VAE's KL / ln 2, the VQ-VAE's prior NLL; Infinity for a deterministic real-valued code. */
  bits: number;
  /** How much of the latent is in use, in words (active dimensions, codes used). */
  inUse: string;
}

/**
 * Autoencoders, Gaussian VAEs and a VQ-VAE on the same test images: the
 * reconstruction MSE, the rate in bits per image and how much of each
 * latent is in use. `flat` maps names to trained `Autoencoder`s or
 * `GaussianVAE`s (evaluated on `images`); `vq` gives the VQ-VAE's own
 * evaluation and its learned prior's test NLL in bits. Plain numbers,
 * displayed by `show` as a table.
 */
export function latentComparison(
  flat: Record<string, Autoencoder | GaussianVAE>,
  vq: {
    name: string;
    evaluation: VQVAEEvaluation;
    bits: number;
    numCodes: number;
  },
  images: tf.Tensor,
): DisplayTable<LatentComparisonRow> {
  const where = "latentComparison";
  if (flat === null || typeof flat !== "object") {
    throw new ArgumentError(where, "flat must be a record of trained models");
  }
  const { name, evaluation, bits, numCodes } = checkOptions(
    where,
    vq,
    ["name", "evaluation", "bits", "numCodes"],
    "vq",
  );
  if (
    typeof name !== "string" || typeof evaluation?.mse !== "number" ||
    typeof bits !== "number"
  ) {
    throw new ArgumentError(
      where,
      "vq must be { name, evaluation (VQVAE.evaluate), bits (the prior's test NLL), numCodes }",
    );
  }
  checkInteger(where, "vq.numCodes", numCodes, { min: 1 });
  const rows: LatentComparisonRow[] = Object.entries(flat).map(([name, m]) => {
    if (!(m instanceof Autoencoder || m instanceof GaussianVAE)) {
      throw new ArgumentError(
        where,
        `flat["${name}"] must be an Autoencoder or a GaussianVAE`,
      );
    }
    const ev = m.evaluate(images);
    return m instanceof GaussianVAE
      ? {
        model: name,
        mse: ev.mse,
        bits: ev.rate / Math.LN2,
        inUse: `${ev.activeUnits} of ${m.latentDim} dimensions`,
      }
      : {
        model: name,
        mse: ev.mse,
        bits: Infinity,
        inUse: `${m.latentDim} real numbers, no prior`,
      };
  });
  rows.push({
    model: name,
    mse: evaluation.mse,
    bits,
    inUse: `${evaluation.used} of ${numCodes} codes`,
  });
  const header = [
    "model",
    "test MSE",
    "rate (bits per image)",
    "latent in use",
  ];
  const cells = rows.map((r) => [
    r.model,
    r.mse.toFixed(4),
    Number.isFinite(r.bits) ? r.bits.toFixed(1) : "unbounded",
    r.inUse,
  ]);
  return {
    rows,
    [JUPYTER_DISPLAY]: () => tableBundle(header, cells, "", false),
  };
}
