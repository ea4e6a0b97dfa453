/**
 * A small causal transformer over sequences of discrete tokens (GPT-style),
 * used as a learned prior over VQ code grids read in raster order:
 *
 *   p(z) = prod_i p(z_i | z_<i),
 *
 * where each factor is a softmax over the vocabulary computed from the tokens
 * before position i only. "Only" is the causal mask: attention scores of
 * position i to positions j > i are set to -infinity before the softmax.
 *
 * ```ts
 * const prior = new TransformerPrior({ vocabSize: 64, length: 49, seed: 0 });
 * const optimizer = adam(1e-3);
 * trainStep(prior, optimizer, tokens); // tokens: int32 [n, 49]
 * const samples = prior.sample(16, { temperature: 1, seed: 1 });
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { LossTerms, Trainable } from "./model.ts";
import {
  glorotUniform,
  randomNormal,
  type Rng,
  rngFrom,
  rngOrStream,
  type Seed,
} from "./random.ts";
import {
  ArgumentError,
  checkInteger,
  checkNumber,
  checkOptions,
  checkSize,
  checkTensor,
} from "./validate.ts";

/** Options of `TransformerPrior`. */
export interface TransformerPriorOptions {
  /** Number of distinct tokens (e.g. the codebook size K). */
  vocabSize: number;
  /** Sequence length (e.g. 49 for a 7x7 code grid). */
  length: number;
  /** Width of every position's vector (default 64). */
  dim?: number;
  /** Attention heads per block; must divide `dim` (default 4). */
  heads?: number;
  /** Transformer blocks (default 2). */
  layers?: number;
  /** Seed of the initial weights (default 0). */
  seed?: number;
}

/** The weights of one block: attention (q, k, v, output) and the MLP. */
interface BlockWeights {
  ln1: { gain: tf.Variable; bias: tf.Variable };
  wq: tf.Variable;
  wk: tf.Variable;
  wv: tf.Variable;
  wo: tf.Variable;
  ln2: { gain: tf.Variable; bias: tf.Variable };
  w1: tf.Variable;
  b1: tf.Variable;
  w2: tf.Variable;
  b2: tf.Variable;
}

/**
 * Additive causal mask [L, L]: 0 where position i may look at j (j <= i),
 * -1e9 where it may not (j > i). Added to attention scores before softmax.
 */
export function causalAttentionMask(length: number): tf.Tensor2D {
  checkInteger("causalAttentionMask", "length", length, {
    min: 1,
    max: 2 ** 14,
  });
  return tf.tidy(() => {
    const i = tf.range(0, length, 1, "int32").reshape([length, 1]);
    const j = tf.range(0, length, 1, "int32").reshape([1, length]);
    return tf.where(
      j.greater(i),
      tf.fill([length, length], -1e9),
      tf.zeros([length, length]),
    ) as tf.Tensor2D;
  });
}

/** Normalises each vector of x [.., d] to mean 0, variance 1, then scales and shifts it. */
function layerNorm(
  x: tf.Tensor,
  ln: { gain: tf.Variable; bias: tf.Variable },
): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return x.sub(mean).div(variance.add(1e-5).sqrt()).mul(ln.gain).add(ln.bias);
}

/**
 * Multi-head causal self-attention of x [n, L, d]: each position mixes the
 * value vectors of the positions at or before it, weighted by
 * softmax(q k^T / sqrt(d_head) + mask).
 */
export function causalSelfAttention(
  x: tf.Tensor3D,
  w: { wq: tf.Tensor; wk: tf.Tensor; wv: tf.Tensor; wo: tf.Tensor },
  heads: number,
  mask: tf.Tensor2D,
): tf.Tensor3D {
  const [n, L, d] = x.shape;
  const dh = d / heads;
  // [n, L, d] -> [n, heads, L, dh]: each head attends in its own subspace.
  const split = (t: tf.Tensor) =>
    t.reshape([n, L, heads, dh]).transpose([0, 2, 1, 3]);
  const flat = x.reshape([n * L, d]);
  const q = split(flat.matMul(w.wq));
  const k = split(flat.matMul(w.wk));
  const v = split(flat.matMul(w.wv));
  const scores = tf.matMul(q, k, false, true).div(Math.sqrt(dh)).add(mask);
  const mixed = tf.matMul(tf.softmax(scores), v); // [n, heads, L, dh]
  const joined = mixed.transpose([0, 2, 1, 3]).reshape([n * L, d]);
  return joined.matMul(w.wo).reshape([n, L, d]) as tf.Tensor3D;
}

/** One pre-norm transformer block: x + attention(LN(x)), then + MLP(LN(.)). */
function block(
  x: tf.Tensor3D,
  w: BlockWeights,
  heads: number,
  mask: tf.Tensor2D,
): tf.Tensor3D {
  const [n, L, d] = x.shape;
  const attended = x.add(
    causalSelfAttention(layerNorm(x, w.ln1) as tf.Tensor3D, w, heads, mask),
  );
  const h = layerNorm(attended, w.ln2).reshape([n * L, d]);
  const hidden = h.matMul(w.w1).add(w.b1);
  const gelu = hidden.mul(tf.sigmoid(hidden.mul(1.702))); // GELU, sigmoid approximation
  return attended.add(
    gelu.matMul(w.w2).add(w.b2).reshape([n, L, d]),
  ) as tf.Tensor3D;
}

