/**
 * Generative adversarial networks: the two-player game of a generator G
 * (noise -> data) and a discriminator D (data -> "is it real?").
 *
 * Everything here works with D's *logits* v (D(x) = sigmoid(v)) so that the
 * logs of the objective are computed as log-sigmoids, which stay finite for
 * any logit; taking the log of a sigmoid output would give -Infinity as soon
 * as the sigmoid rounds to 0 or 1 in float32.
 *
 * The trainer alternates k discriminator steps (G frozen) with l generator
 * steps (D frozen), as in the lecture; a step function returns plain numbers,
 * so a notebook can wrap it in `trainLoop` for live progress.
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
import { randomNormal, rngFrom, type Seed } from "./random.ts";
import type { Rng } from "./random.ts";
import { mlp, upsample7to28Layers } from "./nn.ts";

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

// Unchecked versions: the trainer calls these on every step, where reading
// the values back for validation would only slow training down.
function dLoss(real: tf.Tensor, fake: tf.Tensor): tf.Scalar {
  // log(1 - sigmoid(v)) = logSigmoid(-v): no cancellation for large v.
  return tf.neg(
    tf.add(tf.mean(logSigmoid(real)), tf.mean(logSigmoid(tf.neg(fake)))),
  ) as tf.Scalar;
}

function satLoss(fake: tf.Tensor): tf.Scalar {
  return tf.mean(logSigmoid(tf.neg(fake))) as tf.Scalar;
}

function nonSatLoss(fake: tf.Tensor): tf.Scalar {
  return tf.neg(tf.mean(logSigmoid(fake))) as tf.Scalar;
}

/**
 * The discriminator's loss -f_acc = -(mean log D(x) + mean log(1 - D(G(z))))
 * from D's logits on a real and a fake batch ([n] or [n, 1] each). This is
 * binary cross-entropy with label 1 for real and 0 for fake; D minimises it.
 * Returns a scalar tensor (the caller disposes it).
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

/** The generator losses the trainer knows. */
export const GENERATOR_LOSSES = ["nonSaturating", "saturating"] as const;
/** A generator-loss name: "nonSaturating" (-log D) or "saturating" (log(1 - D)). */
export type GeneratorLossName = typeof GENERATOR_LOSSES[number];

/**
 * The derivative of each generator loss with respect to D's logit v, for a
 * single fake sample, computed by autodiff at each given logit: saturating
 * d/dv log(1 - sigmoid(v)) = -sigmoid(v), non-saturating
 * d/dv -log sigmoid(v) = -(1 - sigmoid(v)). Returns plain arrays of
 * magnitudes |d loss / d v| (nothing to dispose).
 */
export function generatorLossGradients(
  logits: number[],
): { saturating: number[]; nonSaturating: number[] } {
  const where = "generatorLossGradients";
  if (!Array.isArray(logits) || logits.length === 0) {
    throw new ArgumentError(
      where,
      `logits must be a non-empty number[], got ${String(logits)}`,
    );
  }
  logits.forEach((v, i) => checkNumber(where, `logits[${i}]`, v));
  return tf.tidy(() => {
    const v = tf.tensor1d(logits);
    // Sum instead of mean so each entry is the per-sample derivative.
    const gs = tf.grad((x: tf.Tensor) => tf.sum(logSigmoid(tf.neg(x))))(v);
    const gn = tf.grad((x: tf.Tensor) => tf.neg(tf.sum(logSigmoid(x))))(v);
    return {
      saturating: Array.from(tf.abs(gs).dataSync()),
      nonSaturating: Array.from(tf.abs(gn).dataSync()),
    };
  });
}

