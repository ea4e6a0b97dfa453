/**
 * The deep VQ-VAE: a convolutional encoder turns an image into a grid of
 * d-dimensional vectors h (7x7 for a 28x28 image), each vector is replaced
 * by its nearest codebook row e (the "symbolic image" is the grid of
 * indices), and a decoder reconstructs the image from the quantized grid.
 *
 * The nearest-row lookup has no useful derivative, so training uses the
 * detach tricks of `autodiff.ts`: the straight-through estimator for the
 * reconstruction gradient, and two stop-gradient losses, the codebook loss
 * ||sg(h) - e||^2 (moves e) and the commitment loss ||h - sg(e)||^2 (moves
 * h). Both are averaged over elements, like PyTorch's `F.mse_loss`.
 *
 * `VQVAE` follows the `Trainable` contract of `model.ts` and trains with the
 * one `trainStep`: the codebook is its own variable group (its own
 * optimizer, so its learning rate is separate from the commitment weight
 * beta), and the exponential-moving-average codebook update and the
 * dead-code restarts run in the explicit `afterStep` hook. The k-means
 * initialisation of the codebook is an explicit call, `initCodebook(batch)`.
 *
 * ```ts
 * const model = new VQVAE({ numCodes: 64, dim: 16, seed: 0 });
 * const optimizer = { networks: adam(2e-3), codebook: adam(2e-3) };
 * const sampler = batchSampler(train.images, 64, { seed: 0 });
 * model.initCodebook(batchSampler(train.images, 64, { seed: 0 }).next());
 * for (let i = 0; i < 100; i++) {
 *   tf.tidy(() => trainStep(model, optimizer, sampler.next()));
 * }
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkBoolean,
  checkChoice,
  checkFinite,
  checkInteger,
  checkNumber,
  checkOptions,
  checkTensor,
  MAX_VALUES,
} from "./validate.ts";
import { randomUniform, Rng, rngFrom, type Seed } from "./random.ts";
import { stopGradient, straightThrough } from "./autodiff.ts";
import { kmeans } from "./vq.ts";
import type { LossTerms, Trainable } from "./model.ts";
import {
  convDecoder28,
  convEncoder28,
  loadTensors,
  modelWeights,
  saveTensors,
  setModelWeights,
  trainableVariables,
} from "./nn.ts";

/** tf.customGrad's argument type (not exported by tfjs under a name). */
type CustomGradientFunc = Parameters<typeof tf.customGrad>[0];

/** What `vectorQuantize` returns. Every tensor belongs to the caller. */
export interface VQOutput {
  /** Same shape as h: value e_{z} (the codeword), gradient passed straight through to h. */
  quantized: tf.Tensor;
  /** int32, shape h.shape without the last axis: the code index z of every vector. */
  indices: tf.Tensor;
  /** Scalar ||sg(h) - e||^2 (mean over elements): its gradient moves only the codebook. */
  codebookLoss: tf.Scalar;
  /** Scalar ||h - sg(e)||^2 (mean over elements, unweighted): its gradient moves only h. */
  commitmentLoss: tf.Scalar;
  /** Scalar codebookWeight * codebookLoss + beta * commitmentLoss. */
  loss: tf.Scalar;
}

/** Options of `vectorQuantize`. */
export interface VectorQuantizeOptions {
  /** Weight of the commitment loss (default 0.25, as in the VQ-VAE paper). */
  beta?: number;
  /** Weight of the codebook loss in `loss` (default 1; 0 when an EMA moves the codebook). */
  codebookWeight?: number;
  /** Skip the NaN/Infinity scan of h (it reads h back from the backend). Default false. */
  skipFiniteCheck?: boolean;
}

/**
 * Rows of `codebook` at `indices`, differentiable with respect to the
 * codebook: the gradient of row k is the sum of the upstream gradients of
 * the vectors assigned to k. A plain `tf.gather` would also put the int32
 * indices on the tape, which the wasm backend cannot differentiate.
 */
function lookup(codebook: tf.Tensor2D, indices: tf.Tensor1D): tf.Tensor2D {
  const k = codebook.shape[0];
  const f = tf.customGrad(
    ((cb: tf.Tensor, save: (tensors: tf.Tensor[]) => void) => {
      // Saved, the indices outlive the tidy that made them until backprop.
      save([indices]);
      return {
        value: tf.gather(cb, indices),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          tf.unsortedSegmentSum(dy, saved[0] as tf.Tensor1D, k),
      };
    }) as unknown as CustomGradientFunc,
  );
  return f(codebook) as tf.Tensor2D;
}

/** The index of the nearest codebook row of each row of `flat` [n, d]; no gradient flows through. */
function nearestCodes(flat: tf.Tensor2D, codebook: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const e = stopGradient(codebook);
    // ||h - e||^2 = ||h||^2 - 2 h.e + ||e||^2; ||h||^2 is the same for every code.
    const scores = e.square().sum(1).sub(
      tf.matMul(stopGradient(flat), e.transpose()).mul(2),
    );
    return tf.argMin(scores, 1) as tf.Tensor1D;
  });
}

/**
 * The quantizer: nearest code, straight-through output, and the two
 * stop-gradient losses that train the codebook and hold h near its code.
 */
function quantize(
  h: tf.Tensor,
  codebook: tf.Tensor2D,
  beta: number,
  codebookWeight: number,
): VQOutput {
  const flat = h.reshape([-1, codebook.shape[1]]) as tf.Tensor2D;
  const indices = nearestCodes(flat, codebook);
  const e = lookup(codebook, indices); // e_z, differentiable in the codebook
  const codebookLoss = stopGradient(flat).sub(e).square().mean() as tf.Scalar;
  const commitmentLoss = flat.sub(stopGradient(e)).square().mean() as tf.Scalar;
  return {
    // The value of e, the gradient of h: the decoder's gradient reaches the encoder.
    quantized: straightThrough(flat, e).reshape(h.shape),
    indices: indices.reshape(h.shape.slice(0, -1)),
    codebookLoss,
    commitmentLoss,
    loss: codebookLoss.mul(codebookWeight).add(commitmentLoss.mul(beta)),
  };
}

