/**
 * Phase II of the VQ-VAE: a learned prior over the grid of code indices.
 *
 * With the uniform prior every grid of H x W codes has probability K^-(HW),
 * so a code costs log2 K bits and an image H W log2 K bits: the rate bound.
 * Real code grids are far from uniform (the background of a Fashion-MNIST
 * image is the same code everywhere), and an autoregressive model
 * p(z) = prod_i p(z_i | z_<i) in raster order learns this. Its negative
 * log-likelihood in bits per image is a tighter bound on the rate, and
 * sampling it one position at a time gives code grids the decoder turns
 * into images.
 *
 * The model is a small PixelCNN: convolutions whose kernels are masked so
 * that position i only sees positions before it in raster order. The first
 * layer (mask "A") also hides the centre, the others (mask "B") may see it,
 * because by then the centre holds features of earlier positions only.
 *
 * ```ts
 * const prior = new PixelCNNPrior({ numCodes: 64, seed: 0 });
 * const optimizer = adam(2e-3);
 * const sampler = batchSampler(trainCodes, 64, { seed: 1 });
 * tf.tidy(() => trainStep(prior, optimizer, sampler.next())); // { loss, bitsPerImage }
 * const grids = prior.sample(20, { seed: 2 }); // int32 [20, 7, 7]
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkBoolean,
  checkChoice,
  checkInteger,
  checkNumber,
  checkOptions,
  checkSize,
  checkTensor,
} from "./validate.ts";
import {
  glorotUniform,
  randomNormal,
  type Rng,
  rngFrom,
  rngOrStream,
  type Seed,
} from "./random.ts";
import type { LossTerms, Trainable } from "./model.ts";
import { loadTensors, saveTensors } from "./nn.ts";

/**
 * The causal mask of a k x k kernel, shape [k, k, 1, 1]: 1 for the rows
 * above the centre and the positions left of it in the centre row; the
 * centre itself only for type "B". A new tensor (caller disposes).
 *
 * ```ts
 * causalMask(3, "A").reshape([3, 3]).print(); // [[1,1,1],[1,0,0],[0,0,0]]
 * ```
 */
export function causalMask(kernelSize: number, type: "A" | "B"): tf.Tensor4D {
  const where = "causalMask";
  checkInteger(where, "kernelSize", kernelSize, { min: 1, max: 2 ** 14 });
  if (kernelSize % 2 !== 1) {
    throw new ArgumentError(where, `kernelSize must be odd, got ${kernelSize}`);
  }
  checkChoice(where, "type", type, ["A", "B"] as const);
  const c = (kernelSize - 1) / 2;
  const m = new Float32Array(kernelSize * kernelSize);
  for (let r = 0; r < kernelSize; r++) {
    for (let s = 0; s < kernelSize; s++) {
      if (r < c || (r === c && (s < c || (s === c && type === "B")))) {
        m[r * kernelSize + s] = 1;
      }
    }
  }
  return tf.tensor4d(m, [kernelSize, kernelSize, 1, 1]);
}

/** Options of `PixelCNNPrior`. */
export interface PixelCNNPriorOptions {
  /** Number of codes K. */
  numCodes: number;
  /** Grid height (default 7). */
  height?: number;
  /** Grid width (default 7). */
  width?: number;
  /** Width of the learned code embedding fed to the first layer (default 16). */
  embedding?: number;
  /** Hidden channels (default 32). */
  channels?: number;
  /** Number of residual masked 3x3 layers after the first 5x5 mask-A layer (default 3). */
  layers?: number;
  /** Seed of the initial weights, and of the samples drawn without a seed (default 0). */
  seed?: number;
}

const PRIOR_KEYS = [
  "numCodes",
  "height",
  "width",
  "embedding",
  "channels",
  "layers",
  "seed",
] as const;

/** One convolution of the PixelCNN: kernel, bias, and the causal mask of its kernel (null for 1x1). */
interface MaskedLayer {
  kernel: tf.Variable;
  bias: tf.Variable;
  mask: tf.Tensor | null;
}

