/**
 * Generative adversarial networks: the two-player game of a generator G
 * (noise -> data) and a discriminator D (data -> "is it real?").
 *
 * Everything here works with D's *logits* v (D(x) = sigmoid(v)) so that the
 * logs of the objective are computed as log-sigmoids, which stay finite for
 * any logit; taking the log of a sigmoid output would give -Infinity as soon
 * as the sigmoid rounds to 0 or 1 in float32.
 *
 * A `GAN` holds the two networks and gives each player its objective as a
 * `Trainable` (lib/model.ts): D's objective lists D's variables only (G is
 * frozen), G's objective flows through D but lists G's variables only (D is
 * frozen). The lecture's alternation, k D-steps then l G-steps with the one
 * `trainStep`, is a short loop the notebook writes out:
 *
 * ```ts
 * const gan = new GAN({ generator, discriminator, data: ring.points, noiseDim: 2 });
 * const [dObjective, gObjective] = [gan.discriminatorObjective(), gan.generatorObjective()];
 * const [dOptimizer, gOptimizer] = [adam(1e-3, 0.5), adam(1e-3, 0.5)];
 * const sampler = batchSampler(ring.points, 128, { seed: 0 });
 * for (let round = 0; round < 2000; round++) {
 *   for (let i = 0; i < k; i++) tf.tidy(() => trainStep(dObjective, dOptimizer, sampler.next()));
 *   for (let i = 0; i < l; i++) tf.tidy(() => trainStep(gObjective, gOptimizer, sampler.next()));
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
  checkFitsModel,
  checkInteger,
  checkNumber,
  checkOptions,
  checkSize,
  checkTensor,
} from "./validate.ts";
import {
  randomNormal,
  randomUniform,
  Rng,
  rngFrom,
  rngOrStream,
  type Seed,
} from "./random.ts";
import { mlp, trainableVariables, upsample7to28Layers } from "./nn.ts";
import { stopGradient } from "./autodiff.ts";
import type { LossTerms, Trainable } from "./model.ts";

// ---------------------------------------------------------------------------
// Losses

function checkLogits(where: string, name: string, logits: unknown): tf.Tensor {
  const t = checkTensor(where, name, logits, { dtype: "float32" });
  if (t.size === 0) {
    throw new ArgumentError(where, `${name} must not be empty`);
  }
  if (t.rank > 2 || (t.rank === 2 && t.shape[1] !== 1)) {
    throw new ArgumentError(
      where,
      `${name} must be discriminator logits of shape [n] or [n, 1], got shape [${
        t.shape.join(", ")
      }]`,
    );
  }
  checkFinite(where, name, t);
  return t;
}

/**
 * log sigmoid(v) = -softplus(-v), finite for any logit. tf.logSigmoid's own
 * gradient closes over its input instead of saving it, so it fails once that
 * input is an intermediate tensor disposed after the forward pass (e.g.
 * logSigmoid(-v) inside tf.variableGrads); this version saves it.
 */