// ---------------------------------------------------------------------------
// Networks

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
 * batch-normalised) -> [outputDim].
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
  } = options ?? ({} as MLPGeneratorOptions);
  checkInteger(where, "noiseDim", noiseDim, { min: 1 });
  checkInteger(where, "outputDim", outputDim, { min: 1 });
  checkInteger(where, "numClasses", numClasses, { min: 0 });
  checkChoice(where, "outputActivation", outputActivation, [
    "linear",
    "sigmoid",
    "tanh",
  ]);
  if (!batchNorm) {
    return mlp([noiseDim + numClasses, ...hidden, outputDim], {
      activation: "relu",
      outputActivation,
      seed,
      name: "generator",
    });
  }
  hidden.forEach((h, i) => checkInteger(where, `hidden[${i}]`, h, { min: 1 }));
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
  const { inputDim, numClasses = 0, hidden = [128, 128], seed = 0 } = options ??
    ({} as MLPDiscriminatorOptions);
  checkInteger(where, "inputDim", inputDim, { min: 1 });
  checkInteger(where, "numClasses", numClasses, { min: 0 });
  return mlp([inputDim + numClasses, ...hidden, 1], {
    activation: "leakyRelu",
    outputActivation: "linear",
    seed,
    name: "discriminator",
  });
}

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
}

/**
 * A small convolutional generator for 28x28 images in [0, 1]: a dense layer
 * to a 7x7 map, then two 4x4 stride-2 transposed convolutions (7 -> 14 ->
 * 28), sigmoid output. Input [n, noiseDim + numClasses], output [n, 28, 28, 1].
 */