/** A convolution that sees only what its mask lets through: earlier positions in raster order. */
function maskedConv(x: tf.Tensor4D, layer: MaskedLayer): tf.Tensor4D {
  const { kernel, bias, mask } = layer;
  const w = (mask ? kernel.mul(mask) : kernel) as tf.Tensor4D;
  return tf.conv2d(x, w, 1, "same").add(bias) as tf.Tensor4D;
}

/**
 * The PixelCNN: code embeddings -> 5x5 mask-A layer -> residual 3x3 mask-B
 * layers -> two 1x1 layers -> K logits per position.
 */
function pixelCNN(
  embedding: tf.Tensor2D,
  layers: MaskedLayer[],
  codes: tf.Tensor3D,
): tf.Tensor4D {
  const [first, ...rest] = layers;
  const [hidden, out] = rest.splice(-2);
  // The codes are data: gather needs no gradient with respect to them.
  let x = tf.gather(embedding as tf.Tensor, codes) as tf.Tensor4D;
  x = maskedConv(x, first).relu();
  for (const layer of rest) x = x.add(maskedConv(x, layer).relu());
  x = maskedConv(x, hidden).relu();
  return maskedConv(x, out);
}

/**
 * Ancestral sampling in raster order: position after position, each code
 * drawn from p(z_i | z_<i), the softmax of the logits at i (divided by the
 * temperature) given the grid drawn so far.
 */
function sampleGrids(
  logitsOf: (grids: tf.Tensor3D) => tf.Tensor4D,
  n: number,
  [height, width, k]: [number, number, number],
  rng: Rng,
  temperature: number,
): Int32Array {
  const grid = new Int32Array(n * height * width);
  for (let pos = 0; pos < height * width; pos++) {
    const [r, c] = [Math.floor(pos / width), pos % width];
    const probs = tf.tidy(() => {
      const logits = logitsOf(tf.tensor3d(grid, [n, height, width], "int32"));
      const here = logits.slice([0, r, c, 0], [n, 1, 1, k]).reshape([n, k]);
      return tf.softmax(here.div(temperature)).dataSync();
    });
    for (let i = 0; i < n; i++) {
      const p = probs.subarray(i * k, (i + 1) * k);
      grid[i * height * width + pos] = rng.categorical(p);
    }
  }
  return grid;
}

/**
 * A small PixelCNN over code grids (`pixelCNN`), trained by maximum
 * likelihood. Implements `Trainable`: `trainStep(prior, adam(2e-3), codes)`
 * returns `{ loss, bitsPerImage }` (the mean NLL in nats and in bits).
 * Owns its variables: `dispose()`.
 */
export class PixelCNNPrior implements Trainable<tf.Tensor3D> {
  /** The resolved options (saved with the weights). */
  readonly config: Required<PixelCNNPriorOptions>;
  /** Training steps taken (counted by `afterStep`). */
  steps = 0;
  readonly #layers: MaskedLayer[] = [];
  readonly #embedding: tf.Variable<tf.Rank.R2>;
  // Samples drawn without a seed continue this stream: never the same draw twice.
  readonly #sampleRng: Rng;