const logSigmoid = tf.customGrad(
  ((x: tf.Tensor, save: (ts: tf.Tensor[]) => void) => {
    save([x]);
    return {
      value: tf.neg(tf.softplus(tf.neg(x))),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.mul(dy, tf.sigmoid(tf.neg(saved[0]))),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0],
) as unknown as (x: tf.Tensor) => tf.Tensor;

/** D's loss -f_acc: binary cross-entropy, label 1 for real and 0 for fake. */
function dLoss(realLogits: tf.Tensor, fakeLogits: tf.Tensor): tf.Scalar {
  // log D(x) = logSigmoid(v); log(1 - D(x)) = logSigmoid(-v): no cancellation.
  const logDReal = tf.mean(logSigmoid(realLogits));
  const logOneMinusDFake = tf.mean(logSigmoid(tf.neg(fakeLogits)));
  return tf.neg(tf.add(logDReal, logOneMinusDFake)) as tf.Scalar;
}

/** G's min-max loss mean log(1 - D(G(z))): its gradient vanishes when D wins. */
function satLoss(fakeLogits: tf.Tensor): tf.Scalar {
  return tf.mean(logSigmoid(tf.neg(fakeLogits))) as tf.Scalar;
}

/** G's non-saturating loss -mean log D(G(z)): strong gradient when G is bad. */
function nonSatLoss(fakeLogits: tf.Tensor): tf.Scalar {
  return tf.neg(tf.mean(logSigmoid(fakeLogits))) as tf.Scalar;
}

/**
 * The discriminator's loss -f_acc = -(mean log D(x) + mean log(1 - D(G(z))))
 * from D's logits on a real and a fake batch ([n] or [n, 1] each). This is
 * binary cross-entropy with label 1 for real and 0 for fake; D minimises it.
 * Returns a scalar tensor (the caller disposes it).
 *
 * @example
 * discriminatorLoss(tf.zeros([8]), tf.zeros([8])); // log 4: D is a coin flip
 */
export function discriminatorLoss(
  realLogits: tf.Tensor,
  fakeLogits: tf.Tensor,
): tf.Scalar {
  checkLogits("discriminatorLoss", "realLogits", realLogits);
  checkLogits("discriminatorLoss", "fakeLogits", fakeLogits);
  return tf.tidy(() => dLoss(realLogits, fakeLogits));
}

/**
 * The generator's side of the min-max game: mean log(1 - D(G(z))), which G
 * minimises. It saturates: when D confidently rejects the fakes
 * (D(G(z)) ~ 0) its gradient with respect to D's logit is D(G(z)) ~ 0.
 * Returns a scalar tensor (the caller disposes it).
 */
export function saturatingGeneratorLoss(fakeLogits: tf.Tensor): tf.Scalar {
  checkLogits("saturatingGeneratorLoss", "fakeLogits", fakeLogits);
  return tf.tidy(() => satLoss(fakeLogits));
}

/**
 * The non-saturating generator loss -mean log D(G(z)): the same fixed point
 * as the min-max game, but its gradient with respect to D's logit is
 * 1 - D(G(z)) ~ 1 exactly when G is bad. Returns a scalar tensor (the caller
 * disposes it).
 */
export function nonSaturatingGeneratorLoss(fakeLogits: tf.Tensor): tf.Scalar {
  checkLogits("nonSaturatingGeneratorLoss", "fakeLogits", fakeLogits);
  return tf.tidy(() => nonSatLoss(fakeLogits));
}

const GENERATOR_LOSSES = ["nonSaturating", "saturating"] as const;
/** A generator-loss name: "nonSaturating" (-log D) or "saturating" (log(1 - D)). */
export type GeneratorLossName = typeof GENERATOR_LOSSES[number];

// ---------------------------------------------------------------------------
// Networks

function checkSizes(
  where: string,
  name: string,
  sizes: unknown,
  length?: number,
): number[] {
  if (
    !Array.isArray(sizes) || sizes.length === 0 ||
    (length !== undefined && sizes.length !== length)
  ) {
    throw new ArgumentError(
      where,
      `${name} must be ${
        length === undefined
          ? "a non-empty array of layer sizes"
          : `an array of ${length} sizes`
      }, got ${JSON.stringify(sizes)}`,
    );
  }
  sizes.forEach((s, i) => checkInteger(where, `${name}[${i}]`, s, { min: 1 }));
  return sizes;
}

/** Options of `mlpGenerator`. */
export interface MLPGeneratorOptions {
  /** Size of the noise vector z. */
  noiseDim: number;
  /** Size of the generated vector (2 for points, 784 for flat 28x28 images). */
  outputDim: number;
  /** Classes of a conditional GAN (their one-hot code is appended to z); 0 = unconditional (default). */
  numClasses?: number;
  /** Hidden layer sizes (default [128, 128]). */
  hidden?: number[];
  /** Output activation: "linear" for points (default), "sigmoid" for images in [0, 1]. */
  outputActivation?: "linear" | "sigmoid" | "tanh";
  /** Seed of the initial weights (default 0). */
  seed?: number;
  /**
   * Batch normalisation after each hidden dense layer (default false): keeps
   * the hidden units of G from dying or exploding early in the game, which
   * speeds up image GANs considerably (DCGAN's recipe).
   */
  batchNorm?: boolean;
}

/**
 * An MLP generator [noiseDim + numClasses] -> hidden (ReLU, optionally
 * batch-normalised) -> [outputDim]. The caller owns (and disposes) it, or
 * hands it to a `GAN`.
 *
 * @example
 * const G = mlpGenerator({ noiseDim: 2, outputDim: 2, hidden: [128, 128] });
 */
export function mlpGenerator(options: MLPGeneratorOptions): tf.Sequential {
  const where = "mlpGenerator";
  const {
    noiseDim,
    outputDim,
    numClasses = 0,
    hidden = [128, 128],
    outputActivation = "linear",
    seed = 0,
    batchNorm = false,
  } = checkOptions(where, options, [
    "noiseDim",
    "outputDim",
    "numClasses",
    "hidden",
    "outputActivation",
    "seed",
    "batchNorm",
  ]);
  checkInteger(where, "noiseDim", noiseDim, { min: 1 });
  checkInteger(where, "outputDim", outputDim, { min: 1 });
  checkInteger(where, "numClasses", numClasses, { min: 0 });
  checkSizes(where, "hidden", hidden);
  checkChoice(where, "outputActivation", outputActivation, [
    "linear",
    "sigmoid",
    "tanh",
  ]);
  checkNumber(where, "seed", seed);
  checkBoolean(where, "batchNorm", batchNorm);
  if (!batchNorm) {
    return mlp([noiseDim + numClasses, ...hidden, outputDim], {
      activation: "relu",
      outputActivation,
      seed,
      name: "generator",
    });
  }
  const model = tf.sequential({ name: "generator" });
  const sizes = [...hidden, outputDim];
  sizes.forEach((units, i) => {
    const last = i === sizes.length - 1;
    model.add(tf.layers.dense({
      units,
      inputShape: i === 0 ? [noiseDim + numClasses] : undefined,
      kernelInitializer: tf.initializers.glorotUniform({
        seed: seed * 1000 + i + 1,
      }),
      name: `generator_dense${i + 1}`,
    }));
    if (!last) {
      model.add(tf.layers.batchNormalization({ name: `generator_bn${i + 1}` }));
      model.add(
        tf.layers.activation({
          activation: "relu",
          name: `generator_act${i + 1}`,
        }),
      );
    } else if (outputActivation !== "linear") {
      model.add(
        tf.layers.activation({
          activation: outputActivation,
          name: "generator_out",
        }),
      );
    }
  });
  return model;
}

/** Options of `mlpDiscriminator`. */
export interface MLPDiscriminatorOptions {
  /** Size of a (flattened) data vector. */
  inputDim: number;
  /** Classes of a conditional GAN (their one-hot code is appended to x); default 0. */
  numClasses?: number;
  /** Hidden layer sizes (default [128, 128]). */
  hidden?: number[];
  /** Seed of the initial weights (default 0). */
  seed?: number;
}

/**
 * An MLP discriminator [inputDim + numClasses] -> hidden (leaky ReLU) -> 1
 * logit. Leaky ReLU keeps a gradient flowing back to G from every unit.
 */
export function mlpDiscriminator(
  options: MLPDiscriminatorOptions,
): tf.Sequential {
  const where = "mlpDiscriminator";
  const { inputDim, numClasses = 0, hidden = [128, 128], seed = 0 } =
    checkOptions(where, options, ["inputDim", "numClasses", "hidden", "seed"]);
  checkInteger(where, "inputDim", inputDim, { min: 1 });
  checkInteger(where, "numClasses", numClasses, { min: 0 });
  checkSizes(where, "hidden", hidden);
  checkNumber(where, "seed", seed);
  return mlp([inputDim + numClasses, ...hidden, 1], {
    activation: "leakyRelu",
    outputActivation: "linear",
    seed,
    name: "discriminator",
  });
}

/**
 * Leaky ReLU written as alpha x + (1 - alpha) relu(x): the same function as
 * tf.layers.leakyReLU, but tfjs can differentiate its gradient once more
 * (tf.leakyRelu's gradient goes through Greater, which has no gradient), and
 * the R1 penalty differentiates D's input gradient with respect to D's
 * weights.
 */
class TwiceDifferentiableLeakyReLU extends tf.layers.Layer {
  static className = "TwiceDifferentiableLeakyReLU";
  readonly alpha: number;

  constructor(config: { alpha?: number; name?: string } = {}) {
    super({ name: config.name });
    this.alpha = config.alpha ?? 0.2;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() =>
      tf.add(tf.mul(x, this.alpha), tf.mul(tf.relu(x), 1 - this.alpha))
    );
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), alpha: this.alpha };
  }
}
tf.serialization.registerClass(TwiceDifferentiableLeakyReLU);

/**
 * Batch normalisation that always uses the batch's own statistics (per
 * channel, the last axis), with a learned scale and shift: what a GAN's G
 * uses in training, and at sampling time too (`GAN.sample` hands it a full
 * batch). Written with tf.moments, whose gradient broadcasts; the gradient
 * of tf.layers.batchNormalization tiles tensors to the input's size, which
 * made G's step three times slower on the wasm backend.
 */
export class BatchStatisticsNorm extends tf.layers.Layer {
  static className = "BatchStatisticsNorm";
  readonly epsilon = 1e-3;
  #gamma: tf.LayerVariable | null = null;
  #beta: tf.LayerVariable | null = null;

  constructor(config: { name?: string } = {}) {
    super({ name: config.name });
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape =
      (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const channels = shape[shape.length - 1] as number;
    this.#gamma = this.addWeight(
      "gamma",
      [channels],
      "float32",
      tf.initializers.ones(),
    );
    this.#beta = this.addWeight(
      "beta",
      [channels],
      "float32",
      tf.initializers.zeros(),
    );
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => {
      const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
      const { mean, variance } = tf.moments(x, axes);
      const scale = tf.mul(
        this.#gamma!.read(),
        tf.rsqrt(tf.add(variance, this.epsilon)),
      );
      return tf.add(tf.mul(tf.sub(x, mean), scale), this.#beta!.read());
    });
  }
}
tf.serialization.registerClass(BatchStatisticsNorm);

