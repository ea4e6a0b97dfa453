/**
 * The deep VQ-VAE: a convolutional encoder turns a 28x28 image into a 7x7
 * grid of d-dimensional vectors h, each vector is replaced by its nearest
 * codebook row e (the "symbolic image" is the grid of indices), and a
 * decoder reconstructs the image from the quantized grid.
 *
 * The nearest-row lookup has no useful derivative, so training uses the
 * detach tricks of `autodiff.ts`: the straight-through estimator for the
 * reconstruction gradient, and two stop-gradient losses, the codebook loss
 * ||sg(h) - e||^2 (moves e) and the commitment loss ||h - sg(e)||^2 (moves
 * h). Both are averaged over elements, like PyTorch's `F.mse_loss`.
 *
 * Options cover what practice adds: codebook by gradients or by exponential
 * moving averages, k-means initialisation from the first batch, restart of
 * dead codes, and a codebook learning rate separate from the commitment
 * weight beta (the "suggested modification" of the lecture: beta should not
 * also set how fast the codebook learns).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { adam } from "./optim.ts";
import {
  ArgumentError,
  checkChoice,
  checkFinite,
  checkInteger,
  checkNumber,
  checkTensor,
} from "./validate.ts";
import { randomUniform, type Rng, rngFrom, type Seed } from "./random.ts";
import { stopGradient, straightThrough } from "./autodiff.ts";
import { kmeans } from "./vq.ts";
import { batchSampler } from "./data.ts";
import {
  convDecoder28,
  convEncoder28,
  countParameters,
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

/** Nearest codebook row of each row of `flat` [n, d]; no gradient flows through. */
function nearestCodes(flat: tf.Tensor2D, codebook: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const cb = stopGradient(codebook);
    // ||h||^2 is the same for every code, so it does not change the argmin.
    const scores = cb.square().sum(1).sub(
      tf.matMul(stopGradient(flat), cb.transpose()).mul(2),
    );
    return tf.argMin(scores, 1) as tf.Tensor1D;
  });
}

/**
 * Quantizes the last axis of `h` (any leading shape, e.g. [n, 7, 7, d])
 * against `codebook` [K, d]: each vector is replaced by its nearest row.
 * Returns the straight-through output, the indices and the two losses.
 *
 * @throws ArgumentError when the widths differ, the codebook is empty, or h
 *   or the codebook hold NaN/Infinity
 */
