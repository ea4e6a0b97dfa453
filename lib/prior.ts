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
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { adam } from "./optim.ts";
import {
  ArgumentError,
  checkInteger,
  checkNumber,
  checkTensor,
} from "./validate.ts";
import { glorotUniform, randomNormal, rngFrom, type Seed } from "./random.ts";
import { loadTensors, saveTensors } from "./nn.ts";
import { codeUsage } from "./vqvae.ts";

/** The rate bound of a code grid under the uniform prior: H W log2 K bits per image. */
export function rateBoundBits(numCodes: number, height = 7, width = 7): number {
  checkInteger("rateBoundBits", "numCodes", numCodes, { min: 1 });
  checkInteger("rateBoundBits", "height", height, { min: 1 });
  checkInteger("rateBoundBits", "width", width, { min: 1 });
  return height * width * Math.log2(numCodes);
}

/** Code grids int32 [n, height, width] drawn from the uniform prior (caller disposes). */
export function uniformCodes(
  n: number,
  numCodes: number,
  { height = 7, width = 7, seed = 0 }: {
    height?: number;
    width?: number;
    seed?: Seed;
  } = {},
): tf.Tensor3D {
  const where = "uniformCodes";
  checkInteger(where, "n", n, { min: 1 });
  checkInteger(where, "numCodes", numCodes, { min: 1 });
  checkInteger(where, "height", height, { min: 1 });
  checkInteger(where, "width", width, { min: 1 });
  const rng = rngFrom(seed);
  const values = new Int32Array(n * height * width);
  for (let i = 0; i < values.length; i++) values[i] = rng.int(numCodes);
  return tf.tensor3d(values, [n, height, width], "int32");
}

/**
 * The causal mask of a k x k kernel, shape [k, k, 1, 1]: 1 for the rows
 * above the centre and the positions left of it in the centre row; the
 * centre itself only for type "B".
 */
export function causalMask(kernelSize: number, type: "A" | "B"): tf.Tensor4D {
  checkInteger("causalMask", "kernelSize", kernelSize, { min: 1 });
  if (kernelSize % 2 !== 1) {
    throw new ArgumentError(
      "causalMask",
      `kernelSize must be odd, got ${kernelSize}`,
    );
  }
  if (type !== "A" && type !== "B") {
    throw new ArgumentError(
      "causalMask",
      `type must be "A" or "B", got ${type}`,
    );
  }
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
  /** Adam learning rate (default 2e-3). */
  learningRate?: number;
  /** Seed of the initial weights (default 0). */
  seed?: number;
}

interface Layer {
  kernel: tf.Variable;
  bias: tf.Variable;
  mask: tf.Tensor | null;
}

/**
 * A small PixelCNN over code grids: learned code embeddings -> 5x5 mask-A
 * convolution -> `layers` residual 3x3 mask-B convolutions -> two 1x1
 * convolutions -> K logits per position. Owns its variables: `dispose()`.
 */
export class PixelCNNPrior {
  /** The resolved options (saved with the weights). */
  readonly config: Required<PixelCNNPriorOptions>;
  /** Training steps taken. */
  steps = 0;
  readonly #layers: Layer[] = [];
  readonly #embedding: tf.Variable;
  readonly #optimizer: tf.Optimizer;