/** Options of `convGenerator28`. */
export interface ConvGeneratorOptions {
  /** Size of the noise vector z. */
  noiseDim: number;
  /** Classes of a conditional GAN (default 0). */
  numClasses?: number;
  /** Channels of the 7x7 and 14x14 feature maps (default [32, 16]). */
  channels?: [number, number];
  /** Seed of the initial weights (default 0). */
  seed?: number;
  /**
   * DCGAN's batch normalisation (default false): each hidden feature map is
   * normalised per channel before its ReLU, which keeps G's units alive and
   * its output varied from the first steps.
   */
  batchNorm?: boolean;
}

/**
 * A small convolutional generator for 28x28 images in [0, 1]: a dense layer
 * to a 7x7 map, then two 4x4 stride-2 transposed convolutions (7 -> 14 ->
 * 28), sigmoid output. Input [n, noiseDim + numClasses], output [n, 28, 28, 1].
 * With `batchNorm`, DCGAN's layout: dense -> 7x7 map -> batch norm -> ReLU ->
 * transposed conv -> batch norm -> ReLU -> transposed conv -> sigmoid.
 *
 * @example
 * const G = convGenerator28({ noiseDim: 64, channels: [128, 64], batchNorm: true });
 */
export function convGenerator28(options: ConvGeneratorOptions): tf.Sequential {
  const where = "convGenerator28";
  const {
    noiseDim,
    numClasses = 0,
    channels = [32, 16],
    seed = 0,
    batchNorm = false,
  } = checkOptions(where, options, [
    "noiseDim",
    "numClasses",
    "channels",
    "seed",
    "batchNorm",
  ]);
  checkInteger(where, "noiseDim", noiseDim, { min: 1 });
  checkInteger(where, "numClasses", numClasses, { min: 0 });
  checkSizes(where, "channels", channels, 2);
  checkSize(
    where,
    "(noiseDim + numClasses) * 7 * 7 * channels[0]",
    (noiseDim + numClasses) * 49 * channels[0],
  );
  checkNumber(where, "seed", seed);
  checkBoolean(where, "batchNorm", batchNorm);
  const init = (i: number) =>
    tf.initializers.glorotUniform({ seed: seed * 1000 + 200 + i });
  if (batchNorm) return dcganGenerator(noiseDim + numClasses, channels, init);
  return tf.sequential({
    name: "generator",
    layers: [
      tf.layers.dense({
        inputShape: [noiseDim + numClasses],
        units: 7 * 7 * channels[0],
        activation: "relu",
        kernelInitializer: init(1),
        name: "generator_dense",
      }),
      tf.layers.reshape({
        targetShape: [7, 7, channels[0]],
        name: "generator_reshape",
      }),
      ...upsample7to28Layers({
        hiddenChannels: channels[1],
        outputActivation: "sigmoid",
        init,
        name: "generator",
      }),
    ],
  });
}

/** DCGAN's generator: every hidden map batch-normalised per channel before its ReLU (the norm's shift replaces the bias). */
function dcganGenerator(
  inputDim: number,
  channels: [number, number],
  init: (i: number) => ReturnType<typeof tf.initializers.glorotUniform>,
): tf.Sequential {
  const up = (filters: number, i: number, last: boolean) =>
    tf.layers.conv2dTranspose({
      filters,
      kernelSize: 4,
      strides: 2,
      padding: "same",
      useBias: last,
      activation: last ? "sigmoid" : "linear",
      kernelInitializer: init(i),
      name: `generator_up${i - 1}`,
    });
  const normRelu = (i: number) => [
    new BatchStatisticsNorm({ name: `generator_bn${i}` }),
    tf.layers.reLU({ name: `generator_act${i}` }),
  ];
  return tf.sequential({
    name: "generator",
    layers: [
      tf.layers.dense({
        inputShape: [inputDim],
        units: 7 * 7 * channels[0],
        useBias: false,
        kernelInitializer: init(1),
        name: "generator_dense",
      }),
      tf.layers.reshape({
        targetShape: [7, 7, channels[0]],
        name: "generator_reshape",
      }),
      ...normRelu(1),
      up(channels[1], 2, false),
      ...normRelu(2),
      up(1, 3, true),
    ],
  });
}

/** Options of `convDiscriminator28`. */
export interface ConvDiscriminatorOptions {
  /** Classes of a conditional GAN: the one-hot code enters as constant extra input channels (default 0). */
  numClasses?: number;
  /** Channels of the two stride-2 convolutions (default [16, 32]). */
  channels?: [number, number];
  /** Seed of the initial weights (default 0). */
  seed?: number;
}

/**
 * A small convolutional discriminator for 28x28 images: two 4x4 stride-2
 * convolutions with leaky ReLU (slope 0.2; 28 -> 14 -> 7), then one logit.
 * Input [n, 28, 28, 1 + numClasses], output [n, 1]. No batch norm: each
 * example's logit depends on that example alone, as the R1 penalty
 * (`r1Penalty`) assumes, and tfjs can differentiate it twice.
 *
 * @example
 * const D = convDiscriminator28({ channels: [64, 128] });
 */
export function convDiscriminator28(
  options: ConvDiscriminatorOptions = {},
): tf.Sequential {
  const where = "convDiscriminator28";
  const { numClasses = 0, channels = [16, 32], seed = 0 } = checkOptions(
    where,
    options,
    ["numClasses", "channels", "seed"],
  );
  checkInteger(where, "numClasses", numClasses, { min: 0 });
  checkSizes(where, "channels", channels, 2);
  checkNumber(where, "seed", seed);
  const init = (i: number) =>
    tf.initializers.glorotUniform({ seed: seed * 1000 + 300 + i });
  return tf.sequential({
    name: "discriminator",
    layers: [
      tf.layers.conv2d({
        inputShape: [28, 28, 1 + numClasses],
        filters: channels[0],
        kernelSize: 4,
        strides: 2,
        padding: "same",
        kernelInitializer: init(1),
        name: "discriminator_conv1",
      }),
      new TwiceDifferentiableLeakyReLU({ name: "discriminator_act1" }),
      tf.layers.conv2d({
        filters: channels[1],
        kernelSize: 4,
        strides: 2,
        padding: "same",
        kernelInitializer: init(2),
        name: "discriminator_conv2",
      }),
      new TwiceDifferentiableLeakyReLU({ name: "discriminator_act2" }),
      tf.layers.flatten({ name: "discriminator_flatten" }),
      tf.layers.dense({
        units: 1,
        kernelInitializer: init(3),
        name: "discriminator_logit",
      }),
    ],
  });
}

// ---------------------------------------------------------------------------
// What stabilises an image GAN: a penalty on D's slope, an average of G

/**
 * R1 = (gamma / 2) mean_i ||grad_x D(x_i)||^2 over real examples
 * (Mescheder et al. 2018): a D that is flat where the data are cannot grow
 * the cliffs that throw G back and forth. Examples must not interact in D
 * (no batch norm), so the gradient of the summed logits is each one's own.
 */