/**
 * Quantizes the last axis of `h` (any leading shape, e.g. [n, 7, 7, d])
 * against `codebook` [K, d]: each vector is replaced by its nearest row.
 * Returns the straight-through output, the indices and the two losses
 * (new tensors the caller disposes).
 *
 * ```ts
 * const { quantized, indices, loss } = vectorQuantize(h, codebook, { beta: 0.25 });
 * ```
 *
 * @throws ArgumentError when the widths differ, the codebook is empty, or h
 *   or the codebook hold NaN/Infinity
 */
export function vectorQuantize(
  h: tf.Tensor,
  codebook: tf.Tensor2D,
  options?: VectorQuantizeOptions,
): VQOutput {
  return checkedQuantize("vectorQuantize", h, codebook, options);
}

/** `vectorQuantize` with its errors naming `where`, the function the user called. */
function checkedQuantize(
  where: string,
  h: tf.Tensor,
  codebook: tf.Tensor2D,
  options?: VectorQuantizeOptions,
): VQOutput {
  const o = checkOptions(where, options, [
    "beta",
    "codebookWeight",
    "skipFiniteCheck",
  ]);
  checkTensor(where, "h", h, { minRank: 1, dtype: "float32" });
  checkTensor(where, "codebook", codebook, { rank: 2, dtype: "float32" });
  const [k, d] = codebook.shape;
  if (k === 0) {
    throw new ArgumentError(
      where,
      "codebook is empty (0 rows); it needs at least one code",
    );
  }
  const hd = h.shape[h.rank - 1];
  if (hd !== d) {
    throw new ArgumentError(
      where,
      `the last axis of h (${hd}) must equal the codebook width d = ${d}; h has shape [${h.shape}], codebook [${codebook.shape}]`,
    );
  }
  if (h.size === 0) {
    throw new ArgumentError(where, `h is empty (shape [${h.shape}])`);
  }
  const beta = checkNumber(where, "beta", o.beta ?? 0.25, { min: 0 });
  const weight = checkNumber(where, "codebookWeight", o.codebookWeight ?? 1, {
    min: 0,
  });
  if (!checkBoolean(where, "skipFiniteCheck", o.skipFiniteCheck ?? false)) {
    checkFinite(where, "h", h);
    checkFinite(where, "codebook", codebook);
  }
  return tf.tidy(() => ({ ...quantize(h, codebook, beta, weight) }));
}

/** Code usage of a batch: plain numbers. */
export interface CodeUsage {
  /** How many vectors went to each code (length K). */
  counts: number[];
  /** exp(entropy of the empirical code distribution): K when all codes are used equally, 1 when one code takes all. */
  perplexity: number;
  /** Number of codes used at least once. */
  used: number;
  /** `used / K`. */
  fractionUsed: number;
}

/**
 * Counts, perplexity and number of codes used, from code indices (a tensor
 * or an array of integers in [0, numCodes)).
 *
 * ```ts
 * codeUsage([0, 0, 1, 3], 4); // { counts: [2, 1, 0, 1], used: 3, ... }
 * ```
 */
export function codeUsage(
  indices: tf.Tensor | ArrayLike<number>,
  numCodes: number,
): CodeUsage {
  const where = "codeUsage";
  if (
    !(indices instanceof tf.Tensor) &&
    (indices === null || typeof indices !== "object" ||
      typeof (indices as ArrayLike<number>).length !== "number")
  ) {
    throw new ArgumentError(
      where,
      `indices must be a tensor or an array of code indices, got ${indices}`,
    );
  }
  checkInteger(where, "numCodes", numCodes, { min: 1, max: MAX_VALUES });
  const values = indices instanceof tf.Tensor
    ? checkTensor(where, "indices", indices).dataSync()
    : indices;
  const counts = new Array<number>(numCodes).fill(0);
  for (let i = 0; i < values.length; i++) {
    const z = values[i];
    if (!Number.isInteger(z) || z < 0 || z >= numCodes) {
      throw new ArgumentError(
        where,
        `indices must be integers in [0, ${numCodes - 1}], got ${z} at ${i}`,
      );
    }
    counts[z]++;
  }
  const n = values.length;
  let entropy = 0;
  let used = 0;
  for (const c of counts) {
    if (c > 0) {
      used++;
      const p = c / n;
      entropy -= p * Math.log(p);
    }
  }
  return {
    counts,
    perplexity: n > 0 ? Math.exp(entropy) : 0,
    used,
    fractionUsed: used / numCodes,
  };
}

/** Options of `VectorQuantizer`. */
export interface VectorQuantizerOptions {
  /** Number of codes K. */
  numCodes: number;
  /** Width d of each code. */
  dim: number;
  /** Commitment weight beta (default 0.25). */
  beta?: number;
  /** "gradient" (default): the codebook loss trains the codebook; "ema": exponential moving averages of the assigned vectors. */
  update?: "gradient" | "ema";
  /** EMA decay gamma (default 0.99). */
  decay?: number;
  /** Laplace smoothing of the EMA counts (default 1e-5). */
  epsilon?: number;
  /** A code unused for this many consecutive training steps is dead and restarted; 0 (default) never restarts. */
  deadAfter?: number;
  /** Initial codebook: "kmeans" (default; k-means of a batch, see `initFromBatch`) or "random" (uniform in +-1/K). */
  init?: "kmeans" | "random";
  /** Seed of the initial codebook, the k-means and the restarts (default 0). */
  seed?: Seed;
}

const QUANTIZER_KEYS = [
  "numCodes",
  "dim",
  "beta",
  "update",
  "decay",
  "epsilon",
  "deadAfter",
  "init",
  "seed",
] as const;