  /** Builds an untrained prior; see `PixelCNNPriorOptions`. Options are checked before anything is built. */
  constructor(options: PixelCNNPriorOptions) {
    const where = "PixelCNNPrior";
    if (options === undefined) {
      throw new ArgumentError(where, "options must be an object with numCodes");
    }
    const o = checkOptions(where, options, PRIOR_KEYS);
    const int = (name: keyof PixelCNNPriorOptions, fallback: number, min = 1) =>
      checkInteger(where, name, o[name] ?? fallback, { min });
    this.config = {
      numCodes: checkInteger(where, "numCodes", o.numCodes, { min: 2 }),
      height: int("height", 7),
      width: int("width", 7),
      embedding: int("embedding", 16),
      channels: int("channels", 32),
      layers: int("layers", 3, 0),
      seed: checkNumber(where, "seed", o.seed ?? 0),
    };
    const { numCodes: k, channels: c, layers, embedding } = this.config;
    const rng = rngFrom(this.config.seed);
    // Code embeddings instead of one-hot inputs: K-channel convolutions cost K / embedding times more.
    this.#embedding = tf.tidy(() =>
      tf.variable(randomNormal([k, embedding], { std: 1, seed: rng }), true)
    ) as tf.Variable<tf.Rank.R2>;
    const add = (
      size: number,
      cin: number,
      cout: number,
      mask: "A" | "B" | null,
    ) => {
      const [kernel, bias] = tf.tidy(() => [
        tf.variable(
          glorotUniform([size, size, cin, cout], { seed: rng }),
          true,
        ),
        tf.variable(tf.zeros([cout]), true),
      ]);
      this.#layers.push({
        kernel,
        bias,
        mask: mask ? causalMask(size, mask) : null,
      });
    };
    add(5, embedding, c, "A");
    for (let i = 0; i < layers; i++) add(3, c, c, "B");
    add(1, c, c, null);
    add(1, c, k, null);
    this.#sampleRng = rngFrom(this.config.seed + 1);
  }

  /** The trainable variables: the code embedding, every kernel and bias. */
  trainableVariables(): tf.Variable[] {
    return [
      this.#embedding,
      ...this.#layers.flatMap((l) => [l.kernel, l.bias]),
    ];
  }

  #checkCodes(where: string, codes: unknown): tf.Tensor3D {
    const { height, width, numCodes } = this.config;
    checkTensor(where, "codes", codes, {
      shape: [null, height, width],
      dtype: "int32",
    });
    const t = codes as tf.Tensor3D;
    if (t.shape[0] === 0) {
      throw new ArgumentError(where, "codes is an empty batch (0 grids)");
    }
    const v = t.dataSync();
    for (let i = 0; i < v.length; i++) {
      if (v[i] < 0 || v[i] >= numCodes) {
        throw new ArgumentError(
          where,
          `codes must be in [0, ${numCodes - 1}], got ${v[i]} at ${i}`,
        );
      }
    }
    return t;
  }

  #forward(codes: tf.Tensor3D): tf.Tensor4D {
    return pixelCNN(this.#embedding, this.#layers, codes);
  }

  /** Logits [n, H, W, K]: position (r, s) depends only on codes before it in raster order (caller disposes). */
  logits(codes: tf.Tensor3D): tf.Tensor4D {
    this.#checkCodes("PixelCNNPrior.logits", codes);
    return tf.tidy(() => this.#forward(codes));
  }

  /** Negative log-likelihood in nats of each grid, [n] (differentiable). */
  #nll(codes: tf.Tensor3D): tf.Tensor1D {
    const logp = tf.logSoftmax(this.#forward(codes));
    const target = tf.oneHot(codes, this.config.numCodes).toFloat();
    return logp.mul(target).sum([1, 2, 3]).neg() as tf.Tensor1D;
  }

  /**
   * The loss of a batch of code grids (int32 [n, H, W], n > 0): the mean
   * negative log-likelihood in nats, and the same in bits as the term
   * `bitsPerImage`. New tensors (`trainStep` frees them).
   *
   * @throws ArgumentError for an empty batch or codes out of range
   */
  loss(codes: tf.Tensor3D): LossTerms {
    this.#checkCodes("PixelCNNPrior.loss", codes);
    const total = this.#nll(codes).mean() as tf.Scalar;
    return { total, terms: { bitsPerImage: total.div(Math.LN2) } };
  }

  /** Counts the training steps (the hook `trainStep` runs after each step). */
  afterStep(): void {
    this.steps++;
  }

  /** Average NLL in bits per image of a set of code grids, in batches (plain number). */
  bitsPerImage(
    codes: tf.Tensor3D,
    options?: { batchSize?: number },
  ): number {
    const where = "PixelCNNPrior.bitsPerImage";
    const { batchSize = 500 } = checkOptions(where, options, ["batchSize"]);
    this.#checkCodes(where, codes);
    checkInteger(where, "batchSize", batchSize, { min: 1 });
    const n = codes.shape[0];
    const { height, width } = this.config;
    let total = 0;
    for (let s = 0; s < n; s += batchSize) {
      const size = Math.min(batchSize, n - s);
      total += tf.tidy(() =>
        this.#nll(codes.slice([s, 0, 0], [size, height, width])).sum()
          .dataSync()[0]
      );
    }
    return total / n / Math.LN2;
  }

  /**
   * Draws `n` code grids int32 [n, H, W] one position at a time in raster
   * order (`sampleGrids`), each from the softmax of the logits divided by
   * `temperature` (default 1). Without a `seed`, the prior's own seeded
   * stream continues (two calls draw different grids). Caller disposes.
   */
  sample(
    n: number,
    options?: { seed?: Seed; temperature?: number },
  ): tf.Tensor3D {
    const where = "PixelCNNPrior.sample";
    const { seed, temperature = 1 } = checkOptions(where, options, [
      "seed",
      "temperature",
    ]);
    checkInteger(where, "n", n, { min: 1 });
    checkSize(
      where,
      "n * height * width * numCodes",
      n * this.config.height * this.config.width * this.config.numCodes,
    );
    checkNumber(where, "temperature", temperature, {
      min: 0,
      minExclusive: true,
    });
    const rng = seed === undefined ? this.#sampleRng : rngOrStream(seed, where);
    const { height, width, numCodes: k } = this.config;
    const grid = sampleGrids(
      (grids) => this.#forward(grids),
      n,
      [height, width, k],
      rng,
      temperature,
    );
    return tf.tensor3d(grid, [n, height, width], "int32");
  }

  /** Saves weights and config to `<path>.json` / `<path>.bin` (all or nothing); refuses to overwrite unless asked. */
  async save(path: string, options?: { overwrite?: boolean }): Promise<void> {
    const where = "PixelCNNPrior.save";
    const { overwrite = false } = checkOptions(where, options, ["overwrite"]);
    checkBoolean(where, "overwrite", overwrite);
    const tensors: Record<string, tf.Tensor> = {};
    tensors["embedding"] = this.#embedding;
    this.#layers.forEach((l, i) => {
      tensors[`layer${i}/kernel`] = l.kernel;
      tensors[`layer${i}/bias`] = l.bias;
    });
    await saveTensors(path, tensors, {
      config: { kind: "pixelcnn-prior", ...this.config, steps: this.steps },
      overwrite,
    });
  }

  /** Loads a prior written by `save`. */
  static async load(path: string): Promise<PixelCNNPrior> {
    const where = "PixelCNNPrior.load";
    const { tensors, config } = await loadTensors(path);
    try {
      if (config.kind !== "pixelcnn-prior") {
        throw new ArgumentError(
          where,
          `${path}.json does not hold a PixelCNN prior`,
        );
      }
      const {
        kind: _kind,
        steps,
        learningRate: _lr, // written by older versions; the optimizer is not part of the model
        ...options
      } = config;
      const prior = new PixelCNNPrior(
        options as unknown as PixelCNNPriorOptions,
      );
      try {
        const emb = tensors["embedding"];
        if (!emb || emb.shape.join(",") !== prior.#embedding.shape.join(",")) {
          throw new ArgumentError(
            where,
            `${path}: missing or mis-shaped embedding`,
          );
        }
        prior.#embedding.assign(emb as tf.Tensor2D);
        prior.#layers.forEach((l, i) => {
          for (
            const [name, v] of [["kernel", l.kernel], ["bias", l.bias]] as const
          ) {
            const t = tensors[`layer${i}/${name}`];
            if (!t || t.shape.join(",") !== v.shape.join(",")) {
              throw new ArgumentError(
                where,
                `${path}: missing or mis-shaped layer${i}/${name}`,
              );
            }
            v.assign(t);
          }
        });
        prior.steps = typeof steps === "number" ? steps : 0;
        return prior;
      } catch (e) {
        prior.dispose();
        throw e;
      }
    } finally {
      tf.dispose(Object.values(tensors));
    }
  }

  /** Frees the variables and masks. */
  dispose(): void {
    this.#embedding.dispose();
    for (const l of this.#layers) {
      tf.dispose([l.kernel, l.bias, ...(l.mask ? [l.mask] : [])]);
    }
  }
}