function r1(
  logitsOf: (x: tf.Tensor) => tf.Tensor,
  real: tf.Tensor,
  gamma: number,
): tf.Scalar {
  const slopes = tf.grad((x: tf.Tensor) => tf.sum(logitsOf(x)))(real);
  const perExample = tf.sum(tf.square(slopes.reshape([real.shape[0], -1])), 1);
  return tf.mul(gamma / 2, tf.mean(perExample)) as tf.Scalar;
}

/**
 * The R1 penalty (gamma / 2) mean_i ||grad_x D(x_i)||^2 of a discriminator
 * on a batch of real examples (Mescheder et al. 2018), as a scalar that D's
 * loss adds and that is differentiable with respect to D's weights.
 * `discriminator` is a network (real [n, ...] -> logits [n, 1]) or a function
 * from a batch to its logits (e.g. one that appends a class code). D must
 * treat each example on its own (no batch norm). `gamma` defaults to 1.
 * Returns a scalar tensor (the caller disposes it).
 *
 * @example
 * // A linear D(x) = w . x + b has the slope w everywhere: R1 = gamma/2 |w|^2.
 * r1Penalty(tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1 })] }), x);
 */
export function r1Penalty(
  discriminator: tf.LayersModel | ((x: tf.Tensor) => tf.Tensor),
  real: tf.Tensor,
  options: { gamma?: number } = {},
): tf.Scalar {
  const where = "r1Penalty";
  const { gamma = 1 } = checkOptions(where, options, ["gamma"]);
  checkNumber(where, "gamma", gamma, { min: 0 });
  if (
    !(discriminator instanceof tf.LayersModel) &&
    typeof discriminator !== "function"
  ) {
    throw new ArgumentError(
      where,
      "discriminator must be a tf.LayersModel or a function (x) => logits",
    );
  }
  checkTensor(where, "real", real, { minRank: 2, dtype: "float32" });
  if (real.shape[0] === 0) {
    throw new ArgumentError(where, "real must not be empty");
  }
  if (discriminator instanceof tf.LayersModel) {
    checkFitsModel(where, "real", real, discriminator);
  }
  const logitsOf = discriminator instanceof tf.LayersModel
    ? (x: tf.Tensor) => discriminator.apply(x) as tf.Tensor
    : discriminator;
  return tf.tidy(() => r1(logitsOf, real, gamma));
}

/**
 * The largest singular value of a layer's kernel (dense [in, out], conv
 * [h, w, in, out]: reshaped to [h * w * in, out]) by `iterations` steps of
 * power iteration from a seeded start (default 50 steps, seed 0): how much
 * the layer can stretch its input, the quantity spectral normalisation
 * (Miyato et al. 2018) divides by. The product over D's layers bounds D's
 * slope (its Lipschitz constant), which the R1 penalty keeps small where
 * the data are. Returns a number.
 *
 * @example
 * spectralNorm(tf.tensor2d([[3, 0], [0, 1]])); // 3
 */
export function spectralNorm(
  kernel: tf.Tensor,
  options: { iterations?: number; seed?: number } = {},
): number {
  const where = "spectralNorm";
  const { iterations = 50, seed = 0 } = checkOptions(where, options, [
    "iterations",
    "seed",
  ]);
  checkInteger(where, "iterations", iterations, { min: 1 });
  checkNumber(where, "seed", seed);
  checkTensor(where, "kernel", kernel, { minRank: 2, dtype: "float32" });
  if (kernel.size === 0) {
    throw new ArgumentError(where, "kernel must not be empty");
  }
  checkFinite(where, "kernel", kernel);
  return tf.tidy(() => {
    const w = kernel.reshape([
      -1,
      kernel.shape[kernel.rank - 1],
    ]) as tf.Tensor2D;
    let v = randomNormal([w.shape[1], 1], { seed }) as tf.Tensor2D;
    for (let i = 0; i < iterations; i++) {
      // v <- W^T W v / |W^T W v|: converges to the top right-singular vector.
      const next = tf.matMul(w, tf.matMul(w, v), true, false);
      v = tf.div(next, tf.add(tf.norm(next), 1e-30)) as tf.Tensor2D;
    }
    return tf.norm(tf.matMul(w, v)).dataSync()[0];
  });
}

/**
 * An exponential moving average of a network's weights (Polyak averaging,
 * as GANs use it for G, e.g. Karras et al. 2018): after every step
 * average <- decay * average + (1 - decay) * weight. The average smooths
 * away the last steps' oscillation of the game, so it usually gives better
 * samples than the current weights. It starts at the current weights.
 *
 * @example
 * const ema = new ExponentialMovingAverage(generator, { decay: 0.999 });
 * // ... after each optimizer step of the generator:
 * ema.update();
 * const samples = ema.withAverages(() => generator.predict(z) as tf.Tensor);
 */
export class ExponentialMovingAverage {
  /** The weight of the old average in each update. */
  readonly decay: number;
  readonly #variables: tf.Variable[];
  readonly #averages: tf.Variable[];
  #disposed = false;

  /**
   * Averages `source`'s trainable weights (a network), or the given
   * variables; `decay` in [0, 1) (default 0.999).
   */
  constructor(
    source: tf.LayersModel | tf.Variable[],
    options: { decay?: number } = {},
  ) {
    const where = "ExponentialMovingAverage";
    const { decay = 0.999 } = checkOptions(where, options, ["decay"]);
    checkNumber(where, "decay", decay, { min: 0, max: 1 });
    if (decay === 1) {
      throw new ArgumentError(where, "decay must be below 1 (1 never moves)");
    }
    let variables: tf.Variable[];
    if (source instanceof tf.LayersModel) {
      variables = trainableVariables(source);
    } else if (
      Array.isArray(source) && source.every((v) => v instanceof tf.Variable)
    ) {
      variables = [...source];
    } else {
      throw new ArgumentError(
        where,
        "source must be a tf.LayersModel or an array of tf.Variable",
      );
    }
    this.decay = decay;
    this.#variables = variables;
    this.#averages = variables.map((v) => tf.variable(v, false));
  }

  /** One step of the average: average <- decay * average + (1 - decay) * weight. */
  update(): void {
    this.#checkAlive("ExponentialMovingAverage.update");
    tf.tidy(() => {
      this.#averages.forEach((average, i) => {
        const weight = this.#variables[i];
        average.assign(
          tf.add(tf.mul(average, this.decay), tf.mul(weight, 1 - this.decay)),
        );
      });
    });
  }

  /**
   * Runs `fn` with the averages in the variables, then puts the current
   * weights back (also when `fn` throws); returns what `fn` returns.
   */
  withAverages<T>(fn: () => T): T {
    this.#checkAlive("ExponentialMovingAverage.withAverages");
    if (typeof fn !== "function") {
      throw new ArgumentError(
        "ExponentialMovingAverage.withAverages",
        "fn must be a function",
      );
    }
    const current = this.#variables.map((v) => tf.clone(v));
    this.#variables.forEach((v, i) => v.assign(this.#averages[i]));
    try {
      return fn();
    } finally {
      this.#variables.forEach((v, i) => v.assign(current[i]));
      tf.dispose(current);
    }
  }

  /** Copies of the averages, in the variables' order (the caller disposes them). */
  values(): tf.Tensor[] {
    this.#checkAlive("ExponentialMovingAverage.values");
    return this.#averages.map((a) => tf.clone(a));
  }

  #checkAlive(where: string): void {
    if (this.#disposed) {
      throw new ArgumentError(where, "the average has been disposed");
    }
  }

  /** Frees the averages (not the averaged network). */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    tf.dispose(this.#averages);
  }
}