export function convGenerator28(options: ConvGeneratorOptions): tf.Sequential {
  const where = "convGenerator28";
  const { noiseDim, numClasses = 0, channels = [32, 16], seed = 0 } = options ??
    ({} as ConvGeneratorOptions);
  checkInteger(where, "noiseDim", noiseDim, { min: 1 });
  checkInteger(where, "numClasses", numClasses, { min: 0 });
  channels.forEach((c, i) =>
    checkInteger(where, `channels[${i}]`, c, { min: 1 })
  );
  const init = (i: number) =>
    tf.initializers.glorotUniform({ seed: seed * 1000 + 200 + i });
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
 * convolutions with leaky ReLU (28 -> 14 -> 7), then one logit. Input
 * [n, 28, 28, 1 + numClasses], output [n, 1].
 */
export function convDiscriminator28(
  options: ConvDiscriminatorOptions = {},
): tf.Sequential {
  const where = "convDiscriminator28";
  const { numClasses = 0, channels = [16, 32], seed = 0 } = options;
  checkInteger(where, "numClasses", numClasses, { min: 0 });
  channels.forEach((c, i) =>
    checkInteger(where, `channels[${i}]`, c, { min: 1 })
  );
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
      tf.layers.leakyReLU({ alpha: 0.2, name: "discriminator_act1" }),
      tf.layers.conv2d({
        filters: channels[1],
        kernelSize: 4,
        strides: 2,
        padding: "same",
        kernelInitializer: init(2),
        name: "discriminator_conv2",
      }),
      tf.layers.leakyReLU({ alpha: 0.2, name: "discriminator_act2" }),
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
// Trainer

/** Options of `GANTrainer`. */
export interface GANTrainerOptions {
  /** G: [n, noiseDim + numClasses] -> data (any shape with n * dataSize values). */
  generator: tf.LayersModel;
  /** D: data (flat [n, dataSize + numClasses] for an MLP, or images with the classes as extra channels) -> [n, 1] logits. */
  discriminator: tf.LayersModel;
  /** The real examples [N, ...]; the trainer samples batches from it (the caller keeps ownership). */
  data: tf.Tensor;
  /** int32 [N] class labels: turns on the conditional GAN (one-hot fed to G and D). */
  labels?: tf.Tensor1D;
  /** Number of classes (required with `labels`). */
  numClasses?: number;
  /** Size of the noise vector z (standard normal). */
  noiseDim: number;
  /** Generator loss (default "nonSaturating"). */
  generatorLoss?: GeneratorLossName;
  /** k: discriminator steps per round (default 1). */
  dSteps?: number;
  /** l: generator steps per round (default 1). */
  gSteps?: number;
  /** Batch size (default 128). */
  batchSize?: number;
  /** Adam learning rate of D and G (default 2e-4), or one each. */
  learningRate?: number | { d: number; g: number };
  /** Adam beta1 (default 0.5: a short momentum suits the moving target of a game). */
  beta1?: number;
  /**
   * "adam" (default) or plain "sgd". Adam rescales each gradient by its
   * running size, which hides how small a gradient is; SGD shows it.
   */
  optimizer?: "adam" | "sgd";
  /** Dropout rate on D's input, in [0, 1) (default 0): each D pathway must judge alone. */
  inputDropout?: number;
  /** Number of fixed noise vectors for progress grids (default 64). */
  fixedNoiseCount?: number;
  /** Seed of batches, noise and dropout masks (default 0). */
  seed?: number;
}

/** What one `step()` (k D-steps then l G-steps) reports; plain numbers. */
export interface GANStepMetrics extends Record<string, number> {
  /** D's loss -f_acc on its last step. */
  dLoss: number;
  /** G's loss (the chosen one) on its last step. */
  gLoss: number;
  /** Mean D(x) on real data (D's last step). */
  dReal: number;
  /** Mean D(G(z)) on fakes (D's last step). */
  dFake: number;
  /** Norm of the gradient of G's loss with respect to G's parameters (last G step). */
  gGradNorm: number;
}

/** Per-step history kept by the trainer (one entry per `step()`). */
export interface GANHistory {
  /** Round index. */
  step: number[];
  /** D's loss. */
  dLoss: number[];
  /** G's loss. */
  gLoss: number[];
  /** Mean D(x). */
  dReal: number[];
  /** Mean D(G(z)). */
  dFake: number[];
  /** Norm of G's gradient. */
  gGradNorm: number[];
}

function variablesOf(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

/**
 * Trains a GAN with the lecture's alternation: k discriminator steps with G
 * frozen (only D's variables get gradients), then l generator steps with D
 * frozen. Owns its optimizers, fixed noise and history; the caller owns the
 * models and the data (`dispose()` frees what the trainer owns).
 *
 * @example
 * const gan = new GANTrainer({ generator, discriminator, data, noiseDim: 2 });
 * const history = await trainLoop(() => gan.step(), { steps: 2000, label: "GAN" });
 */
export class GANTrainer {
  /** The generator (owned by the caller). */
  readonly generator: tf.LayersModel;
  /** The discriminator (owned by the caller). */
  readonly discriminator: tf.LayersModel;
  /** Noise size. */
  readonly noiseDim: number;
  /** Number of classes (0 for an unconditional GAN). */
  readonly numClasses: number;
  /** Generator loss in use. */
  readonly generatorLoss: GeneratorLossName;
  /** k. */
  readonly dSteps: number;
  /** l. */
  readonly gSteps: number;
  /** Batch size. */
  readonly batchSize: number;
  /** Dropout rate on D's input. */
  readonly inputDropout: number;
  /** Shape of one data example (data.shape without the batch axis). */
  readonly dataShape: number[];
  /** The fixed noise batch [m, noiseDim] used by `sampleFixed()`. */
  readonly fixedNoise: tf.Tensor2D;
  /** Labels of the fixed batch (i % numClasses), or null when unconditional. */
  readonly fixedLabels: Int32Array | null;
  /** Metrics of every `step()`. */
  readonly history: GANHistory = {
    step: [],
    dLoss: [],
    gLoss: [],
    dReal: [],
    dFake: [],
    gGradNorm: [],
  };
  readonly #data: tf.Tensor;
  readonly #labels: Int32Array | null;
  readonly #dOpt: tf.Optimizer;
  readonly #gOpt: tf.Optimizer;
  readonly #rng: Rng;
  readonly #dVars: tf.Variable[];
  readonly #gVars: tf.Variable[];
  readonly #dInputRank: number;
  #rounds = 0;
  #disposed = false;

  /** Creates the trainer; see `GANTrainerOptions`. */
  constructor(options: GANTrainerOptions) {
    const where = "GANTrainer";
    if (options === null || typeof options !== "object") {
      throw new ArgumentError(where, "options must be an object");
    }
    const o = options;
    if (!(o.generator instanceof tf.LayersModel)) {
      throw new ArgumentError(where, "generator must be a tf.LayersModel");
    }
    if (!(o.discriminator instanceof tf.LayersModel)) {
      throw new ArgumentError(where, "discriminator must be a tf.LayersModel");
    }
    const data = checkTensor(where, "data", o.data, {
      minRank: 2,
      dtype: "float32",
    });
    this.noiseDim = checkInteger(where, "noiseDim", o.noiseDim, { min: 1 });
    this.generatorLoss = checkChoice(
      where,
      "generatorLoss",
      o.generatorLoss ?? "nonSaturating",
      GENERATOR_LOSSES,
    );
    this.dSteps = checkInteger(where, "dSteps", o.dSteps ?? 1, { min: 1 });
    this.gSteps = checkInteger(where, "gSteps", o.gSteps ?? 1, { min: 1 });
    this.batchSize = checkInteger(where, "batchSize", o.batchSize ?? 128, {
      min: 1,
    });
    this.inputDropout = checkNumber(
      where,
      "inputDropout",
      o.inputDropout ?? 0,
      {
        min: 0,
        max: 0.95,
      },
    );
    const lr = o.learningRate ?? 2e-4;
    const lrD = typeof lr === "number" ? lr : lr?.d;
    const lrG = typeof lr === "number" ? lr : lr?.g;
    checkNumber(where, "learningRate (D)", lrD, { min: 0, minExclusive: true });
    checkNumber(where, "learningRate (G)", lrG, { min: 0, minExclusive: true });
    const beta1 = checkNumber(where, "beta1", o.beta1 ?? 0.5, {
      min: 0,
      max: 0.999,
    });
    const fixedCount = checkInteger(
      where,
      "fixedNoiseCount",
      o.fixedNoiseCount ?? 64,
      { min: 1 },
    );
    checkNumber(where, "seed", o.seed ?? 0);

    if (o.labels !== undefined) {
      checkTensor(where, "labels", o.labels, {
        shape: [data.shape[0]],
        dtype: "int32",
      });
      this.numClasses = checkInteger(where, "numClasses", o.numClasses, {
        min: 2,
      });
      const ys = o.labels.dataSync() as Int32Array;
      const bad = ys.findIndex((y) => y < 0 || y >= this.numClasses);
      if (bad >= 0) {
        throw new ArgumentError(
          where,
          `labels must lie in [0, ${
            this.numClasses - 1
          }], but labels[${bad}] is ${ys[bad]}`,
        );
      }
      this.#labels = Int32Array.from(ys);
    } else {
      if (o.numClasses !== undefined && o.numClasses !== 0) {
        throw new ArgumentError(
          where,
          "numClasses was given without labels: pass labels (int32 [N]) for a conditional GAN",
        );
      }
      this.numClasses = 0;
      this.#labels = null;
    }

    this.dataShape = data.shape.slice(1);
    const dataSize = tf.util.sizeFromShape(this.dataShape);
    // The networks must fit the data: check with the declared input shapes
    // now, rather than fail inside tfjs on the first step.
    const gIn = o.generator.inputs[0].shape;
    if (gIn.length !== 2 || gIn[1] !== this.noiseDim + this.numClasses) {
      throw new ArgumentError(
        where,
        `generator must take [n, noiseDim + numClasses] = [n, ${
          this.noiseDim + this.numClasses
        }] inputs, its input shape is [${gIn.map((s) => s ?? "n").join(", ")}]`,
      );
    }
    const gOut = o.generator.outputs[0].shape.slice(1) as number[];
    if (tf.util.sizeFromShape(gOut) !== dataSize) {
      throw new ArgumentError(
        where,
        `generator outputs [${gOut}] per sample, which does not match one data example of shape [${this.dataShape}]`,
      );
    }
    const dIn = o.discriminator.inputs[0].shape;
    this.#dInputRank = dIn.length;
    if (dIn.length === 2) {
      if (dIn[1] !== dataSize + this.numClasses) {
        throw new ArgumentError(
          where,
          `an MLP discriminator must take [n, dataSize + numClasses] = [n, ${
            dataSize + this.numClasses
          }] inputs, its input shape is [${
            dIn.map((s) => s ?? "n").join(", ")
          }]`,
        );
      }
    } else {
      const want = [
        ...this.dataShape.slice(0, -1),
        this.dataShape.at(-1)! + this.numClasses,
      ];
      if (
        dIn.length !== this.dataShape.length + 1 ||
        want.some((s, i) => dIn[i + 1] !== s)
      ) {
        throw new ArgumentError(
          where,
          `a convolutional discriminator must take [n, ${want}] inputs (data channels + one per class), its input shape is [${
            dIn.map((s) => s ?? "n").join(", ")
          }]`,
        );
      }
    }
    const dOut = o.discriminator.outputs[0].shape;
    if (dOut.length !== 2 || dOut[1] !== 1) {
      throw new ArgumentError(
        where,
        `discriminator must output one logit per example ([n, 1]), its output shape is [${
          dOut.map((s) => s ?? "n").join(", ")
        }]`,
      );
    }

    this.generator = o.generator;
    this.discriminator = o.discriminator;
    this.#data = data;
    this.#rng = rngFrom(o.seed ?? 0);
    this.#dVars = variablesOf(o.discriminator);
    this.#gVars = variablesOf(o.generator);
    const kind = checkChoice(where, "optimizer", o.optimizer ?? "adam", [
      "adam",
      "sgd",
    ]);
    const make = (lr: number) =>
      kind === "adam" ? adam(lr, beta1, 0.999) : tf.train.sgd(lr);
    this.#dOpt = make(lrD);
    this.#gOpt = make(lrG);
    this.fixedNoise = randomNormal([fixedCount, this.noiseDim], {
      seed: this.#rng.fork(),
    }) as tf.Tensor2D;
    this.fixedLabels = this.numClasses > 0
      ? Int32Array.from({ length: fixedCount }, (_, i) => i % this.numClasses)
      : null;
  }

  #checkAlive(where: string): void {
    if (this.#disposed) {
      throw new ArgumentError(
        `GANTrainer.${where}`,
        "the trainer has been disposed",
      );
    }
  }

  #oneHot(labels: Int32Array): tf.Tensor2D {
    return tf.oneHot(tf.tensor1d(labels, "int32"), this.numClasses)
      .toFloat() as tf.Tensor2D;
  }

  /** G(z, y) reshaped to the data shape (inside a tidy of the caller). */
  #generate(z: tf.Tensor, labels: Int32Array | null): tf.Tensor {
    const input = labels ? tf.concat([z, this.#oneHot(labels)], 1) : z;
    const out = this.generator.apply(input, { training: true }) as tf.Tensor;
    return out.reshape([z.shape[0], ...this.dataShape]);
  }

  /** D's logits [n] for data-shaped x (dropout and label channels added here). */
  #discriminate(
    x: tf.Tensor,
    labels: Int32Array | null,
    rate = this.inputDropout,
  ): tf.Tensor {
    const n = x.shape[0];
    let input = x;
    if (rate > 0) {
      // Seeded inverted dropout: the mask comes from our Rng, not tfjs's generator.
      const u = tf.tensor(
        Float32Array.from({ length: x.size }, () => this.#rng.uniform()),
        x.shape,
      );
      const keep = tf.cast(tf.greaterEqual(u, rate), "float32");
      input = tf.mul(x, tf.mul(keep, 1 / (1 - rate)));
    }
    if (this.#dInputRank === 2) {
      input = input.reshape([n, -1]);
      if (labels) input = tf.concat([input, this.#oneHot(labels)], 1);
    } else if (labels) {
      // A conditional conv D sees the class as constant extra channels.
      const spatial = this.dataShape.slice(0, -1);
      const planes = this.#oneHot(labels)
        .reshape([n, ...spatial.map(() => 1), this.numClasses])
        .tile([1, ...spatial, 1]);
      input = tf.concat([input, planes], input.rank - 1);
    }
    return (this.discriminator.apply(input, { training: true }) as tf.Tensor)
      .reshape([n]);
  }

  #batch(): { real: tf.Tensor; labels: Int32Array | null } {
    const n = this.#data.shape[0];
    const idx = Int32Array.from(
      { length: this.batchSize },
      () => this.#rng.int(n),
    );
    const real = tf.gather(this.#data, tf.tensor1d(idx, "int32"));
    const labels = this.#labels ? idx.map((i) => this.#labels![i]) : null;
    return { real, labels };
  }

  #noise(): tf.Tensor {
    return randomNormal([this.batchSize, this.noiseDim], { seed: this.#rng });
  }

  /**
   * One discriminator update with G frozen: G's samples are computed outside
   * the gradient and only D's variables are updated. Returns D's loss and
   * the mean of D(x) and D(G(z)) on this batch.
   */
  discriminatorStep(): { dLoss: number; dReal: number; dFake: number } {
    this.#checkAlive("discriminatorStep");
    return tf.tidy(() => {
      const { real, labels } = this.#batch();
      // Fake labels follow the real batch's, so D cannot tell by class frequency.
      const fake = this.#generate(this.#noise(), labels);
      let stats: tf.Tensor | null = null;
      const b = real.shape[0];
      const both = tf.concat([real, fake], 0);
      const bothLabels = labels
        ? Int32Array.from([...labels, ...labels])
        : null;
      const { value, grads } = tf.variableGrads(() => {
        // One pass of D over real and fake together: half the kernel launches.
        const logits = this.#discriminate(both, bothLabels);
        const realLogits = logits.slice(0, b);
        const fakeLogits = logits.slice(b, b);
        stats = tf.keep(tf.stack([
          tf.mean(tf.sigmoid(realLogits)),
          tf.mean(tf.sigmoid(fakeLogits)),
        ]));
        return dLoss(realLogits, fakeLogits);
      }, this.#dVars);
      this.#dOpt.applyGradients(grads);
      const loss = value.dataSync()[0];
      const s = (stats as unknown as tf.Tensor).dataSync();
      (stats as unknown as tf.Tensor).dispose();
      return { dLoss: loss, dReal: s[0], dFake: s[1] };
    });
  }

  /**
   * One generator update with D frozen: the loss flows through D but only
   * G's variables are updated. Returns G's loss and its gradient norm.
   */
  generatorStep(): { gLoss: number; gGradNorm: number } {
    this.#checkAlive("generatorStep");
    return tf.tidy(() => {
      const labels = this.#labels
        ? Int32Array.from(
          { length: this.batchSize },
          () => this.#labels![this.#rng.int(this.#labels!.length)],
        )
        : null;
      const z = this.#noise();
      const { value, grads } = tf.variableGrads(() => {
        const logits = this.#discriminate(this.#generate(z, labels), labels);
        return this.generatorLoss === "saturating"
          ? satLoss(logits)
          : nonSatLoss(logits);
      }, this.#gVars);
      const norm = tf.sqrt(
        tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))),
      );
      this.#gOpt.applyGradients(grads);
      return { gLoss: value.dataSync()[0], gGradNorm: norm.dataSync()[0] };
    });
  }

  /**
   * One round: k discriminator steps, then l generator steps. Returns the
   * metrics of the last D and G steps (plain numbers) and appends them to
   * `history`.
   */
  step(): GANStepMetrics {
    this.#checkAlive("step");
    let d = { dLoss: NaN, dReal: NaN, dFake: NaN };
    for (let i = 0; i < this.dSteps; i++) d = this.discriminatorStep();
    let g = { gLoss: NaN, gGradNorm: NaN };
    for (let i = 0; i < this.gSteps; i++) g = this.generatorStep();
    const metrics = { ...d, ...g };
    this.history.step.push(this.#rounds++);
    for (
      const k of ["dLoss", "gLoss", "dReal", "dFake", "gGradNorm"] as const
    ) {
      this.history[k].push(metrics[k]);
    }
    return metrics;
  }

  /**
   * `n` new samples G(z) with z from `seed` (and, for a conditional GAN, the
   * given class labels: one per sample, or a single class for all). Returns
   * a tensor of the data shape (the caller disposes it).
   */
  sample(
    n: number,
    { seed = 0, labels }: { seed?: Seed; labels?: number[] | number } = {},
  ): tf.Tensor {
    this.#checkAlive("sample");
    checkInteger("GANTrainer.sample", "n", n, { min: 1 });
    const ys = this.#sampleLabels("GANTrainer.sample", n, labels, seed);
    return tf.tidy(() => {
      const z = randomNormal([n, this.noiseDim], { seed });
      return this.#generate(z, ys);
    });
  }

  #sampleLabels(
    where: string,
    n: number,
    labels: number[] | number | undefined,
    seed: Seed,
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
      // Independent stream from the noise: fork a generator for the labels.
      const rng = rngFrom(typeof seed === "number" ? seed + 7919 : seed.fork());
      return Int32Array.from({ length: n }, () => rng.int(this.numClasses));
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

  /** G applied to the fixed noise batch (and fixed labels): a tensor of the data shape, caller disposes. */
  sampleFixed(): tf.Tensor {
    this.#checkAlive("sampleFixed");
    return tf.tidy(() => this.#generate(this.fixedNoise, this.fixedLabels));
  }

  /**
   * Mean D(x) over data-shaped examples `x` (no input dropout), e.g. to probe
   * D; a conditional GAN judges them as the given classes (default: class 0).
   */
  discriminatorProbability(x: tf.Tensor, labels?: number[]): number {
    this.#checkAlive("discriminatorProbability");
    const where = "GANTrainer.discriminatorProbability";
    checkTensor(where, "x", x, { shape: [null, ...this.dataShape] });
    const ys = this.numClasses > 0
      ? this.#sampleLabels(where, x.shape[0], labels ?? 0, 0)
      : null;
    return tf.tidy(() =>
      tf.mean(tf.sigmoid(this.#discriminate(x, ys, 0))).dataSync()[0]
    );
  }

  /** Frees the optimizers and the fixed noise (not the models or the data, which the caller owns). */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#dOpt.dispose();
    this.#gOpt.dispose();
    this.fixedNoise.dispose();
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
  { modes = 8, radius = 2, std = 0.02, sigmas = 3, minShare = 0.02 }: {
    modes?: number;
    radius?: number;
    std?: number;
    sigmas?: number;
    minShare?: number;
  } = {},
): RingQuality {
  const where = "ringQuality";
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

// ---------------------------------------------------------------------------
// Notebook helpers: the optimal discriminator, MLP GANs, snapshots

/**
 * The best discriminator for a fixed generator,
 * D*(x) = p_data(x) / (p_data(x) + p_g(x)), evaluated pointwise from the two
 * densities at the same points (plain arrays of equal length, values >= 0,
 * not both 0). Equals 1/2 wherever p_g = p_data. Returns a plain array.
 */
export function optimalDiscriminator(
  pData: readonly number[],
  pG: readonly number[],
): number[] {
  const where = "optimalDiscriminator";
  for (const [name, p] of [["pData", pData], ["pG", pG]] as const) {
    if (!Array.isArray(p) || p.length === 0) {
      throw new ArgumentError(
        where,
        `${name} must be a non-empty number[] of densities, got ${String(p)}`,
      );
    }
    p.forEach((v, i) => checkNumber(where, `${name}[${i}]`, v, { min: 0 }));
  }
  if (pData.length !== pG.length) {
    throw new ArgumentError(
      where,
      `pData and pG must have the same length, got ${pData.length} and ${pG.length}`,
    );
  }
  return pData.map((p, i) => {
    if (p + pG[i] === 0) {
      throw new ArgumentError(
        where,
        `D* is undefined where both densities are 0 (index ${i})`,
      );
    }
    return p / (p + pG[i]);
  });
}

/** Options of `mlpGAN`: the trainer's options plus the two MLPs' shapes and seeds. */
export interface MLPGANOptions extends
  Omit<
    GANTrainerOptions,
    "generator" | "discriminator" | "data" | "seed"
  > {
  /** G's hidden layer sizes; D uses them in reverse order (default [128, 128]). */
  hidden?: number[];
  /** Batch normalisation on G's hidden layers (default false). */
  batchNorm?: boolean;
  /** G's output activation (default "linear"; "sigmoid" for images in [0, 1]). */
  outputActivation?: "linear" | "sigmoid" | "tanh";
  /** Seeds of G's initial weights, D's initial weights and the trainer's batches and noise (default [0, 1, 2]). */
  seeds?: [number, number, number];
}

/**
 * A `GANTrainer` on `data` ([N, ...], flattened for the networks) with an
 * `mlpGenerator` (noiseDim + numClasses -> hidden -> data size) and an
 * `mlpDiscriminator` (data size + numClasses -> reversed hidden -> 1 logit).
 * Every other option goes to the trainer unchanged. The caller owns the
 * result: `gan.dispose()` frees the trainer, `gan.generator.dispose()` and
 * `gan.discriminator.dispose()` the networks; `data` stays the caller's.
 *
 * @example
 * const gan = mlpGAN(ring.points, { noiseDim: 2, hidden: [128, 128], learningRate: 1e-3 });
 */
export function mlpGAN(data: tf.Tensor, options: MLPGANOptions): GANTrainer {
  const where = "mlpGAN";
  checkTensor(where, "data", data, { minRank: 2 });
  if (options === null || typeof options !== "object") {
    throw new ArgumentError(
      where,
      "options must be an object with at least noiseDim",
    );
  }
  const {
    hidden = [128, 128],
    batchNorm = false,
    outputActivation = "linear",
    seeds = [0, 1, 2],
    ...trainerOptions
  } = options;
  if (!Array.isArray(hidden) || hidden.length === 0) {
    throw new ArgumentError(
      where,
      `hidden must be a non-empty array of layer sizes, got ${String(hidden)}`,
    );
  }
  hidden.forEach((h, i) => checkInteger(where, `hidden[${i}]`, h, { min: 1 }));
  if (!Array.isArray(seeds) || seeds.length !== 3) {
    throw new ArgumentError(
      where,
      `seeds must be [generator, discriminator, trainer], got ${String(seeds)}`,
    );
  }
  seeds.forEach((s, i) => checkNumber(where, `seeds[${i}]`, s));
  checkInteger(where, "noiseDim", options.noiseDim, { min: 1 });
  const numClasses = checkInteger(
    where,
    "numClasses",
    options.numClasses ?? 0,
    { min: 0 },
  );
  const dataSize = tf.util.sizeFromShape(data.shape.slice(1));
  const generator = mlpGenerator({
    noiseDim: options.noiseDim,
    outputDim: dataSize,
    hidden,
    numClasses,
    batchNorm,
    outputActivation,
    seed: seeds[0],
  });
  const discriminator = mlpDiscriminator({
    inputDim: dataSize,
    hidden: [...hidden].reverse(),
    numClasses,
    seed: seeds[1],
  });
  try {
    return new GANTrainer({
      ...trainerOptions,
      generator,
      discriminator,
      data,
      seed: seeds[2],
    });
  } catch (e) {
    generator.dispose();
    discriminator.dispose();
    throw e;
  }
}

/**
 * An `onRecord` callback for `trainLoop` that calls `fn(round)` after every
 * `steps / parts` rounds (round counted from 1), e.g. to keep four snapshots
 * of a run: `onRecord: atFractions(steps, 4, (round) => ...)`. `steps` must
 * be a multiple of `parts`.
 */
export function atFractions(
  steps: number,
  parts: number,
  fn: (round: number) => void,
): (i: number) => void {
  const where = "atFractions";
  checkInteger(where, "steps", steps, { min: 1 });
  checkInteger(where, "parts", parts, { min: 1, max: steps });
  if (steps % parts !== 0) {
    throw new ArgumentError(
      where,
      `steps (${steps}) must be a multiple of parts (${parts})`,
    );
  }
  if (typeof fn !== "function") {
    throw new ArgumentError(where, "fn must be a function (round) => void");
  }
  return (i: number) => {
    if ((i + 1) % (steps / parts) === 0) fn(i + 1);
  };
}