/** The quantizer's options, checked in the name of the function the user called. */
function quantizerSettings(
  where: string,
  o: Partial<VectorQuantizerOptions>,
  defaults: { numCodes?: number; dim?: number; deadAfter: number },
) {
  const seed = o.seed ?? 0;
  if (!(seed instanceof Rng)) checkNumber(where, "seed", seed);
  return {
    numCodes: checkInteger(where, "numCodes", o.numCodes ?? defaults.numCodes, {
      min: 1,
    }),
    dim: checkInteger(where, "dim", o.dim ?? defaults.dim, { min: 1 }),
    beta: checkNumber(where, "beta", o.beta ?? 0.25, { min: 0 }),
    update: checkChoice(
      where,
      "update",
      o.update ?? "gradient",
      [
        "gradient",
        "ema",
      ] as const,
    ),
    decay: checkNumber(where, "decay", o.decay ?? 0.99, { min: 0, max: 1 }),
    epsilon: checkNumber(where, "epsilon", o.epsilon ?? 1e-5, { min: 0 }),
    deadAfter: checkInteger(
      where,
      "deadAfter",
      o.deadAfter ?? defaults.deadAfter,
      { min: 0 },
    ),
    init: checkChoice(
      where,
      "init",
      o.init ?? "kmeans",
      [
        "kmeans",
        "random",
      ] as const,
    ),
    seed,
  };
}

/**
 * One EMA step, an online k-means: decayed counts N_k and sums m_k of the
 * vectors assigned to each code, and the code e_k = m_k / N_k (smoothed N_k).
 */
function emaStep(
  state: { counts: tf.Tensor1D; sums: tf.Tensor2D },
  flat: tf.Tensor2D,
  indices: tf.Tensor1D,
  decay: number,
  epsilon: number,
): { counts: tf.Tensor1D; sums: tf.Tensor2D; codebook: tf.Tensor2D } {
  const k = state.counts.shape[0];
  const ones = tf.onesLike(indices).toFloat();
  const batchCounts = tf.unsortedSegmentSum(ones, indices, k);
  const batchSums = tf.unsortedSegmentSum(flat, indices, k);
  const counts: tf.Tensor1D = state.counts.mul(decay).add(
    batchCounts.mul(1 - decay),
  );
  const sums: tf.Tensor2D = state.sums.mul(decay).add(batchSums.mul(1 - decay));
  // Laplace smoothing: a code with no vectors keeps its place instead of 0/0.
  const n = counts.sum();
  const smoothed = counts.add(epsilon).div(n.add(k * epsilon)).mul(n);
  const codebook: tf.Tensor2D = sums.div(smoothed.reshape([k, 1]));
  return { counts, sums, codebook };
}

/**
 * Dead-code restart: a code that has won no vector for `deadAfter` steps in
 * a row moves onto a random vector of this batch's `h` [n, d], where it
 * will win some. `idle` counts each code's steps without a vector (updated
 * in place). Returns the new codebook (the same tensor when no code died)
 * and the restarted codes.
 */
function restartDeadCodes(
  codebook: tf.Tensor2D,
  idle: Int32Array,
  counts: readonly number[],
  h: tf.Tensor2D,
  { deadAfter, rng }: { deadAfter: number; rng: Rng },
): { codebook: tf.Tensor2D; dead: number[] } {
  const dead: number[] = [];
  counts.forEach((c, k) => {
    idle[k] = c > 0 ? 0 : idle[k] + 1;
    if (deadAfter > 0 && idle[k] >= deadAfter) dead.push(k);
  });
  if (dead.length === 0) return { codebook, dead };
  const [n, d] = h.shape;
  const picks = dead.map(() => rng.int(n));
  const vectors = h.dataSync();
  const book = codebook.dataSync().slice();
  dead.forEach((k, i) => {
    book.set(vectors.subarray(picks[i] * d, (picks[i] + 1) * d), k * d);
    idle[k] = 0;
  });
  return { codebook: tf.tensor2d(book, codebook.shape), dead };
}

/**
 * A vector quantizer with state: the codebook variable, the EMA statistics,
 * and how long each code has been idle. Call `dispose()` when done.
 *
 * ```ts
 * const q = new VectorQuantizer({ numCodes: 64, dim: 16, update: "ema" });
 * q.initFromBatch(h);                 // k-means of one batch of vectors
 * const out = q.forward(h);           // vectorQuantize against q.codebook
 * q.emaUpdate(h, out.indices);        // one online k-means step
 * ```
 */
export class VectorQuantizer {
  /** Number of codes K. */
  readonly numCodes: number;
  /** Code width d. */
  readonly dim: number;
  /** Commitment weight. */
  readonly beta: number;
  /** How the codebook is updated. */
  readonly update: "gradient" | "ema";
  /** Weight of the codebook loss: 1 with gradient updates, 0 when the EMA moves the codebook. */
  readonly codebookWeight: number;
  /** EMA decay. */
  readonly decay: number;
  /** EMA count smoothing. */
  readonly epsilon: number;
  /** Idle steps after which a code is restarted (0: never). */
  readonly deadAfter: number;
  /** The codebook [K, d]. */
  readonly codebook: tf.Variable<tf.Rank.R2>;
  /** True once the codebook holds real values (after `initFromBatch`, or at once for random init). */
  initialized: boolean;
  /** Number of restarts so far. */
  restarts = 0;
  readonly #rng: Rng;
  readonly #idle: Int32Array;
  // EMA statistics: smoothed counts N_k and sums m_k of assigned vectors.
  #emaCounts: tf.Variable<tf.Rank.R1> | null = null;
  #emaSums: tf.Variable<tf.Rank.R2> | null = null;

