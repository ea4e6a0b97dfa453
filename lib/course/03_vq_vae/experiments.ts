/**
 * Helpers of notebook 03 only: plain-data summaries of a VQ-VAE, the
 * straight-through check table, the 2-D k-means demo, rate bounds of code
 * grids, and saving/loading a trained run.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkInteger,
  checkOptions,
  checkTensor,
} from "../../validate.ts";
import { rngOrStream, type Seed } from "../../random.ts";
import { countParameters } from "../../nn.ts";
import { codeUsage, vectorQuantize, VQVAE } from "../../vqvae.ts";

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
export interface StraightThroughTable {
  /** One row per form. */
  rows: StraightThroughRow[];
  /** Largest |d<up, q(h)>/dh|: the true derivative of the quantizer (0). */
  quantizerGradient: number;
  /** Jupyter's display hook: an HTML table (and plain text outside Jupyter). */
  [JUPYTER_DISPLAY](): Record<string, string>;
}

const formatError = (v: number) => v === 0 ? "0" : v.toExponential(1);

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
  const escape = (s: string) =>
    s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  return {
    rows,
    quantizerGradient,
    [JUPYTER_DISPLAY]: () => {
      const widths = header.map((_, j) =>
        Math.max(...[header, ...cells].map((c) => c[j].length))
      );
      const line = (c: string[]) =>
        c.map((s, j) => j === 0 ? s.padEnd(widths[j]) : s.padStart(widths[j]))
          .join("  ");
      return {
        "text/html": `<table><thead><tr>${
          header.map((s, j) =>
            `<th style="text-align:${j === 0 ? "left" : "right"}">${
              escape(s)
            }</th>`
          ).join("")
        }</tr></thead><tbody>${
          cells.map((c) =>
            `<tr>${
              c.map((s, j) =>
                j === 0
                  ? `<td style="text-align:left"><code>${escape(s)}</code></td>`
                  : `<td style="text-align:right">${s}</td>`
              ).join("")
            }</tr>`
          ).join("")
        }</tbody></table><p>${escape(note)}</p>`,
        "text/plain": [line(header), ...cells.map(line), note].join("\n"),
      };
    },
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