  /** Builds an untrained prior; see `PixelCNNPriorOptions`. */
  constructor(options: PixelCNNPriorOptions) {
    const where = "PixelCNNPrior";
    if (options === null || typeof options !== "object") {
      throw new ArgumentError(where, "options must be an object with numCodes");
    }
    this.config = {
      numCodes: checkInteger(where, "numCodes", options.numCodes, { min: 2 }),
      height: checkInteger(where, "height", options.height ?? 7, { min: 1 }),
      width: checkInteger(where, "width", options.width ?? 7, { min: 1 }),
      embedding: checkInteger(where, "embedding", options.embedding ?? 16, {
        min: 1,
      }),
      channels: checkInteger(where, "channels", options.channels ?? 32, {
        min: 1,
      }),
      layers: checkInteger(where, "layers", options.layers ?? 3, { min: 0 }),
      learningRate: checkNumber(
        where,
        "learningRate",
        options.learningRate ?? 2e-3,
        {
          min: 0,
          minExclusive: true,
        },
      ),
      seed: checkNumber(where, "seed", options.seed ?? 0),
    };
    const { numCodes: k, channels: c, layers, embedding } = this.config;
    const rng = rngFrom(this.config.seed);
    // Code embeddings instead of one-hot inputs: K-channel convolutions cost K / embedding times more.
    this.#embedding = tf.tidy(() =>
      tf.variable(randomNormal([k, embedding], { std: 1, seed: rng }), true)
    );
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
    this.#optimizer = adam(this.config.learningRate);
  }

  /** The trainable variables (kernels and biases). */
  get variables(): tf.Variable[] {
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
    const L = this.#layers;
    const conv = (x: tf.Tensor4D, l: Layer) =>
      tf.conv2d(
        x,
        (l.mask ? l.kernel.mul(l.mask) : l.kernel) as tf.Tensor4D,
        1,
        "same",
      ).add(l.bias) as tf.Tensor4D;
    // The codes are data, not computed from variables: gather needs no gradient for them.
    let x = tf.gather(this.#embedding, codes) as tf.Tensor4D;
    x = conv(x, L[0]).relu();
    for (let i = 1; i <= this.config.layers; i++) {
      x = x.add(conv(x, L[i]).relu());
    }
    x = conv(x, L[L.length - 2]).relu();
    return conv(x, L[L.length - 1]);
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
   * One Adam step on a batch of code grids (int32 [n, H, W]). Returns the
   * batch's NLL in bits per image (plain number).
   */
  trainStep(codes: tf.Tensor3D): { bitsPerImage: number } {
    this.#checkCodes("PixelCNNPrior.trainStep", codes);
    const cost = this.#optimizer.minimize(
      () => this.#nll(codes).mean() as tf.Scalar,
      true,
      this.variables,
    )!;
    const nats = cost.dataSync()[0];
    cost.dispose();
    this.steps++;
    return { bitsPerImage: nats / Math.LN2 };
  }

  /** Average NLL in bits per image of a set of code grids, in batches (plain number). */
  bitsPerImage(
    codes: tf.Tensor3D,
    { batchSize = 500 }: { batchSize?: number } = {},
  ): number {
    const where = "PixelCNNPrior.bitsPerImage";
    this.#checkCodes(where, codes);
    checkInteger(where, "batchSize", batchSize, { min: 1 });
    const n = codes.shape[0];
    if (n === 0) throw new ArgumentError(where, "codes is empty");
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
   * order, each from the softmax of the logits (divided by `temperature`).
   * Caller disposes.
   */
  sample(
    n: number,
    { seed = 0, temperature = 1 }: { seed?: Seed; temperature?: number } = {},
  ): tf.Tensor3D {
    const where = "PixelCNNPrior.sample";
    checkInteger(where, "n", n, { min: 1 });
    checkNumber(where, "temperature", temperature, {
      min: 0,
      minExclusive: true,
    });
    const rng = rngFrom(seed);
    const { height, width, numCodes: k } = this.config;
    const grid = new Int32Array(n * height * width);
    for (let pos = 0; pos < height * width; pos++) {
      const probs = tf.tidy(() => {
        const logits = this.#forward(
          tf.tensor3d(grid, [n, height, width], "int32"),
        );
        const r = Math.floor(pos / width);
        const c = pos % width;
        return tf.softmax(
          logits.slice([0, r, c, 0], [n, 1, 1, k]).reshape([n, k]).div(
            temperature,
          ),
        )
          .dataSync();
      });
      for (let i = 0; i < n; i++) {
        grid[i * height * width + pos] = rng.categorical(
          probs.subarray(i * k, (i + 1) * k),
        );
      }
    }
    return tf.tensor3d(grid, [n, height, width], "int32");
  }

  /** Saves weights and config to `<path>.json` / `<path>.bin`; refuses to overwrite unless asked. */
  async save(
    path: string,
    { overwrite = false }: { overwrite?: boolean } = {},
  ): Promise<void> {
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
    const { tensors, config } = await loadTensors(path);
    try {
      if (config.kind !== "pixelcnn-prior") {
        throw new ArgumentError(
          "PixelCNNPrior.load",
          `${path}.json does not hold a PixelCNN prior`,
        );
      }
      const prior = new PixelCNNPrior(
        config as unknown as PixelCNNPriorOptions,
      );
      try {
        const emb = tensors["embedding"];
        if (!emb || emb.shape.join(",") !== prior.#embedding.shape.join(",")) {
          throw new ArgumentError(
            "PixelCNNPrior.load",
            `${path}: missing or mis-shaped embedding`,
          );
        }
        prior.#embedding.assign(emb);
        prior.#layers.forEach((l, i) => {
          for (
            const [name, v] of [["kernel", l.kernel], ["bias", l.bias]] as const
          ) {
            const t = tensors[`layer${i}/${name}`];
            if (!t || t.shape.join(",") !== v.shape.join(",")) {
              throw new ArgumentError(
                "PixelCNNPrior.load",
                `${path}: missing or mis-shaped layer${i}/${name}`,
              );
            }
            v.assign(t);
          }
        });
        prior.steps = typeof config.steps === "number" ? config.steps : 0;
        return prior;
      } catch (e) {
        prior.dispose();
        throw e;
      }
    } finally {
      tf.dispose(Object.values(tensors));
    }
  }

  /** Frees the variables, masks and optimizer state. */
  dispose(): void {
    this.#embedding.dispose();
    for (const l of this.#layers) {
      tf.dispose([l.kernel, l.bias, ...(l.mask ? [l.mask] : [])]);
    }
    this.#optimizer.dispose();
  }
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