  /** Creates a quantizer; see `VectorQuantizerOptions`. */
  constructor(options: VectorQuantizerOptions) {
    const where = "VectorQuantizer";
    if (options === undefined) {
      throw new ArgumentError(
        where,
        "options must be an object with numCodes and dim",
      );
    }
    const s = quantizerSettings(
      where,
      checkOptions(where, options, QUANTIZER_KEYS),
      { deadAfter: 0 },
    );
    this.numCodes = s.numCodes;
    this.dim = s.dim;
    this.beta = s.beta;
    this.update = s.update;
    this.codebookWeight = s.update === "gradient" ? 1 : 0;
    this.decay = s.decay;
    this.epsilon = s.epsilon;
    this.deadAfter = s.deadAfter;
    this.#rng = rngFrom(s.seed);
    this.#idle = new Int32Array(this.numCodes);
    const k = this.numCodes;
    this.codebook = tf.tidy(() =>
      tf.variable(
        randomUniform([k, this.dim], {
          low: -1 / k,
          high: 1 / k,
          seed: this.#rng,
        }),
        true,
      )
    ) as tf.Variable<tf.Rank.R2>;
    this.initialized = s.init === "random";
    if (this.update === "ema") this.#resetEma();
  }

  /** EMA statistics as if each code had seen one vector equal to itself, so the first update is well scaled. */
  #resetEma(): void {
    this.#emaCounts?.dispose();
    this.#emaSums?.dispose();
    this.#emaCounts = tf.tidy(() =>
      tf.variable(tf.ones([this.numCodes]), false)
    ) as tf.Variable<tf.Rank.R1>;
    this.#emaSums = tf.tidy(() =>
      tf.variable(this.codebook.clone(), false)
    ) as tf.Variable<tf.Rank.R2>;
  }

  /** The EMA statistics (smoothed counts [K], sums [K, d]) as new tensors, or null without EMA. */
  emaState(): { counts: tf.Tensor1D; sums: tf.Tensor2D } | null {
    if (!this.#emaCounts || !this.#emaSums) return null;
    return { counts: this.#emaCounts.clone(), sums: this.#emaSums.clone() };
  }

  /** Replaces the EMA statistics (e.g. when loading a saved model); the tensors are copied. */
  setEmaState(counts: tf.Tensor1D, sums: tf.Tensor2D): void {
    const where = "VectorQuantizer.setEmaState";
    if (!this.#emaCounts || !this.#emaSums) {
      throw new ArgumentError(
        where,
        `the quantizer was built with update "${this.update}", not "ema"`,
      );
    }
    checkTensor(where, "counts", counts, { shape: [this.numCodes] });
    checkTensor(where, "sums", sums, { shape: [this.numCodes, this.dim] });
    this.#emaCounts.assign(counts);
    this.#emaSums.assign(sums);
  }

  /** How many consecutive steps each code has gone unused (a copy). */
  idleSteps(): Int32Array {
    return this.#idle.slice();
  }

  /** `vectorQuantize` against this codebook with this quantizer's beta (new tensors). */
  forward(h: tf.Tensor, options?: { skipFiniteCheck?: boolean }): VQOutput {
    const { skipFiniteCheck = false } = checkOptions(
      "VectorQuantizer.forward",
      options,
      ["skipFiniteCheck"],
    );
    return checkedQuantize("VectorQuantizer.forward", h, this.codebook, {
      beta: this.beta,
      codebookWeight: this.codebookWeight,
      skipFiniteCheck,
    });
  }

  #flat(where: string, h: tf.Tensor): tf.Tensor2D {
    checkTensor(where, "h", h, { minRank: 1, dtype: "float32" });
    if (h.shape[h.rank - 1] !== this.dim) {
      throw new ArgumentError(
        where,
        `the last axis of h must be d = ${this.dim}, got shape [${h.shape}]`,
      );
    }
    return h.reshape([-1, this.dim]) as tf.Tensor2D;
  }

  /**
   * Initialises the codebook with k-means (`vq.ts`) of the vectors of one
   * batch of encoder outputs, so every code starts where data is (a random
   * codebook far from the encoder outputs leaves most codes unused). With
   * fewer distinct vectors than codes, the codes start on random batch rows.
   */
  initFromBatch(h: tf.Tensor, options?: { maxIter?: number }): void {
    const where = "VectorQuantizer.initFromBatch";
    const { maxIter = 25 } = checkOptions(where, options, ["maxIter"]);
    checkInteger(where, "maxIter", maxIter, { min: 1 });
    const flat = this.#flat(where, h);
    try {
      checkFinite(where, "h", flat);
      const n = flat.shape[0];
      if (n < this.numCodes) {
        throw new ArgumentError(
          where,
          `need at least numCodes = ${this.numCodes} vectors, got ${n}`,
        );
      }
      let centroids: tf.Tensor2D;
      try {
        const result = kmeans(flat, this.numCodes, {
          maxIter,
          seed: this.#rng,
        });
        result.assignments.dispose();
        centroids = result.centroids;
      } catch (e) {
        if (!(e instanceof ArgumentError) || !/distinct/.test(e.message)) {
          throw e;
        }
        const rows = Array.from(
          this.#rng.permutation(n).slice(0, this.numCodes),
        );
        centroids = tf.gather(flat, rows) as tf.Tensor2D;
      }
      this.codebook.assign(centroids);
      centroids.dispose();
    } finally {
      if (flat !== h) flat.dispose();
    }
    if (this.update === "ema") this.#resetEma();
    this.#idle.fill(0);
    this.initialized = true;
  }

  /**
   * One EMA step (`emaStep`) with the batch's vectors `h` and their codes
   * `indices`: N_k <- g N_k + (1-g) n_k, m_k <- g m_k + (1-g) sum_{z_i=k} h_i,
   * e_k = m_k / N~_k with Laplace-smoothed counts
   * N~_k = (N_k + eps) / (N + K eps) * N.
   */
  emaUpdate(h: tf.Tensor, indices: tf.Tensor): void {
    const where = "VectorQuantizer.emaUpdate";
    const counts = this.#emaCounts;
    const sums = this.#emaSums;
    if (!counts || !sums) {
      throw new ArgumentError(
        where,
        `the quantizer was built with update "${this.update}", not "ema"`,
      );
    }
    checkTensor(where, "indices", indices, { dtype: "int32" });
    tf.tidy(() => {
      const flat = this.#flat(where, h);
      const idx = indices.reshape([-1]) as tf.Tensor1D;
      if (idx.shape[0] !== flat.shape[0]) {
        throw new ArgumentError(
          where,
          `indices has ${idx.shape[0]} entries for ${flat.shape[0]} vectors`,
        );
      }
      const next = emaStep(
        { counts, sums },
        flat,
        idx,
        this.decay,
        this.epsilon,
      );
      counts.assign(next.counts);
      sums.assign(next.sums);
      this.codebook.assign(next.codebook);
    });
  }

  /**
   * Records which codes a training batch used (`counts`, one per code) and
   * restarts the dead ones (`restartDeadCodes`): every code idle for
   * `deadAfter` steps moves onto a random vector of `h`, the current encoder
   * outputs. Returns the restarted codes (always empty when `deadAfter` is 0).
   */
  restartDeadCodes(counts: readonly number[], h: tf.Tensor): number[] {
    const where = "VectorQuantizer.restartDeadCodes";
    if (
      !Array.isArray(counts) || counts.length !== this.numCodes ||
      counts.some((c) => !(c >= 0))
    ) {
      throw new ArgumentError(
        where,
        `counts must be ${this.numCodes} numbers >= 0, one per code`,
      );
    }
    const flat = this.#flat(where, h);
    try {
      if (flat.shape[0] === 0) throw new ArgumentError(where, "h is empty");
      const { codebook, dead } = restartDeadCodes(
        this.codebook,
        this.#idle,
        counts,
        flat,
        { deadAfter: this.deadAfter, rng: this.#rng },
      );
      if (dead.length > 0) {
        this.#moveCodes(dead, codebook);
        codebook.dispose();
      }
      this.restarts += dead.length;
      return dead;
    } finally {
      if (flat !== h) flat.dispose();
    }
  }

  /** Writes the restarted codebook; a restarted code starts its EMA as one vector at its new place. */
  #moveCodes(dead: number[], fresh: tf.Tensor2D): void {
    this.codebook.assign(fresh);
    if (!this.#emaCounts || !this.#emaSums) return;
    const counts = this.#emaCounts;
    const sums = this.#emaSums;
    tf.tidy(() => {
      const mask = new Float32Array(this.numCodes);
      for (const k of dead) mask[k] = 1;
      const m = tf.tensor1d(mask);
      counts.assign(counts.mul(tf.scalar(1).sub(m)).add(m) as tf.Tensor1D);
      const m2 = m.reshape([this.numCodes, 1]);
      sums.assign(
        sums.mul(tf.scalar(1).sub(m2)).add(fresh.mul(m2)) as tf.Tensor2D,
      );
    });
  }

  /** Frees the codebook and the EMA statistics. */
  dispose(): void {
    this.codebook.dispose();
    this.#emaCounts?.dispose();
    this.#emaSums?.dispose();
  }
}

/** Options of `VQVAE`. */
export interface VQVAEOptions {
  /** Codebook size K (default 64). */
  numCodes?: number;
  /** Code width d = encoder output channels (default 16, or the given encoder's output width). */
  dim?: number;
  /** Channels of the default encoder's two stride-2 convolutions (default [32, 64]; the default decoder mirrors them). */
  channels?: [number, number];
  /** Commitment weight beta (default 0.25). */
  beta?: number;
  /** Codebook update: "gradient" (default; its own variable group) or "ema" (in `afterStep`). */
  update?: "gradient" | "ema";
  /** EMA decay (default 0.99). */
  decay?: number;
  /** Restart codes idle for this many steps, in `afterStep`; 0 disables (default 100). */
  deadAfter?: number;
  /** Codebook initialisation: "kmeans" (default: call `initCodebook(batch)` before training) or "random". */
  init?: "kmeans" | "random";
  /** Seed of the default networks' initial weights, the codebook and the restarts (default 0). */
  seed?: number;
  /**
   * Images [n, ...imageShape] -> h [n, gh, gw, d]; default `convEncoder28`
   * (28x28x1 -> 7x7xd). The model owns it (`dispose()` frees it).
   */
  encoder?: tf.LayersModel;
  /** Quantized grid [n, gh, gw, d] -> images; default `convDecoder28`. The model owns it. */
  decoder?: tf.LayersModel;
}

const VQVAE_KEYS = [
  "numCodes",
  "dim",
  "channels",
  "beta",
  "update",
  "decay",
  "deadAfter",
  "init",
  "seed",
  "encoder",
  "decoder",
] as const;

/** The resolved options of a `VQVAE` (saved with its weights). */
export interface VQVAEConfig {
  /** Codebook size K. */
  numCodes: number;
  /** Code width d. */
  dim: number;
  /** Channels of the default networks. */
  channels: [number, number];
  /** Commitment weight. */
  beta: number;
  /** Codebook update. */
  update: "gradient" | "ema";
  /** EMA decay. */
  decay: number;
  /** Idle steps before a restart (0: never). */
  deadAfter: number;
  /** Codebook initialisation. */
  init: "kmeans" | "random";
  /** Seed. */
  seed: number;
  /** True when the encoder and decoder were given (a load must be given them again). */
  customNetworks: boolean;
}

/** What `VQVAE.evaluate` returns: plain numbers. */
export interface VQVAEEvaluation {
  /** Mean squared pixel error of the reconstructions. */
  mse: number;
  /** Perplexity of the codes over the whole set. */
  perplexity: number;
  /** Codes used at least once over the whole set. */
  used: number;
  /** Vectors per code over the whole set. */
  counts: number[];
}

/** A layers model's [height, width, channels] of one input or output. */
function shapeOf(where: string, name: string, s: tf.Shape): number[] {
  if (s.length !== 4 || s.slice(1).some((v) => typeof v !== "number")) {
    throw new ArgumentError(
      where,
      `${name} must have a fixed shape [n, height, width, channels], got [${s}]`,
    );
  }
  return s.slice(1) as number[];
}

/**
 * The VQ-VAE loss of a batch: reconstruction + codebook + beta * commitment.
 * The encoder outputs and codes are saved for the `afterStep` hook.
 */
function vqvaeLoss(model: VQVAE, x: tf.Tensor4D): LossTerms {
  const { encoder, decoder, quantizer: q } = model;
  const h = encoder.apply(x) as tf.Tensor4D;
  const vq = quantize(h, q.codebook, q.beta, q.codebookWeight);
  const xhat = decoder.apply(vq.quantized) as tf.Tensor4D;
  const recon = xhat.sub(x).square().mean() as tf.Scalar;
  return {
    total: recon.add(vq.loss) as tf.Scalar,
    terms: { recon, codebook: vq.codebookLoss, commitment: vq.commitmentLoss },
    saved: { h, indices: vq.indices },
  };
}

/**
 * A VQ-VAE: encoder -> `VectorQuantizer` on the encoder's grid -> decoder
 * (linear output, squared-error reconstruction). By default the encoder
 * and decoder are `convEncoder28`/`convDecoder28` (28x28x1 images, a 7x7
 * grid); pass your own `encoder` and `decoder` to compose it into a larger
 * model. Implements `Trainable`: train it with `trainStep` and one
 * optimizer per variable group, `{ networks, codebook }`. Owns its
 * variables and networks: call `dispose()`.
 *
 * ```ts
 * const model = new VQVAE({ numCodes: 64, dim: 16, seed: 0 });
 * model.initCodebook(firstBatch);              // k-means of its encoder outputs
 * const optimizer = { networks: adam(2e-3), codebook: adam(1e-3) };
 * const metrics = tf.tidy(() => trainStep(model, optimizer, batch));
 * // { loss, recon, codebook, commitment, perplexity, used, restarted }
 * ```
 */
export class VQVAE implements Trainable<tf.Tensor4D> {
  /** The resolved options (saved with the weights). */
  readonly config: VQVAEConfig;
  /** Images [n, ...imageShape] -> h [n, gh, gw, d]. */
  readonly encoder: tf.LayersModel;
  /** Quantized grid [n, gh, gw, d] -> images. */
  readonly decoder: tf.LayersModel;
  /** The quantizer and its codebook. */
  readonly quantizer: VectorQuantizer;
  /** Shape of one image, e.g. [28, 28, 1]. */
  readonly imageShape: number[];
  /** Shape of one code grid, e.g. [7, 7]. */
  readonly gridShape: [number, number];
  /** Training steps taken (counted by `afterStep`). */
  steps = 0;

  /** Builds an untrained model; see `VQVAEOptions`. Every option is checked before anything is built. */
  constructor(options?: VQVAEOptions) {
    const where = "VQVAE";
    const o = checkOptions(where, options, VQVAE_KEYS);
    for (const name of ["encoder", "decoder"] as const) {
      if (o[name] !== undefined && !(o[name] instanceof tf.LayersModel)) {
        throw new ArgumentError(
          where,
          `${name} must be a tf.LayersModel, got ${o[name]}`,
        );
      }
    }
    const encoderOut = o.encoder
      ? shapeOf(where, "the encoder's output", o.encoder.outputs[0].shape)
      : null;
    if (encoderOut && o.dim !== undefined && o.dim !== encoderOut[2]) {
      throw new ArgumentError(
        where,
        `dim = ${o.dim} differs from the encoder's output width ${
          encoderOut[2]
        }`,
      );
    }
    const s = quantizerSettings(where, o, {
      numCodes: 64,
      dim: encoderOut?.[2] ?? 16,
      deadAfter: 100,
    });
    const seed = checkNumber(where, "seed", o.seed ?? 0);
    const channels = o.channels ?? [32, 64];
    if (
      !Array.isArray(channels) || channels.length !== 2 ||
      channels.some((c) => !Number.isInteger(c) || c < 1)
    ) {
      throw new ArgumentError(
        where,
        `channels must be two positive integers, got ${channels}`,
      );
    }
    if (o.channels !== undefined && o.encoder && o.decoder) {
      throw new ArgumentError(
        where,
        "channels shapes the default networks only; leave it out when both encoder and decoder are given",
      );
    }
    // The default networks' shapes are known without building them.
    const image = o.encoder
      ? shapeOf(where, "the encoder's input", o.encoder.inputs[0].shape)
      : [28, 28, 1];
    const grid = encoderOut ?? [7, 7, s.dim];
    const decoderIn = o.decoder
      ? shapeOf(where, "the decoder's input", o.decoder.inputs[0].shape)
      : [7, 7, s.dim];
    const decoderOut = o.decoder
      ? shapeOf(where, "the decoder's output", o.decoder.outputs[0].shape)
      : [28, 28, 1];
    if (decoderIn.join(",") !== grid.join(",")) {
      throw new ArgumentError(
        where,
        `the decoder takes grids [${decoderIn}], the encoder makes [${grid}]`,
      );
    }
    if (decoderOut.join(",") !== image.join(",")) {
      throw new ArgumentError(
        where,
        `the decoder makes images [${decoderOut}], the encoder takes [${image}]`,
      );
    }
    this.imageShape = image;
    this.gridShape = [grid[0], grid[1]];
    this.config = {
      numCodes: s.numCodes,
      dim: s.dim,
      channels,
      beta: s.beta,
      update: s.update,
      decay: s.decay,
      deadAfter: s.deadAfter,
      init: s.init,
      seed,
      customNetworks: o.encoder !== undefined || o.decoder !== undefined,
    };
    const c = this.config;
    this.quantizer = new VectorQuantizer({
      numCodes: c.numCodes,
      dim: c.dim,
      beta: c.beta,
      update: c.update,
      decay: c.decay,
      deadAfter: c.deadAfter,
      init: c.init,
      seed: c.seed * 7919 + 17,
    });
    let encoder: tf.LayersModel | undefined = o.encoder;
    try {
      encoder ??= convEncoder28({
        channels: c.channels,
        outChannels: c.dim,
        seed: c.seed,
      });
      this.encoder = encoder;
      this.decoder = o.decoder ?? convDecoder28({
        inChannels: c.dim,
        channels: [c.channels[1], c.channels[0]],
        seed: c.seed,
      });
    } catch (e) {
      this.quantizer.dispose();
      if (!o.encoder) encoder?.dispose();
      throw e;
    }
  }

  #checkImages(where: string, x: unknown): tf.Tensor4D {
    return checkTensor(where, "images", x, {
      shape: [null, ...this.imageShape],
      dtype: "float32",
    }) as tf.Tensor4D;
  }

  /**
   * The variables the optimizers move: `networks` (encoder and decoder) and
   * `codebook` (empty with update "ema": the EMA moves it in `afterStep`).
   * Give each group its own optimizer: one Adam for both would share its
   * moment slots between them.
   */
  trainableVariables(): { networks: tf.Variable[]; codebook: tf.Variable[] } {
    return {
      networks: trainableVariables(this.encoder, this.decoder),
      codebook: this.quantizer.update === "gradient"
        ? [this.quantizer.codebook]
        : [],
    };
  }

  /**
   * The loss of a batch of images (`vqvaeLoss`): total = recon + codebook +
   * beta * commitment (the codebook term only with gradient updates), the
   * three terms, and the encoder outputs and codes saved for `afterStep`.
   * New tensors (`trainStep` frees them).
   *
   * @throws ArgumentError for an empty or non-finite batch, or a codebook
   *   that still waits for `initCodebook`
   */
  loss(images: tf.Tensor4D): LossTerms {
    const where = "VQVAE.loss";
    this.#checkImages(where, images);
    if (images.shape[0] === 0) {
      throw new ArgumentError(where, "images is an empty batch (0 images)");
    }
    checkFinite(where, "images", images);
    if (!this.quantizer.initialized) {
      throw new ArgumentError(
        where,
        'the codebook is not initialised: call model.initCodebook(firstBatch) (k-means of its encoder outputs) before training, or build the model with init: "random"',
      );
    }
    return vqvaeLoss(this, images);
  }

  /**
   * The hook `trainStep` runs after the optimizer step: the EMA codebook
   * update (update "ema"), then the dead-code restarts, from the encoder
   * outputs `h` and codes `indices` that `loss` saved. Returns the batch's
   * code perplexity, codes used and codes restarted.
   */
  afterStep(
    _images: tf.Tensor4D,
    saved: Record<string, tf.Tensor>,
  ): { perplexity: number; used: number; restarted: number } {
    const q = this.quantizer;
    const { h, indices } = saved;
    if (q.update === "ema") q.emaUpdate(h, indices);
    const usage = codeUsage(indices, q.numCodes);
    const restarted = q.restartDeadCodes(usage.counts, h).length;
    this.steps++;
    return { perplexity: usage.perplexity, used: usage.used, restarted };
  }

  /**
   * Initialises the codebook by k-means of the encoder outputs of a batch of
   * images (`VectorQuantizer.initFromBatch`), so that every code starts
   * where the data is. Call it once before training (init "kmeans").
   */
  initCodebook(images: tf.Tensor4D): void {
    const where = "VQVAE.initCodebook";
    this.#checkImages(where, images);
    const vectors = images.shape[0] * this.gridShape[0] * this.gridShape[1];
    if (vectors < this.config.numCodes) {
      throw new ArgumentError(
        where,
        `k-means of ${this.config.numCodes} codes needs at least that many encoder vectors; ${
          images.shape[0]
        } images give ${vectors}`,
      );
    }
    checkFinite(where, "images", images);
    const h = tf.tidy(() => this.encoder.apply(images) as tf.Tensor4D);
    try {
      this.quantizer.initFromBatch(h);
    } finally {
      h.dispose();
    }
  }

  /** Encoder outputs h [n, gh, gw, d] (caller disposes). */
  encode(images: tf.Tensor4D): tf.Tensor4D {
    this.#checkImages("VQVAE.encode", images);
    return tf.tidy(() => this.encoder.apply(images) as tf.Tensor4D);
  }

  /** Code grids int32 [n, gh, gw] of the images (caller disposes). */
  codes(images: tf.Tensor4D): tf.Tensor3D {
    this.#checkImages("VQVAE.codes", images);
    return tf.tidy(() => {
      const h = this.encoder.apply(images) as tf.Tensor;
      return nearestCodes(
        h.reshape([-1, this.config.dim]) as tf.Tensor2D,
        this.quantizer.codebook,
      ).reshape([images.shape[0], ...this.gridShape]) as tf.Tensor3D;
    });
  }

  /** Images decoded from code grids int32 [n, gh, gw] (caller disposes). */
  decodeCodes(codes: tf.Tensor): tf.Tensor4D {
    const where = "VQVAE.decodeCodes";
    checkTensor(where, "codes", codes, {
      shape: [null, ...this.gridShape],
      dtype: "int32",
    });
    const values = codes.dataSync();
    for (let i = 0; i < values.length; i++) {
      if (values[i] < 0 || values[i] >= this.config.numCodes) {
        throw new ArgumentError(
          where,
          `codes must be in [0, ${this.config.numCodes - 1}], got ${values[i]}`,
        );
      }
    }
    return tf.tidy(() => {
      const e = tf.gather(this.quantizer.codebook, codes.reshape([-1]));
      return this.decoder.apply(
        e.reshape([codes.shape[0], ...this.gridShape, this.config.dim]),
      ) as tf.Tensor4D;
    });
  }

  /** Reconstructions of the images (caller disposes). */
  reconstruct(images: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const codes = this.codes(images);
      return this.decodeCodes(codes);
    });
  }

  /**
   * Reconstruction MSE and code statistics over a whole set of images,
   * in batches of `batchSize` (default 500). Plain numbers.
   */
  evaluate(
    images: tf.Tensor4D,
    options?: { batchSize?: number },
  ): VQVAEEvaluation {
    const where = "VQVAE.evaluate";
    const { batchSize = 500 } = checkOptions(where, options, ["batchSize"]);
    this.#checkImages(where, images);
    checkInteger(where, "batchSize", batchSize, { min: 1 });
    const n = images.shape[0];
    if (n === 0) throw new ArgumentError(where, "images is empty");
    const positions = this.gridShape[0] * this.gridShape[1];
    let squared = 0;
    const all = new Int32Array(n * positions);
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      const [sq, idx] = tf.tidy(() => {
        const x = images.slice([start, 0, 0, 0], [size, ...this.imageShape]);
        const codes = this.codes(x as tf.Tensor4D);
        const xhat = this.decodeCodes(codes);
        return [
          xhat.sub(x).square().sum().dataSync()[0],
          codes.dataSync(),
        ] as const;
      });
      squared += sq;
      all.set(idx as Int32Array, start * positions);
    }
    const usage = codeUsage(all, this.config.numCodes);
    return {
      mse: squared / (n * tf.util.sizeFromShape(this.imageShape)),
      perplexity: usage.perplexity,
      used: usage.used,
      counts: usage.counts,
    };
  }

  /**
   * Saves weights, codebook and config to `<path>.json` / `<path>.bin`, all
   * or nothing (`saveTensors`), with any extra `files` (e.g.
   * `{ "history.json": text }` as `<path>.history.json`) in the same save.
   * Refuses to replace an existing file unless `overwrite` is true.
   */
  async save(
    path: string,
    options?: { overwrite?: boolean; files?: Record<string, string> },
  ): Promise<void> {
    const o = checkOptions("VQVAE.save", options, ["overwrite", "files"]);
    const tensors: Record<string, tf.Tensor> = {
      ...prefixed("encoder/", modelWeights(this.encoder)),
      ...prefixed("decoder/", modelWeights(this.decoder)),
      "quantizer/codebook": this.quantizer.codebook,
    };
    const ema = this.quantizer.emaState();
    if (ema) {
      tensors["quantizer/ema_counts"] = ema.counts;
      tensors["quantizer/ema_sums"] = ema.sums;
    }
    try {
      await saveTensors(path, tensors, {
        config: { kind: "vqvae", ...this.config, steps: this.steps },
        overwrite: o.overwrite ?? false,
        files: o.files,
      });
    } finally {
      if (ema) tf.dispose([ema.counts, ema.sums]);
    }
  }

  /**
   * Loads a model written by `save` (ready to use; training continues with
   * fresh optimizers). A model saved with its own networks needs the same
   * architectures again: `VQVAE.load(path, { encoder, decoder })`.
   */
  static async load(
    path: string,
    options?: { encoder?: tf.LayersModel; decoder?: tf.LayersModel },
  ): Promise<VQVAE> {
    const where = "VQVAE.load";
    const nets = checkOptions(where, options, ["encoder", "decoder"]);
    const { tensors, config } = await loadTensors(path);
    try {
      if (config.kind !== "vqvae") {
        throw new ArgumentError(
          where,
          `${path}.json does not hold a VQ-VAE (kind ${config.kind})`,
        );
      }
      const {
        kind: _kind,
        steps,
        customNetworks,
        learningRate: _lr, // written by older versions; optimizers are not part of a model now
        codebookLearningRate: _clr,
        ...saved
      } = config as Record<string, unknown>;
      if (customNetworks === true && !(nets.encoder || nets.decoder)) {
        throw new ArgumentError(
          where,
          `${path} was saved with its own encoder and decoder: pass VQVAE.load(path, { encoder, decoder }) with the same architectures`,
        );
      }
      if (nets.encoder && nets.decoder) delete saved.channels;
      const model = new VQVAE({ ...saved, ...nets } as VQVAEOptions);
      try {
        setModelWeights(model.encoder, unprefixed("encoder/", tensors));
        setModelWeights(model.decoder, unprefixed("decoder/", tensors));
        const cb = tensors["quantizer/codebook"];
        const q = model.quantizer;
        if (!cb || cb.shape.join(",") !== q.codebook.shape.join(",")) {
          throw new ArgumentError(
            where,
            `${path}: missing or mis-shaped codebook`,
          );
        }
        q.codebook.assign(cb as tf.Tensor2D);
        const emaCounts = tensors["quantizer/ema_counts"];
        const emaSums = tensors["quantizer/ema_sums"];
        if (q.update === "ema" && emaCounts && emaSums) {
          q.setEmaState(emaCounts as tf.Tensor1D, emaSums as tf.Tensor2D);
        }
        q.initialized = true;
        model.steps = typeof steps === "number" ? steps : 0;
        return model;
      } catch (e) {
        model.dispose();
        throw e;
      }
    } finally {
      tf.dispose(Object.values(tensors));
    }
  }

  /** Frees every variable of the model: encoder, decoder and quantizer. */
  dispose(): void {
    this.encoder.dispose();
    this.decoder.dispose();
    this.quantizer.dispose();
  }
}

function prefixed(
  prefix: string,
  tensors: Record<string, tf.Tensor>,
): Record<string, tf.Tensor> {
  return Object.fromEntries(
    Object.entries(tensors).map(([k, v]) => [prefix + k, v]),
  );
}

function unprefixed(
  prefix: string,
  tensors: Record<string, tf.Tensor>,
): Record<string, tf.Tensor> {
  return Object.fromEntries(
    Object.entries(tensors).filter(([k]) => k.startsWith(prefix)).map((
      [k, v],
    ) => [k.slice(prefix.length), v]),
  );
}