// ---------------------------------------------------------------------------
// The game

/**
 * One batch of real data, as `batchSampler` gives it: examples [b, ...], or
 * `[examples, labels]` (int32 [b]) for a conditional GAN.
 */
export type GANBatch = tf.Tensor | tf.Tensor[];

/** Options of `GAN`. */
export interface GANOptions {
  /** G: [n, noiseDim + numClasses] -> n generated examples (any shape with the data's size). The GAN owns it. */
  generator: tf.LayersModel;
  /** D: examples (flat [n, size + numClasses] for an MLP, or images with one extra channel per class) -> [n, 1] logits. The GAN owns it. */
  discriminator: tf.LayersModel;
  /**
   * The real examples [N, ...], or `[examples, labels]` (int32 [N]) for a
   * conditional GAN. Checked once here (finite, fit the networks, labels in
   * range) and not kept: draw the batches with `batchSampler(data, ...)`.
   */
  data: tf.Tensor | tf.Tensor[];
  /** Number of classes of a conditional GAN (required with labels). */
  numClasses?: number;
  /** Size of the noise vector z ~ N(0, I). */
  noiseDim: number;
  /** Dropout rate on D's input, in [0, 0.95] (default 0): each D pathway must judge alone. */
  inputDropout?: number;
  /**
   * Weight gamma >= 0 of the R1 penalty (gamma / 2) E ||grad_x D(x)||^2 on
   * the real batch in D's objective (default 0: none). See `r1Penalty`.
   */
  r1?: number;
  /**
   * Lazy R1 (Karras et al. 2020): the penalty, weighted by `r1Every`, on
   * every `r1Every`-th D step only (default 1: every step). It costs about
   * as much as the rest of D's step, and D's slope changes slowly.
   */
  r1Every?: number;
  /**
   * Decay of an exponential moving average of G's weights, in [0, 1)
   * (default: no average). G's objective updates it after every step
   * (`afterStep`), and `sample` draws from the averaged G.
   */
  emaDecay?: number;
  /**
   * Seed of the noise and dropout masks of the training steps, a number or
   * an `Rng` (default: the shared stream of unseeded draws, see `rngOrStream`).
   */
  seed?: Seed;
}

/**
 * x with the one-hot class code appended: as extra features of a flat batch
 * [n, d], as constant extra channels of an image batch [n, h, w, c].
 */
function withClassCode(
  x: tf.Tensor,
  labels: tf.Tensor,
  numClasses: number,
): tf.Tensor {
  const code = tf.oneHot(labels, numClasses).toFloat(); // [n, C]
  if (x.rank === 2) return tf.concat([x, code], 1);
  // One constant plane per class, by broadcasting (tf.tile is slow on wasm).
  const spatial = x.shape.slice(1, -1);
  const planes = tf.mul(
    code.reshape([x.shape[0], ...spatial.map(() => 1), numClasses]),
    tf.ones([1, ...spatial, 1]),
  );
  return tf.concat([x, planes], x.rank - 1);
}

/**
 * A GAN: the generator G and the discriminator D of one game, with each
 * player's objective as a `Trainable` for the one `trainStep`
 * (lib/model.ts). A conditional GAN (labels in `data`) feeds the one-hot
 * class to both players. Noise and dropout masks come from the GAN's seeded
 * stream. The GAN owns its two networks: `dispose()` frees them.
 *
 * @example
 * const gan = new GAN({ generator, discriminator, data: ring.points, noiseDim: 2 });
 * const dObjective = gan.discriminatorObjective();
 * const gObjective = gan.generatorObjective("nonSaturating");
 * const dOptimizer = adam(1e-3, 0.5);
 * const gOptimizer = adam(1e-3, 0.5);
 * const sampler = batchSampler(ring.points, 128, { seed: 0 });
 * tf.tidy(() => trainStep(dObjective, dOptimizer, sampler.next())); // one D step
 * tf.tidy(() => trainStep(gObjective, gOptimizer, sampler.next())); // one G step
 */
export class GAN {
  /** G (owned by the GAN). */
  readonly generator: tf.LayersModel;
  /** D (owned by the GAN). */
  readonly discriminator: tf.LayersModel;
  /** Size of the noise vector z. */
  readonly noiseDim: number;
  /** Number of classes (0 for an unconditional GAN). */
  readonly numClasses: number;
  /** Dropout rate on D's input during training. */
  readonly inputDropout: number;
  /** Weight of the R1 penalty in D's objective (0: none). */
  readonly r1: number;
  /** The R1 penalty is applied on every `r1Every`-th D step (weighted by it). */
  readonly r1Every: number;
  /** The moving average of G's weights (null without `emaDecay`). */
  readonly generatorAverage: ExponentialMovingAverage | null;
  /** Shape of one example (the data's shape without the batch axis). */
  readonly dataShape: number[];
  readonly #rng: Rng;
  readonly #sampleRng: Rng;
  readonly #flatD: boolean;
  readonly #normalisesBatches: boolean;
  #disposed = false;