export function vectorQuantize(
  h: tf.Tensor,
  codebook: tf.Tensor2D,
  options: VectorQuantizeOptions = {},
): VQOutput {
  const where = "vectorQuantize";
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
  const beta = checkNumber(where, "beta", options.beta ?? 0.25, { min: 0 });
  const codebookWeight = checkNumber(
    where,
    "codebookWeight",
    options.codebookWeight ?? 1,
    { min: 0 },
  );
  if (!options.skipFiniteCheck) {
    checkFinite(where, "h", h);
    checkFinite(where, "codebook", codebook);
  }
  return tf.tidy(() => {
    const flat = h.reshape([-1, d]) as tf.Tensor2D;
    const idx = nearestCodes(flat, codebook);
    const e = lookup(codebook, idx);
    const codebookLoss = stopGradient(flat).sub(e).square().mean() as tf.Scalar;
    const commitmentLoss = flat.sub(stopGradient(e)).square()
      .mean() as tf.Scalar;
    const loss = codebookLoss.mul(codebookWeight).add(
      commitmentLoss.mul(beta),
    ) as tf.Scalar;
    const quantized = straightThrough(flat, e).reshape(h.shape);
    const indices = idx.reshape(h.shape.slice(0, -1));
    return { quantized, indices, codebookLoss, commitmentLoss, loss };
  });
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

/** Counts, perplexity and number of codes used, from code indices (a tensor or an array). */
export function codeUsage(
  indices: tf.Tensor | ArrayLike<number>,
  numCodes: number,
): CodeUsage {
  const where = "codeUsage";
  checkInteger(where, "numCodes", numCodes, { min: 1 });
  const values = indices instanceof tf.Tensor ? indices.dataSync() : indices;
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
  /** Initial codebook: "kmeans" (default; k-means of the first batch, see `initFromBatch`) or "random" (uniform in +-1/K). */
  init?: "kmeans" | "random";
  /** Seed of the initial codebook, the k-means and the restarts (default 0). */
  seed?: Seed;
}

/**
 * A vector quantizer with state: the codebook variable, the EMA statistics,
 * and how long each code has been idle. Call `dispose()` when done.
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
  readonly #init: "kmeans" | "random";
  readonly #rng: Rng;
  readonly #idle: Int32Array;
  // EMA statistics: smoothed counts N_k and sums m_k of assigned vectors.
  #emaCounts: tf.Variable<tf.Rank.R1> | null = null;
  #emaSums: tf.Variable<tf.Rank.R2> | null = null;

  /** Creates a quantizer; see `VectorQuantizerOptions`. */
  constructor(options: VectorQuantizerOptions) {
    const where = "VectorQuantizer";
    if (options === null || typeof options !== "object") {
      throw new ArgumentError(
        where,
        "options must be an object with numCodes and dim",
      );
    }
    this.numCodes = checkInteger(where, "numCodes", options.numCodes, {
      min: 1,
    });
    this.dim = checkInteger(where, "dim", options.dim, { min: 1 });
    this.beta = checkNumber(where, "beta", options.beta ?? 0.25, { min: 0 });
    this.update = checkChoice(
      where,
      "update",
      options.update ?? "gradient",
      ["gradient", "ema"] as const,
    );
    this.decay = checkNumber(where, "decay", options.decay ?? 0.99, {
      min: 0,
      max: 1,
    });
    this.epsilon = checkNumber(where, "epsilon", options.epsilon ?? 1e-5, {
      min: 0,
    });
    this.deadAfter = checkInteger(where, "deadAfter", options.deadAfter ?? 0, {
      min: 0,
    });
    this.#init = checkChoice(
      where,
      "init",
      options.init ?? "kmeans",
      ["kmeans", "random"] as const,
    );
    this.#rng = rngFrom(options.seed ?? 0);
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
    this.initialized = this.#init === "random";
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

  /** `vectorQuantize` against this codebook with this quantizer's beta. */
  forward(h: tf.Tensor, { skipFiniteCheck = false } = {}): VQOutput {
    return vectorQuantize(h, this.codebook, {
      beta: this.beta,
      codebookWeight: this.update === "gradient" ? 1 : 0,
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
   * fewer distinct vectors than codes, the rest start as random batch rows.
   */
  initFromBatch(
    h: tf.Tensor,
    { maxIter = 25 }: { maxIter?: number } = {},
  ): void {
    const where = "VectorQuantizer.initFromBatch";
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
   * One EMA step with the batch's vectors `h` and their codes `indices`:
   * N_k <- g N_k + (1-g) n_k, m_k <- g m_k + (1-g) sum_{z_i=k} h_i,
   * e_k = m_k / N~_k with Laplace-smoothed N~_k = (N_k + eps) / (N + K eps) * N,
   * so a code with no vectors keeps its place instead of dividing by zero.
   */
  emaUpdate(h: tf.Tensor, indices: tf.Tensor): void {
    const where = "VectorQuantizer.emaUpdate";
    if (!this.#emaCounts || !this.#emaSums) {
      throw new ArgumentError(
        where,
        `the quantizer was built with update "${this.update}", not "ema"`,
      );
    }
    const counts = this.#emaCounts;
    const sums = this.#emaSums;
    tf.tidy(() => {
      const flat = this.#flat(where, h);
      const idx = indices.reshape([-1]).toInt() as tf.Tensor1D;
      if (idx.shape[0] !== flat.shape[0]) {
        throw new ArgumentError(
          where,
          `indices has ${idx.shape[0]} entries for ${flat.shape[0]} vectors`,
        );
      }
      const k = this.numCodes;
      const g = this.decay;
      const batchCounts = tf.unsortedSegmentSum(
        tf.onesLike(idx).toFloat(),
        idx,
        k,
      );
      const batchSums = tf.unsortedSegmentSum(flat, idx, k);
      const newCounts = counts.mul(g).add(batchCounts.mul(1 - g));
      const newSums = sums.mul(g).add(batchSums.mul(1 - g));
      const total = newCounts.sum();
      const smoothed = newCounts.add(this.epsilon).div(
        total.add(k * this.epsilon),
      ).mul(total);
      counts.assign(newCounts as tf.Tensor1D);
      sums.assign(newSums as tf.Tensor2D);
      this.codebook.assign(
        newSums.div(smoothed.reshape([k, 1])) as tf.Tensor2D,
      );
    });
  }

  /**
   * Records which codes a training batch used and restarts the dead ones:
   * every code idle for `deadAfter` steps is moved onto a random vector of
   * `h` (the current encoder outputs), where it will win some vectors.
   * Returns the restarted codes (empty when `deadAfter` is 0).
   */
  recordUsage(counts: readonly number[], h: tf.Tensor): number[] {
    const where = "VectorQuantizer.recordUsage";
    if (!Array.isArray(counts) || counts.length !== this.numCodes) {
      throw new ArgumentError(
        where,
        `counts must have one entry per code (${this.numCodes})`,
      );
    }
    const dead: number[] = [];
    for (let k = 0; k < this.numCodes; k++) {
      this.#idle[k] = counts[k] > 0 ? 0 : this.#idle[k] + 1;
      if (this.deadAfter > 0 && this.#idle[k] >= this.deadAfter) dead.push(k);
    }
    if (dead.length === 0) return dead;
    const flat = this.#flat(where, h);
    try {
      const n = flat.shape[0];
      const pick = Array.from({ length: dead.length }, () => this.#rng.int(n));
      const rows = flat.dataSync();
      const book = this.codebook.dataSync().slice();
      dead.forEach((k, i) => {
        for (let j = 0; j < this.dim; j++) {
          book[k * this.dim + j] = rows[pick[i] * this.dim + j];
        }
        this.#idle[k] = 0;
      });
      tf.tidy(() => {
        const fresh = tf.tensor2d(book, [this.numCodes, this.dim]);
        this.codebook.assign(fresh);
        if (this.#emaCounts && this.#emaSums) {
          // A restarted code starts its EMA as one vector at its new place.
          const mask = new Float32Array(this.numCodes);
          for (const k of dead) mask[k] = 1;
          const m = tf.tensor1d(mask);
          this.#emaCounts.assign(
            this.#emaCounts.mul(tf.scalar(1).sub(m)).add(m) as tf.Tensor1D,
          );
          const m2 = m.reshape([this.numCodes, 1]);
          this.#emaSums.assign(
            this.#emaSums.mul(tf.scalar(1).sub(m2)).add(
              fresh.mul(m2),
            ) as tf.Tensor2D,
          );
        }
      });
    } finally {
      if (flat !== h) flat.dispose();
    }
    this.restarts += dead.length;
    return dead;
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
  /** Code width d = encoder output channels (default 16). */
  dim?: number;
  /** Encoder channels of the two stride-2 convolutions (default [32, 64]; the decoder mirrors them). */
  channels?: [number, number];
  /** Commitment weight beta (default 0.25). */
  beta?: number;
  /** Codebook update: "gradient" (default) or "ema". */
  update?: "gradient" | "ema";
  /** EMA decay (default 0.99). */
  decay?: number;
  /** Restart codes idle for this many steps; 0 disables (default 100). */
  deadAfter?: number;
  /** Codebook initialisation: "kmeans" of the first batch (default) or "random". */
  init?: "kmeans" | "random";
  /** Adam learning rate of the encoder and decoder (default 2e-3). */
  learningRate?: number;
  /**
   * Adam learning rate of the codebook (default: `learningRate`). Separate
   * from beta on purpose: with Adam, scaling the codebook loss would not
   * change the codebook's step size, a separate learning rate does.
   */
  codebookLearningRate?: number;
  /** Seed of every initial weight and of the restarts (default 0). */
  seed?: number;
}

/** What `VQVAE.trainStep` returns: plain numbers. */
export interface VQVAEStepMetrics {
  /** recon + codebook + beta * commitment (the codebook term only with gradient updates). */
  loss: number;
  /** Mean squared pixel error. */
  recon: number;
  /** ||sg(h) - e||^2. */
  codebook: number;
  /** ||h - sg(e)||^2 (before the beta weight). */
  commitment: number;
  /** Perplexity of the batch's codes. */
  perplexity: number;
  /** Codes used in the batch. */
  used: number;
  /** Codes restarted after this step. */
  restarted: number;
  /** Index signature so the metrics can go straight to `trainLoop`. */
  [metric: string]: number;
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

function checkImages(where: string, x: unknown): tf.Tensor4D {
  return checkTensor(where, "images", x, {
    shape: [null, 28, 28, 1],
    dtype: "float32",
  }) as tf.Tensor4D;
}

/**
 * A VQ-VAE for 28x28x1 images: `convEncoder28` -> `VectorQuantizer` on the
 * 7x7 grid -> `convDecoder28` (linear output, squared-error
 * reconstruction). Owns its variables and optimizers: call `dispose()`.
 */
export class VQVAE {
  /** The resolved options (saved with the weights). */
  readonly config: Required<VQVAEOptions>;
  /** Images [n, 28, 28, 1] -> h [n, 7, 7, d]. */
  readonly encoder: tf.Sequential;
  /** Quantized grid [n, 7, 7, d] -> images [n, 28, 28, 1]. */
  readonly decoder: tf.Sequential;
  /** The quantizer and its codebook. */
  readonly quantizer: VectorQuantizer;
  /** Training steps taken. */
  steps = 0;
  readonly #optimizer: tf.Optimizer;
  readonly #codebookOptimizer: tf.Optimizer;

  /** Builds an untrained model; see `VQVAEOptions`. */
  constructor(options: VQVAEOptions = {}) {
    const where = "VQVAE";
    const learningRate = checkNumber(
      where,
      "learningRate",
      options.learningRate ?? 2e-3,
      {
        min: 0,
        minExclusive: true,
      },
    );
    this.config = {
      numCodes: checkInteger(where, "numCodes", options.numCodes ?? 64, {
        min: 1,
      }),
      dim: checkInteger(where, "dim", options.dim ?? 16, { min: 1 }),
      channels: options.channels ?? [32, 64],
      beta: options.beta ?? 0.25,
      update: options.update ?? "gradient",
      decay: options.decay ?? 0.99,
      deadAfter: options.deadAfter ?? 100,
      init: options.init ?? "kmeans",
      learningRate,
      codebookLearningRate: checkNumber(
        where,
        "codebookLearningRate",
        options.codebookLearningRate ?? learningRate,
        { min: 0, minExclusive: true },
      ),
      seed: checkNumber(where, "seed", options.seed ?? 0),
    };
    const c = this.config;
    if (!Array.isArray(c.channels) || c.channels.length !== 2) {
      throw new ArgumentError(
        where,
        `channels must be two positive integers, got ${c.channels}`,
      );
    }
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
    try {
      this.encoder = convEncoder28({
        channels: c.channels,
        outChannels: c.dim,
        seed: c.seed,
      });
      this.decoder = convDecoder28({
        inChannels: c.dim,
        channels: [c.channels[1], c.channels[0]],
        seed: c.seed,
      });
    } catch (e) {
      this.quantizer.dispose();
      throw e;
    }
    this.#optimizer = adam(c.learningRate);
    this.#codebookOptimizer = adam(c.codebookLearningRate);
  }

  /** Encoder outputs h [n, 7, 7, d] (caller disposes). */
  encode(images: tf.Tensor4D): tf.Tensor4D {
    checkImages("VQVAE.encode", images);
    return tf.tidy(() => this.encoder.apply(images) as tf.Tensor4D);
  }

  /** Code grids int32 [n, 7, 7] of the images (caller disposes). */
  codes(images: tf.Tensor4D): tf.Tensor3D {
    checkImages("VQVAE.codes", images);
    return tf.tidy(() => {
      const h = this.encoder.apply(images) as tf.Tensor;
      return nearestCodes(
        h.reshape([-1, this.config.dim]) as tf.Tensor2D,
        this.quantizer.codebook,
      )
        .reshape([images.shape[0], 7, 7]) as tf.Tensor3D;
    });
  }

  /** Images [n, 28, 28, 1] decoded from code grids int32 [n, 7, 7] (caller disposes). */
  decodeCodes(codes: tf.Tensor): tf.Tensor4D {
    const where = "VQVAE.decodeCodes";
    checkTensor(where, "codes", codes, { shape: [null, 7, 7], dtype: "int32" });
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
        e.reshape([codes.shape[0], 7, 7, this.config.dim]),
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
   * One training step on a batch: recon + codebook + beta * commitment,
   * Adam on encoder and decoder, a separate Adam on the codebook (or the EMA
   * update), then dead-code restarts. The first call initialises the
   * codebook from this batch (k-means) unless `init` is "random".
   */
  trainStep(images: tf.Tensor4D): VQVAEStepMetrics {
    const where = "VQVAE.trainStep";
    checkImages(where, images);
    checkFinite(where, "images", images);
    const q = this.quantizer;
    if (!q.initialized) {
      const h0 = this.encode(images);
      try {
        q.initFromBatch(h0);
      } finally {
        h0.dispose();
      }
    }
    const netVars = trainableVariables(this.encoder, this.decoder);
    const varList = q.update === "gradient"
      ? [...netVars, q.codebook]
      : netVars;
    let parts: tf.Scalar[] = [];
    let hKept: tf.Tensor | null = null;
    let idxKept: tf.Tensor | null = null;
    try {
      const { value, grads } = tf.variableGrads(() => {
        const h = this.encoder.apply(images) as tf.Tensor;
        // Images were checked; a non-finite h would surface as a non-finite loss.
        const out = q.forward(h, { skipFiniteCheck: true });
        const xhat = this.decoder.apply(out.quantized) as tf.Tensor;
        const recon = xhat.sub(images).square().mean() as tf.Scalar;
        parts = [recon, out.codebookLoss, out.commitmentLoss].map((t) =>
          tf.keep(t)
        );
        hKept = tf.keep(h);
        idxKept = tf.keep(out.indices);
        return recon.add(out.loss) as tf.Scalar;
      }, varList);
      const netGrads: Record<string, tf.Tensor> = {};
      for (const v of netVars) netGrads[v.name] = grads[v.name];
      this.#optimizer.applyGradients(netGrads);
      if (q.update === "gradient") {
        this.#codebookOptimizer.applyGradients({
          [q.codebook.name]: grads[q.codebook.name],
        });
      } else {
        q.emaUpdate(hKept!, idxKept!);
      }
      const loss = value.dataSync()[0];
      tf.dispose([value, grads as unknown as tf.Tensor[]]);
      const usage = codeUsage(idxKept!, q.numCodes);
      const restarted = q.recordUsage(usage.counts, hKept!).length;
      const [recon, codebook, commitment] = parts.map((p) => p.dataSync()[0]);
      this.steps++;
      return {
        loss,
        recon,
        codebook,
        commitment,
        perplexity: usage.perplexity,
        used: usage.used,
        restarted,
      };
    } finally {
      tf.dispose([
        ...parts,
        ...(hKept ? [hKept] : []),
        ...(idxKept ? [idxKept] : []),
      ]);
    }
  }

  /**
   * Reconstruction MSE and code statistics over a whole set of images,
   * in batches of `batchSize` (default 500). Plain numbers.
   */
  evaluate(
    images: tf.Tensor4D,
    { batchSize = 500 }: { batchSize?: number } = {},
  ): VQVAEEvaluation {
    const where = "VQVAE.evaluate";
    checkImages(where, images);
    checkInteger(where, "batchSize", batchSize, { min: 1 });
    const n = images.shape[0];
    if (n === 0) throw new ArgumentError(where, "images is empty");
    let squared = 0;
    const all = new Int32Array(n * 49);
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      const [sq, idx] = tf.tidy(() => {
        const x = images.slice([start, 0, 0, 0], [size, 28, 28, 1]);
        const codes = this.codes(x);
        const xhat = this.decodeCodes(codes);
        return [
          xhat.sub(x).square().sum().dataSync()[0],
          codes.dataSync(),
        ] as const;
      });
      squared += sq;
      all.set(idx as Int32Array, start * 49);
    }
    const usage = codeUsage(all, this.config.numCodes);
    return {
      mse: squared / (n * 28 * 28),
      perplexity: usage.perplexity,
      used: usage.used,
      counts: usage.counts,
    };
  }

  /**
   * Saves weights, codebook and config to `<path>.json` / `<path>.bin`.
   * Refuses to overwrite an existing file unless `overwrite` is true.
   */
  async save(
    path: string,
    { overwrite = false }: { overwrite?: boolean } = {},
  ): Promise<void> {
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
        overwrite,
      });
    } finally {
      if (ema) tf.dispose([ema.counts, ema.sums]);
    }
  }

  /** Loads a model written by `save` (ready to use; training can continue with fresh optimizer state). */
  static async load(path: string): Promise<VQVAE> {
    const { tensors, config } = await loadTensors(path);
    try {
      if (config.kind !== "vqvae") {
        throw new ArgumentError(
          "VQVAE.load",
          `${path}.json does not hold a VQ-VAE (kind ${config.kind})`,
        );
      }
      const model = new VQVAE(config as VQVAEOptions);
      try {
        setModelWeights(model.encoder, unprefixed("encoder/", tensors));
        setModelWeights(model.decoder, unprefixed("decoder/", tensors));
        const cb = tensors["quantizer/codebook"];
        if (
          !cb || cb.shape.join(",") !== model.quantizer.codebook.shape.join(",")
        ) {
          throw new ArgumentError(
            "VQVAE.load",
            `${path}: missing or mis-shaped codebook`,
          );
        }
        model.quantizer.codebook.assign(cb as tf.Tensor2D);
        const emaCounts = tensors["quantizer/ema_counts"];
        const emaSums = tensors["quantizer/ema_sums"];
        if (model.quantizer.update === "ema" && emaCounts && emaSums) {
          model.quantizer.setEmaState(
            emaCounts as tf.Tensor1D,
            emaSums as tf.Tensor2D,
          );
        }
        model.quantizer.initialized = true;
        model.steps = typeof config.steps === "number" ? config.steps : 0;
        return model;
      } catch (e) {
        model.dispose();
        throw e;
      }
    } finally {
      tf.dispose(Object.values(tensors));
    }
  }

  /** Frees every variable and optimizer state of the model. */
  dispose(): void {
    this.encoder.dispose();
    this.decoder.dispose();
    this.quantizer.dispose();
    this.#optimizer.dispose();
    this.#codebookOptimizer.dispose();
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

// ---------------------------------------------------------------------------
// Notebook 03 helpers: plain-data summaries and experiment loops.

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
  const latentShape = tf.tidy(() =>
    model.encode(tf.zeros([1, 28, 28, 1]) as tf.Tensor4D).shape
  );
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

/** One row of `straightThroughTable`, keyed by the printed column names. */
export interface StraightThroughRow {
  /** The name of the form. */
  form: string;
  /** Largest |form(h) - q(h)|: 0 when the form has the quantizer's value. */
  "max |value - q|": number;
  /** Largest |d<up, form(h)>/dh - up|: 0 when the gradient is passed straight through. */
  "max |grad - upstream|": number;
  /** Largest |d<up, q(h)>/dh|: the true derivative of the quantizer (0). */
  "max |grad of q itself|": number;
}

/**
 * Checks written forms of the straight-through estimator against the
 * quantizer `quantize`: for each form, the largest deviation of its value
 * from q(h), of its gradient (with upstream gradient `upstream`) from
 * `upstream` itself, and the largest entry of the quantizer's own gradient.
 * Plain numbers, one row per form (ready for `console.table`).
 *
 * @throws ArgumentError when `forms` is empty or h and upstream differ in shape
 */
export function straightThroughTable(
  forms: Record<string, (h: tf.Tensor) => tf.Tensor>,
  quantize: (h: tf.Tensor) => tf.Tensor,
  h: tf.Tensor,
  upstream: tf.Tensor,
): StraightThroughRow[] {
  const where = "straightThroughTable";
  if (forms === null || typeof forms !== "object") {
    throw new ArgumentError(where, "forms must be a record of functions");
  }
  const entries = Object.entries(forms);
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
  return tf.tidy(() => {
    const q = quantize(h);
    const qGrad = maxAbs(
      tf.grad((a: tf.Tensor) => quantize(a).mul(upstream).sum())(h),
    );
    return entries.map(([form, fn]) => ({
      form,
      "max |value - q|": maxAbs(fn(h).sub(q)),
      "max |grad - upstream|": maxAbs(
        tf.grad((a: tf.Tensor) => fn(a).mul(upstream).sum())(h).sub(upstream),
      ),
      "max |grad of q itself|": qGrad,
    }));
  });
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
  const means = tf.tidy(() =>
    tf.unsortedSegmentSum(h, out.indices as tf.Tensor1D, k).div(
      tf.unsortedSegmentSum(
        tf.ones([h.shape[0], 1]),
        out.indices as tf.Tensor1D,
        k,
      ),
    ) as tf.Tensor2D
  );
  out.indices.dispose();
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
 * Saves a model (`VQVAE.save`) and its history to `<path>.history.json`.
 * Never overwrites: an existing file is an error.
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
  await model.save(path);
  await Deno.writeTextFile(`${path}.history.json`, JSON.stringify(history), {
    createNew: true,
  });
}

/**
 * Runs `steps` calls of `step` and returns the history; `trainLoop` has
 * this shape (pass it to get live progress).
 */
export type VQVAEStepRunner = (
  step: () => Record<string, number>,
  options: { steps: number; label: string },
) => Promise<Record<string, number[]>>;

/** A quiet `VQVAEStepRunner`: records every step's metrics, no progress shown. */
function quietRunner(
  step: () => Record<string, number>,
  { steps }: { steps: number; label: string },
): Promise<Record<string, number[]>> {
  const history: Record<string, number[]> = { step: [] };
  for (let i = 0; i < steps; i++) {
    const metrics = step();
    history.step.push(i);
    for (const [name, value] of Object.entries(metrics)) {
      (history[name] ??= []).push(value);
    }
  }
  return Promise.resolve(history);
}

/**
 * Trains one fresh VQ-VAE per variant, each `{ ...base, ...variant }`, for
 * `steps` steps on the same seeded batches of `images`, and returns each
 * run's history by name (plain numbers). Each model is disposed after its
 * run. `run` drives the steps (default: quiet; pass `trainLoop` for live
 * progress).
 */
export async function trainVQVAEVariants(
  images: tf.Tensor4D,
  base: VQVAEOptions,
  variants: Record<string, VQVAEOptions>,
  { steps, batchSize, seed = 0, run = quietRunner }: {
    steps: number;
    batchSize: number;
    seed?: number;
    run?: VQVAEStepRunner;
  },
): Promise<Record<string, Record<string, number[]>>> {
  const where = "trainVQVAEVariants";
  checkImages(where, images);
  if (variants === null || typeof variants !== "object") {
    throw new ArgumentError(
      where,
      "variants must be a record of VQVAE options",
    );
  }
  checkInteger(where, "steps", steps, { min: 1 });
  checkInteger(where, "batchSize", batchSize, {
    min: 1,
    max: Math.max(images.shape[0], 1),
  });
  if (typeof run !== "function") {
    throw new ArgumentError(where, "run must be a function like trainLoop");
  }
  const histories: Record<string, Record<string, number[]>> = {};
  for (const [name, change] of Object.entries(variants)) {
    const model = new VQVAE({ ...base, ...change });
    try {
      const sampler = batchSampler(images, batchSize, { seed });
      histories[name] = await run(
        () => tf.tidy(() => model.trainStep(sampler.next() as tf.Tensor4D)),
        { steps, label: name },
      );
    } finally {
      model.dispose();
    }
  }
  return histories;
}

/**
 * Code grids int32 [limit, 7, 7] of the first `limit` images (default all),
 * encoded `batchSize` (default 1000) at a time to bound memory. The caller
 * disposes the result.
 */
export function codesInBatches(
  model: VQVAE,
  images: tf.Tensor4D,
  { limit, batchSize = 1000 }: { limit?: number; batchSize?: number } = {},
): tf.Tensor3D {
  const where = "codesInBatches";
  if (!(model instanceof VQVAE)) {
    throw new ArgumentError(where, "model must be a VQVAE");
  }
  checkImages(where, images);
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
          images.slice([start, 0, 0, 0], [size, 28, 28, 1]) as tf.Tensor4D,
        )
      ));
    }
    return tf.concat(parts) as tf.Tensor3D;
  } finally {
    tf.dispose(parts);
  }
}