/**
 * A GPT-style prior over token sequences of a fixed length: token and
 * position embeddings, `layers` causal blocks, a linear read-out to the
 * vocabulary. The input at position i is the token at i - 1 (a start token
 * at i = 0), so the output at i predicts token i from the tokens before it.
 * Implements the `Trainable` contract: `trainStep(prior, optimizer, tokens)`.
 * Owns its variables: call `dispose()`.
 */
export class TransformerPrior implements Trainable<tf.Tensor2D> {
  /** The resolved options. */
  readonly config: Required<TransformerPriorOptions>;
  readonly #tokenEmbedding: tf.Variable; // [V + 1, d]: row V is the start token
  readonly #positionEmbedding: tf.Variable; // [L, d]
  readonly #blocks: BlockWeights[];
  readonly #final: { gain: tf.Variable; bias: tf.Variable };
  readonly #readout: tf.Variable; // [d, V]
  readonly #mask: tf.Tensor2D;
  readonly #variables: tf.Variable[];

  /** Builds an untrained prior; see `TransformerPriorOptions`. */
  constructor(options: TransformerPriorOptions) {
    const where = "TransformerPrior";
    if (options === null || typeof options !== "object") {
      throw new ArgumentError(
        where,
        "options must be an object with vocabSize and length",
      );
    }
    checkOptions(where, options, [
      "vocabSize",
      "length",
      "dim",
      "heads",
      "layers",
      "seed",
    ]);
    const vocabSize = checkInteger(where, "vocabSize", options.vocabSize, {
      min: 2,
    });
    const length = checkInteger(where, "length", options.length, { min: 1 });
    const dim = checkInteger(where, "dim", options.dim ?? 64, { min: 1 });
    const heads = checkInteger(where, "heads", options.heads ?? 4, { min: 1 });
    if (dim % heads !== 0) {
      throw new ArgumentError(
        where,
        `heads (${heads}) must divide dim (${dim})`,
      );
    }
    const layers = checkInteger(where, "layers", options.layers ?? 2, {
      min: 0,
    });
    const seed = checkNumber(where, "seed", options.seed ?? 0);
    this.config = { vocabSize, length, dim, heads, layers, seed };
    const rng = rngFrom(seed);
    const all: tf.Variable[] = [];
    // Variables made inside tidy, so their initial values are freed.
    const make = (init: () => tf.Tensor) => {
      const v = tf.tidy(() => tf.variable(init(), true));
      all.push(v);
      return v;
    };
    const normal = (shape: number[], std: number) => () =>
      randomNormal(shape, { std, seed: rng });
    const glorot = (shape: number[]) => () =>
      glorotUniform(shape, { seed: rng });
    const norm = () => ({
      gain: make(() => tf.ones([dim])),
      bias: make(() => tf.zeros([dim])),
    });
    this.#tokenEmbedding = make(normal([vocabSize + 1, dim], 0.1));
    this.#positionEmbedding = make(normal([length, dim], 0.1));
    this.#blocks = Array.from({ length: layers }, () => ({
      ln1: norm(),
      wq: make(glorot([dim, dim])),
      wk: make(glorot([dim, dim])),
      wv: make(glorot([dim, dim])),
      wo: make(glorot([dim, dim])),
      ln2: norm(),
      w1: make(glorot([dim, 4 * dim])),
      b1: make(() => tf.zeros([4 * dim])),
      w2: make(glorot([4 * dim, dim])),
      b2: make(() => tf.zeros([dim])),
    }));
    this.#final = norm();
    this.#readout = make(glorot([dim, vocabSize]));
    this.#variables = all;
    this.#mask = causalAttentionMask(length);
  }

  /** The variables `trainStep` moves. */
  trainableVariables(): tf.Variable[] {
    return this.#variables;
  }

  /** Logits [n, L, V]: row i scores token i given the tokens before it (caller disposes). */
  logits(tokens: tf.Tensor2D): tf.Tensor3D {
    this.#checkTokens("TransformerPrior.logits", tokens);
    return tf.tidy(() => this.#logitsCore(tokens));
  }

  #logitsCore(tokens: tf.Tensor2D): tf.Tensor3D {
    const [n, L] = tokens.shape;
    const { vocabSize, dim, heads } = this.config;
    // Shift right: the input at i is token i - 1, a start token at i = 0.
    const start = tf.fill([n, 1], vocabSize, "int32");
    const inputs = tf.concat([start, tokens.slice([0, 0], [n, L - 1])], 1);
    let x = tf.gather(this.#tokenEmbedding, inputs.reshape([-1])).reshape([
      n,
      L,
      dim,
    ])
      .add(this.#positionEmbedding) as tf.Tensor3D;
    for (const w of this.#blocks) x = block(x, w, heads, this.#mask);
    const h = layerNorm(x, this.#final).reshape([n * L, dim]);
    return h.matMul(this.#readout).reshape([n, L, vocabSize]) as tf.Tensor3D;
  }

  /** log p(tokens) of each sequence, in nats: float32 [n] (caller disposes). */
  logProb(tokens: tf.Tensor2D): tf.Tensor1D {
    this.#checkTokens("TransformerPrior.logProb", tokens);
    return tf.tidy(() => this.#tokenLogProbs(tokens).sum(1) as tf.Tensor1D);
  }

  /** log p(z_i | z_<i) of every token: [n, L]. */
  #tokenLogProbs(tokens: tf.Tensor2D): tf.Tensor2D {
    const logp = tf.logSoftmax(this.#logitsCore(tokens));
    const picked = tf.oneHot(tokens, this.config.vocabSize).mul(logp);
    return picked.sum(2) as tf.Tensor2D;
  }

  /** Mean negative log-likelihood per token (nats), and bits per sequence as a term. */
  loss(tokens: tf.Tensor2D): LossTerms {
    this.#checkTokens("TransformerPrior.loss", tokens);
    const nll = this.#tokenLogProbs(tokens).neg();
    return {
      total: nll.mean() as tf.Scalar,
      terms: { bitsPerImage: nll.sum(1).mean().div(Math.LN2) as tf.Scalar },
    };
  }

  /** Mean bits per sequence of a set of sequences, in batches (plain number). */
  bitsPerImage(
    tokens: tf.Tensor2D,
    options: { batchSize?: number } = {},
  ): number {
    const where = "TransformerPrior.bitsPerImage";
    const { batchSize = 256 } = checkOptions(where, options, ["batchSize"]);
    this.#checkTokens(where, tokens);
    checkInteger(where, "batchSize", batchSize, { min: 1 });
    let total = 0;
    const n = tokens.shape[0];
    for (let s = 0; s < n; s += batchSize) {
      const size = Math.min(batchSize, n - s);
      total += tf.tidy(() =>
        this.logProb(tokens.slice([s, 0], [size, -1])).sum().dataSync()[0]
      );
    }
    return -total / n / Math.LN2;
  }

  /**
   * Draws `count` sequences token by token: z_i ~ softmax(logits_i / T).
   * Temperature T < 1 sharpens the distribution, T > 1 flattens it.
   * Without a `seed`, the shared stream of unseeded draws continues (two
   * calls differ). Returns int32 [count, L] (caller disposes).
   */
  sample(
    count: number,
    options: { temperature?: number; seed?: Seed } = {},
  ): tf.Tensor2D {
    const where = "TransformerPrior.sample";
    checkInteger(where, "count", count, { min: 1 });
    checkSize(
      where,
      "count * length * vocabSize",
      count * this.config.length * this.config.vocabSize,
    );
    const { temperature = 1, seed } = checkOptions(where, options, [
      "temperature",
      "seed",
    ]);
    checkNumber(where, "temperature", temperature, {
      min: 0,
      minExclusive: true,
    });
    // Without a seed, the shared stream of unseeded draws continues: never the same draw twice.
    const rng = rngOrStream(seed, where);
    const { length, vocabSize } = this.config;
    const tokens = new Int32Array(count * length);
    for (let i = 0; i < length; i++) {
      // Recomputing the whole prefix each step is O(L^2) but L = 49 is small.
      const probs = tf.tidy(() => {
        const logits = this.#logitsCore(
          tf.tensor2d(tokens, [count, length], "int32"),
        );
        const row = logits.slice([0, i, 0], [count, 1, vocabSize]).reshape([
          count,
          vocabSize,
        ]);
        return tf.softmax(row.div(temperature)).dataSync() as Float32Array;
      });
      for (let r = 0; r < count; r++) {
        tokens[r * length + i] = drawIndex(
          probs,
          r * vocabSize,
          vocabSize,
          rng,
        );
      }
    }
    return tf.tensor2d(tokens, [count, length], "int32");
  }

  /** Frees the variables. */
  dispose(): void {
    tf.dispose(this.#variables);
    this.#mask.dispose();
  }

  #checkTokens(where: string, tokens: tf.Tensor2D): void {
    checkTensor(where, "tokens", tokens, {
      shape: [null, this.config.length],
      dtype: "int32",
    });
    if (tokens.shape[0] === 0) {
      throw new ArgumentError(where, "tokens is empty (0 sequences)");
    }
    const values = tokens.dataSync();
    for (let i = 0; i < values.length; i++) {
      if (values[i] < 0 || values[i] >= this.config.vocabSize) {
        throw new ArgumentError(
          where,
          `tokens must be in [0, ${this.config.vocabSize - 1}], got ${
            values[i]
          }`,
        );
      }
    }
  }
}

/** An index drawn from the probabilities p[offset .. offset + k). */
function drawIndex(
  p: Float32Array,
  offset: number,
  k: number,
  rng: Rng,
): number {
  let u = rng.uniform();
  for (let j = 0; j < k; j++) {
    u -= p[offset + j];
    if (u <= 0) return j;
  }
  return k - 1;
}