  /** Creates the game; see `GANOptions`. Checks everything before it keeps anything. */
  constructor(options: GANOptions) {
    const where = "GAN";
    const o = checkOptions(where, options, [
      "generator",
      "discriminator",
      "data",
      "numClasses",
      "noiseDim",
      "inputDropout",
      "r1",
      "r1Every",
      "emaDecay",
      "seed",
    ]);
    if (!(o.generator instanceof tf.LayersModel)) {
      throw new ArgumentError(where, "generator must be a tf.LayersModel");
    }
    if (!(o.discriminator instanceof tf.LayersModel)) {
      throw new ArgumentError(where, "discriminator must be a tf.LayersModel");
    }
    const noiseDim = checkInteger(where, "noiseDim", o.noiseDim, { min: 1 });
    const inputDropout = checkNumber(
      where,
      "inputDropout",
      o.inputDropout ?? 0,
      { min: 0, max: 0.95 },
    );
    const r1Weight = checkNumber(where, "r1", o.r1 ?? 0, { min: 0 });
    const r1Every = checkInteger(where, "r1Every", o.r1Every ?? 1, { min: 1 });
    if (o.emaDecay !== undefined) {
      checkNumber(where, "emaDecay", o.emaDecay, { min: 0, max: 1 });
      if (o.emaDecay === 1) {
        throw new ArgumentError(where, "emaDecay must be below 1");
      }
    }
    const rng = rngOrStream(o.seed, where);
    const { examples, numClasses } = checkData(where, o.data, o.numClasses);
    const dataShape = examples.shape.slice(1);
    checkNetworks(where, o.generator, o.discriminator, {
      noiseDim,
      numClasses,
      dataShape,
    });
    this.generator = o.generator;
    this.discriminator = o.discriminator;
    this.noiseDim = noiseDim;
    this.numClasses = numClasses;
    this.inputDropout = inputDropout;
    this.r1 = r1Weight;
    this.r1Every = r1Every;
    this.generatorAverage = o.emaDecay === undefined
      ? null
      : new ExponentialMovingAverage(o.generator, { decay: o.emaDecay });
    this.dataShape = dataShape;
    this.#flatD = o.discriminator.inputs[0].shape.length === 2;
    this.#normalisesBatches = o.generator.layers.some((layer) =>
      ["BatchNormalization", "BatchStatisticsNorm"].includes(
        layer.getClassName(),
      )
    );
    this.#rng = rng;
    this.#sampleRng = rng.fork();
  }

  /**
   * D's objective, for `trainStep(dObjective, dOptimizer, realBatch)`: D's
   * loss -f_acc on the real batch against G's samples. Its metrics are the
   * loss and the mean D(x) (`dReal`) and D(G(z)) (`dFake`).
   */
  discriminatorObjective(): Trainable<GANBatch> {
    this.#checkAlive("GAN.discriminatorObjective");
    let step = 0;
    return {
      // G is frozen: only D's variables are listed, G's samples are constants.
      trainableVariables: () => trainableVariables(this.discriminator),
      loss: (batch: GANBatch): LossTerms => {
        const [real, labels] = this.#unpack(batch);
        // Fakes of the real batch's classes: D cannot tell them by class.
        const z = this.#noise(real.shape[0]);
        const fake = stopGradient(this.#generate(z, labels));
        // One pass of D over both halves: half the kernel launches.
        const both = labels ? tf.concat([labels, labels]) : null;
        const logits = this.#discriminate(tf.concat([real, fake]), both);
        const [realLogits, fakeLogits] = tf.split(logits, 2);
        const terms: Record<string, tf.Scalar> = {
          dReal: tf.mean(tf.sigmoid(realLogits)) as tf.Scalar,
          dFake: tf.mean(tf.sigmoid(fakeLogits)) as tf.Scalar,
        };
        let total = dLoss(realLogits, fakeLogits);
        if (this.r1 > 0 && step++ % this.r1Every === 0) {
          // D's slope on the real examples, differentiated again for D's step.
          const gamma = this.r1 * this.r1Every;
          terms.r1 = r1((x) => this.#discriminate(x, labels), real, gamma);
          total = tf.add(total, terms.r1);
        }
        return { total, terms };
      },
    };
  }

  /**
   * G's objective, for `trainStep(gObjective, gOptimizer, realBatch)`: the
   * chosen generator loss on D's logits of fresh fakes. The real batch only
   * sets the batch size and, for a conditional GAN, the classes asked for.
   */
  generatorObjective(
    loss: GeneratorLossName = "nonSaturating",
  ): Trainable<GANBatch> {
    this.#checkAlive("GAN.generatorObjective");
    checkChoice("GAN.generatorObjective", "loss", loss, GENERATOR_LOSSES);
    const generatorLoss = loss === "saturating" ? satLoss : nonSatLoss;
    return {
      // D is frozen: the loss flows through D, but only G's variables are listed.
      trainableVariables: () => trainableVariables(this.generator),
      loss: (batch: GANBatch): LossTerms => {
        const [real, labels] = this.#unpack(batch);
        const fake = this.#generate(this.#noise(real.shape[0]), labels);
        return { total: generatorLoss(this.#discriminate(fake, labels)) };
      },
      // After G's step, its moving average follows (when the GAN keeps one).
      afterStep: () => this.generatorAverage?.update(),
    };
  }

  /** G(z) in the data's shape; a conditional G also gets the class code. */
  #generate(z: tf.Tensor, labels: tf.Tensor | null): tf.Tensor {
    const input = labels ? withClassCode(z, labels, this.numClasses) : z;
    // training: batch norm normalises with the batch's own statistics.
    const out = this.generator.apply(input, { training: true }) as tf.Tensor;
    return out.reshape([z.shape[0], ...this.dataShape]);
  }

  /** D's logits [n] on data-shaped x; a conditional D also gets the class code. */
  #discriminate(x: tf.Tensor, labels: tf.Tensor | null): tf.Tensor {
    const n = x.shape[0];
    let input = this.inputDropout > 0 ? this.#dropout(x) : x;
    if (this.#flatD) input = input.reshape([n, -1]);
    if (labels) input = withClassCode(input, labels, this.numClasses);
    const logits = this.discriminator.apply(input, { training: true });
    return (logits as tf.Tensor).reshape([n]);
  }

  /** Inverted dropout with a mask from the GAN's seeded stream (not tfjs's generator). */
  #dropout(x: tf.Tensor): tf.Tensor {
    const rate = this.inputDropout;
    const u = randomUniform(x.shape, { seed: this.#rng });
    const keep = tf.cast(tf.greaterEqual(u, rate), "float32");
    return tf.mul(x, tf.mul(keep, 1 / (1 - rate)));
  }

  #noise(n: number): tf.Tensor {
    return randomNormal([n, this.noiseDim], { seed: this.#rng });
  }

  /**
   * A training batch split into examples and labels, checked: shapes, and
   * the values (one read-back: a NaN batch would turn D's or G's weights
   * into NaN for good; a label outside the classes would train on a zero
   * class code).
   */
  #unpack(batch: GANBatch): [tf.Tensor, tf.Tensor | null] {
    const where = "trainStep (GAN objective)";
    this.#checkAlive(where);
    const parts = Array.isArray(batch) ? batch : [batch];
    const want = this.numClasses > 0 ? 2 : 1;
    if (parts.length !== want) {
      throw new ArgumentError(
        where,
        want === 2
          ? "a conditional GAN trains on batches [examples, labels] (batchSampler([images, labels], ...))"
          : "an unconditional GAN trains on a batch of examples (batchSampler(data, ...)), not an array",
      );
    }
    const [real, labels] = parts;
    checkTensor(where, "batch", real, {
      shape: [null, ...this.dataShape],
      dtype: "float32",
    });
    if (real.shape[0] === 0) {
      throw new ArgumentError(where, "the batch must not be empty");
    }
    checkFinite(where, "batch", real);
    if (labels !== undefined) {
      checkTensor(where, "batch labels", labels, {
        shape: [real.shape[0]],
        dtype: "int32",
      });
      const bad = labels.dataSync().findIndex((c) =>
        c < 0 || c >= this.numClasses
      );
      if (bad >= 0) {
        throw new ArgumentError(
          where,
          `batch labels must be classes 0..${
            this.numClasses - 1
          }, but label ${bad} is ${labels.dataSync()[bad]}`,
        );
      }
    }
    return [real, labels ?? null];
  }

  /**
   * `n` new samples G(z), in the data's shape (the caller disposes them).
   * With a numeric `seed` the same z every call (e.g. to watch the same
   * noise vectors improve); without one, the next draws of the GAN's own
   * sampling stream. A conditional GAN makes `labels` (one class for all,
   * or one per sample; default: random classes). `average` (default: true
   * when the GAN keeps a moving average of G) picks the averaged weights.
   * `truncation` psi in (0, 1] draws z ~ N(0, psi^2 I) instead of N(0, I)
   * (the truncation trick: samples nearer the typical z, more realistic and
   * less varied; default 1).
   */
  sample(
    n: number,
    options: {
      seed?: Seed;
      labels?: number | number[];
      average?: boolean;
      truncation?: number;
    } = {},
  ): tf.Tensor {
    const where = "GAN.sample";
    this.#checkAlive(where);
    checkInteger(where, "n", n, { min: 1 });
    checkSize(
      where,
      "n * the data size",
      n * this.dataShape.reduce((a, b) => a * b, 1),
    );
    const { seed, labels, average, truncation = 1 } = checkOptions(
      where,
      options,
      ["seed", "labels", "average", "truncation"],
    );
    checkNumber(where, "truncation", truncation, {
      min: 0,
      minExclusive: true,
      max: 1,
    });
    if (seed !== undefined && !(seed instanceof Rng)) {
      checkNumber(where, "seed", seed);
    }
    const useAverage = this.#checkAverage(where, average);
    const rng = seed === undefined ? this.#sampleRng : rngFrom(seed);
    const classes = this.#sampleLabels(where, n, labels, seed, rng);
    const z = randomNormal([n, this.noiseDim], { seed: rng, std: truncation });
    try {
      return this.#generateForSampling(z, classes, useAverage);
    } finally {
      z.dispose();
    }
  }

  /**
   * G(z) for given noise vectors z [n, noiseDim] (e.g. points on a line
   * between two z, to watch G interpolate), in the data's shape (the caller
   * disposes it; z stays the caller's). `labels` and `average` as in
   * `sample` (a conditional GAN needs `labels`).
   */
  generateFrom(
    z: tf.Tensor,
    options: { labels?: number | number[]; average?: boolean } = {},
  ): tf.Tensor {
    const where = "GAN.generateFrom";
    this.#checkAlive(where);
    const { labels, average } = checkOptions(where, options, [
      "labels",
      "average",
    ]);
    checkTensor(where, "z", z, {
      shape: [null, this.noiseDim],
      dtype: "float32",
    });
    if (z.shape[0] === 0) throw new ArgumentError(where, "z must not be empty");
    checkFinite(where, "z", z);
    if (this.numClasses > 0 && labels === undefined) {
      throw new ArgumentError(
        where,
        "a conditional GAN needs labels: one class for all rows, or one per row",
      );
    }
    const useAverage = this.#checkAverage(where, average);
    const classes = this.#sampleLabels(
      where,
      z.shape[0],
      labels,
      undefined,
      this.#sampleRng,
    );
    return this.#generateForSampling(z, classes, useAverage);
  }

  #checkAverage(where: string, average: unknown): boolean {
    if (average === undefined) return this.generatorAverage !== null;
    checkBoolean(where, "average", average);
    if (average && this.generatorAverage === null) {
      throw new ArgumentError(
        where,
        "average: true needs a GAN made with emaDecay (a moving average of G)",
      );
    }
    return average as boolean;
  }

  /**
   * G(z) outside training. A G with batch norm normalises with the batch's
   * own statistics, so a small or unusual batch (ten points on one line, or
   * noise scaled by a truncation factor) would be normalised unlike the
   * training batches, and its oddity undone. So the rows are decoded in
   * chunks of at most 64, each together with a fixed reference batch of 256
   * random noise vectors whose outputs are dropped (a virtual batch,
   * Salimans et al. 2016).
   */
  #generateForSampling(
    z: tf.Tensor,
    classes: Int32Array | null,
    average: boolean,
  ): tf.Tensor {
    const n = z.shape[0];
    const chunk = this.#normalisesBatches ? 64 : n;
    const run = () =>
      tf.tidy(() => {
        const reference = this.#normalisesBatches
          ? this.#referenceNoise(256)
          : null;
        const parts: tf.Tensor[] = [];
        for (let start = 0; start < n; start += chunk) {
          const size = Math.min(chunk, n - start);
          let input = z.slice(start, size);
          let labels: tf.Tensor | null = classes &&
            tf.tensor1d(classes.slice(start, start + size), "int32");
          if (reference) {
            input = tf.concat([input, reference.z]);
            if (labels) labels = tf.concat([labels, reference.labels!]);
          }
          parts.push(this.#generate(input, labels).slice(0, size));
        }
        return parts.length === 1 ? parts[0] : tf.concat(parts);
      });
    return average ? this.generatorAverage!.withAverages(run) : run();
  }

  /** The same `count` noise vectors (and classes) every call. */
  #referenceNoise(count: number): { z: tf.Tensor; labels: tf.Tensor | null } {
    const rng = rngFrom(20160610);
    const z = randomNormal([count, this.noiseDim], { seed: rng });
    const labels = this.numClasses > 0
      ? tf.tensor1d(
        Int32Array.from({ length: count }, (_, i) => i % this.numClasses),
        "int32",
      )
      : null;
    return { z, labels };
  }

  #sampleLabels(
    where: string,
    n: number,
    labels: number | number[] | undefined,
    seed: Seed | undefined,
    rng: Rng,
  ): Int32Array | null {
    if (this.numClasses === 0) {
      if (labels !== undefined) {
        throw new ArgumentError(
          where,
          "labels were given, but this GAN is unconditional",
        );
      }
      return null;
    }
    if (labels === undefined) {
      // A stream of its own, so the classes do not shift the noise.
      const own = typeof seed === "number" ? rngFrom(seed + 7919) : rng.fork();
      return Int32Array.from({ length: n }, () => own.int(this.numClasses));
    }
    const list = typeof labels === "number" ? Array(n).fill(labels) : labels;
    if (!Array.isArray(list) || list.length !== n) {
      throw new ArgumentError(
        where,
        `labels must be one class or an array of ${n} classes, got ${
          String(labels)
        }`,
      );
    }
    list.forEach((y, i) =>
      checkInteger(where, `labels[${i}]`, y, {
        min: 0,
        max: this.numClasses - 1,
      })
    );
    return Int32Array.from(list);
  }

  #checkAlive(where: string): void {
    if (this.#disposed) {
      throw new ArgumentError(where, "the GAN has been disposed");
    }
  }

  /** Frees G and D. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.generator.dispose();
    this.discriminator.dispose();
    this.generatorAverage?.dispose();
  }
}

/** The GAN's data checked once: finite examples, labels in range. */
function checkData(
  where: string,
  data: unknown,
  numClassesOption: unknown,
): { examples: tf.Tensor; numClasses: number } {
  if (Array.isArray(data) && data.length !== 2) {
    throw new ArgumentError(
      where,
      `data must be the examples, or [examples, labels] for a conditional GAN; got an array of length ${data.length}`,
    );
  }
  const [examples, labels] = Array.isArray(data) ? data : [data];
  const name = Array.isArray(data) ? "data[0]" : "data";
  checkTensor(where, name, examples, { minRank: 2, dtype: "float32" });
  const n = examples.shape[0];
  if (n === 0) throw new ArgumentError(where, `${name} has no rows`);
  // Once, up front: a NaN row would otherwise poison training whenever it is
  // drawn. The sum is finite exactly when every value is (barring overflow).
  const sum = tf.tidy(() => tf.sum(examples).dataSync()[0]);
  if (!Number.isFinite(sum)) checkFinite(where, name, examples);
  if (labels === undefined) {
    if (numClassesOption !== undefined && numClassesOption !== 0) {
      throw new ArgumentError(
        where,
        "numClasses was given without labels: pass data: [examples, labels] (int32 [N]) for a conditional GAN",
      );
    }
    return { examples, numClasses: 0 };
  }
  checkTensor(where, "data[1] (labels)", labels, {
    shape: [n],
    dtype: "int32",
  });
  const numClasses = checkInteger(where, "numClasses", numClassesOption, {
    min: 2,
  });
  const ys = labels.dataSync() as Int32Array;
  const bad = ys.findIndex((y) => y < 0 || y >= numClasses);
  if (bad >= 0) {
    throw new ArgumentError(
      where,
      `labels must lie in [0, ${numClasses - 1}], but labels[${bad}] is ${
        ys[bad]
      }`,
    );
  }
  return { examples, numClasses };
}

/** The networks must fit the data: checked with their declared shapes now, rather than inside tfjs on the first step. */
function checkNetworks(
  where: string,
  generator: tf.LayersModel,
  discriminator: tf.LayersModel,
  { noiseDim, numClasses, dataShape }: {
    noiseDim: number;
    numClasses: number;
    dataShape: number[];
  },
): void {
  const show = (s: (number | null)[]) => `[${s.map((d) => d ?? "n")}]`;
  const dataSize = tf.util.sizeFromShape(dataShape);
  const gIn = generator.inputs[0].shape;
  if (gIn.length !== 2 || gIn[1] !== noiseDim + numClasses) {
    throw new ArgumentError(
      where,
      `generator must take [n, noiseDim + numClasses] = [n, ${
        noiseDim + numClasses
      }] inputs, its input shape is ${show(gIn)}`,
    );
  }
  const gOut = generator.outputs[0].shape.slice(1) as number[];
  if (tf.util.sizeFromShape(gOut) !== dataSize) {
    throw new ArgumentError(
      where,
      `generator outputs [${gOut}] per sample, which does not match one data example of shape [${dataShape}]`,
    );
  }
  const dIn = discriminator.inputs[0].shape;
  if (dIn.length === 2) {
    if (dIn[1] !== dataSize + numClasses) {
      throw new ArgumentError(
        where,
        `an MLP discriminator must take [n, dataSize + numClasses] = [n, ${
          dataSize + numClasses
        }] inputs, its input shape is ${show(dIn)}`,
      );
    }
  } else {
    const want = [
      ...dataShape.slice(0, -1),
      dataShape.at(-1)! + numClasses,
    ];
    if (
      dIn.length !== dataShape.length + 1 ||
      want.some((s, i) => dIn[i + 1] !== s)
    ) {
      throw new ArgumentError(
        where,
        `a convolutional discriminator must take [n, ${want}] inputs (data channels + one per class), its input shape is ${
          show(dIn)
        }`,
      );
    }
  }
  const dOut = discriminator.outputs[0].shape;
  if (dOut.length !== 2 || dOut[1] !== 1) {
    throw new ArgumentError(
      where,
      `discriminator must output one logit per example ([n, 1]), its output shape is ${
        show(dOut)
      }`,
    );
  }
}

// ---------------------------------------------------------------------------
// Evaluation on the ring of Gaussians

/** What `ringQuality` measures. */
export interface RingQuality {
  /** Modes holding at least `minShare` of the samples as high-quality samples. */
  modesCovered: number;
  /** Share of samples within `sigmas` standard deviations of their nearest mode. */
  highQualityShare: number;
  /** High-quality samples per mode (in `ringCenters` order). */
  counts: number[];
}

/**
 * Mode coverage of generated 2D points on the ring of Gaussians (the usual
 * GAN benchmark): a sample is high quality when it lies within
 * `sigmas * std` of the nearest mode centre; a mode counts as covered when
 * it holds at least `minShare` of all samples as high-quality samples (by
 * default 0.02, a sixth of the fair share 1/8). Returns plain numbers.
 */
export function ringQuality(
  samples: tf.Tensor2D | number[][],
  options: {
    modes?: number;
    radius?: number;
    std?: number;
    sigmas?: number;
    minShare?: number;
  } = {},
): RingQuality {
  const where = "ringQuality";
  const { modes = 8, radius = 2, std = 0.02, sigmas = 3, minShare = 0.02 } =
    checkOptions(where, options, [
      "modes",
      "radius",
      "std",
      "sigmas",
      "minShare",
    ]);
  checkInteger(where, "modes", modes, { min: 1 });
  checkNumber(where, "radius", radius, { min: 0, minExclusive: true });
  checkNumber(where, "std", std, { min: 0, minExclusive: true });
  checkNumber(where, "sigmas", sigmas, { min: 0, minExclusive: true });
  checkNumber(where, "minShare", minShare, { min: 0, max: 1 });
  let xy: Float32Array | number[];
  let n: number;
  if (samples instanceof tf.Tensor) {
    checkTensor(where, "samples", samples, { shape: [null, 2] });
    checkFinite(where, "samples", samples);
    xy = samples.dataSync() as Float32Array;
    n = samples.shape[0];
  } else if (Array.isArray(samples)) {
    samples.forEach((p, i) => {
      if (!Array.isArray(p) || p.length !== 2 || !p.every(Number.isFinite)) {
        throw new ArgumentError(
          where,
          `samples[${i}] must be a finite [x, y] pair`,
        );
      }
    });
    xy = samples.flat();
    n = samples.length;
  } else {
    throw new ArgumentError(
      where,
      "samples must be a [n, 2] tensor or number[][]",
    );
  }
  if (n === 0) throw new ArgumentError(where, "samples must not be empty");
  const centers = Array.from({ length: modes }, (_, k) => {
    const a = (2 * Math.PI * k) / modes;
    return [radius * Math.cos(a), radius * Math.sin(a)];
  });
  const counts = new Array(modes).fill(0);
  const limit2 = (sigmas * std) ** 2;
  let good = 0;
  for (let i = 0; i < n; i++) {
    let best = Infinity;
    let bestK = 0;
    for (let k = 0; k < modes; k++) {
      const dx = xy[2 * i] - centers[k][0];
      const dy = xy[2 * i + 1] - centers[k][1];
      const d2 = dx * dx + dy * dy;
      if (d2 < best) {
        best = d2;
        bestK = k;
      }
    }
    if (best <= limit2) {
      good++;
      counts[bestK]++;
    }
  }
  const modesCovered = counts.filter((c) => c > 0 && c >= minShare * n).length;
  return { modesCovered, highQualityShare: good / n, counts };
}
