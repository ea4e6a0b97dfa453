/**
 * A small Fashion-MNIST classifier used as the feature extractor of the
 * sample-quality metrics (lib/metrics.ts): the role Inception plays for FID
 * on ImageNet-like images. Its penultimate layer (64 ReLU units) gives the
 * features, its softmax the class probabilities of the Inception Score.
 *
 * Trained once by the project and saved under data/models/ so notebooks
 * reuse it; `loadOrTrainClassifier` trains (and saves) it when the file is
 * missing, and never overwrites an existing file.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { adam } from "./optim.ts";
import { fileURLToPath } from "node:url";
import {
  ArgumentError,
  checkInteger,
  checkNumber,
  checkOptions,
  checkTensor,
} from "./validate.ts";
import {
  loadTensors,
  modelWeights,
  saveTensors,
  setModelWeights,
  trainableVariables,
} from "./nn.ts";
import { batchSampler, loadFashionMNIST } from "./data.ts";
import { type LossTerms, type Trainable, trainStep } from "./model.ts";

/** Name of the penultimate (feature) layer. */
const FEATURE_LAYER = "classifier_features";

/** Number of Fashion-MNIST classes. */
const CLASSES = 10;

/** Where the project keeps the trained classifier (without extension). */
const CLASSIFIER_PATH: string = fileURLToPath(
  new URL("../data/models/fmnist_classifier", import.meta.url),
);

/**
 * The classifier: two 3x3 stride-2 convolutions (28 -> 14 -> 7, 16 and 32
 * channels, ReLU), a 64-unit dense feature layer (ReLU) and 10 logits.
 * About 106k parameters (0.4 MB). Input [n, 28, 28, 1] in [0, 1].
 */
export function fashionClassifier(
  options: { seed?: number } = {},
): tf.Sequential {
  const where = "fashionClassifier";
  const { seed = 0 } = checkOptions(where, options, ["seed"]);
  checkNumber(where, "seed", seed);
  const init = (i: number) =>
    tf.initializers.glorotUniform({ seed: seed * 1000 + 400 + i });
  return tf.sequential({
    name: "classifier",
    layers: [
      tf.layers.conv2d({
        inputShape: [28, 28, 1],
        filters: 16,
        kernelSize: 3,
        strides: 2,
        padding: "same",
        activation: "relu",
        kernelInitializer: init(1),
        name: "classifier_conv1",
      }),
      tf.layers.conv2d({
        filters: 32,
        kernelSize: 3,
        strides: 2,
        padding: "same",
        activation: "relu",
        kernelInitializer: init(2),
        name: "classifier_conv2",
      }),
      tf.layers.flatten({ name: "classifier_flatten" }),
      tf.layers.dense({
        units: 64,
        activation: "relu",
        kernelInitializer: init(3),
        name: FEATURE_LAYER,
      }),
      tf.layers.dense({
        units: 10,
        kernelInitializer: init(4),
        name: "classifier_logits",
      }),
    ],
  });
}

function checkModel(where: string, model: unknown): tf.LayersModel {
  if (!(model instanceof tf.LayersModel)) {
    throw new ArgumentError(
      where,
      "model must be a tf.LayersModel from fashionClassifier()",
    );
  }
  const inShape = model.inputs[0].shape;
  const outShape = model.outputs[0].shape;
  if (
    inShape.join() !== ",28,28,1" || outShape.length !== 2 ||
    outShape[1] !== CLASSES
  ) {
    throw new ArgumentError(
      where,
      `model must map [n, 28, 28, 1] images to [n, ${CLASSES}] logits (a fashionClassifier()), its shapes are [${inShape}] -> [${outShape}]`,
    );
  }
  return model;
}

function checkImages(where: string, images: unknown): tf.Tensor4D {
  const t = checkTensor(where, "images", images, {
    shape: [null, 28, 28, 1],
    dtype: "float32",
  }) as tf.Tensor4D;
  if (t.shape[0] === 0) {
    throw new ArgumentError(where, "images must hold at least one image");
  }
  return t;
}

function checkLabels(where: string, labels: unknown, n: number): tf.Tensor1D {
  const t = checkTensor(where, "labels", labels, {
    shape: [n],
    dtype: "int32",
  }) as tf.Tensor1D;
  // Read once: an out-of-range label would train as an all-zero target.
  const ys = t.dataSync();
  const bad = ys.findIndex((y: number) => y < 0 || y >= CLASSES);
  if (bad >= 0) {
    throw new ArgumentError(
      where,
      `labels must be classes 0..${CLASSES - 1}, but labels[${bad}] is ${
        ys[bad]
      }`,
    );
  }
  return t;
}

function checkBatchSize(where: string, options: unknown): number {
  const { batchSize = 500 } = checkOptions(
    where,
    options as { batchSize?: number } | undefined,
    ["batchSize"],
  );
  return checkInteger(where, "batchSize", batchSize, { min: 1 });
}

/** The classifier's objective: softmax cross-entropy of its logits on [images, labels]. */
function classifierObjective(model: tf.LayersModel): Trainable<tf.Tensor[]> {
  return {
    trainableVariables: () => trainableVariables(model),
    loss: ([images, labels]: tf.Tensor[]): LossTerms => {
      const logits = model.apply(images, { training: true }) as tf.Tensor;
      const targets = tf.oneHot(labels, CLASSES).toFloat();
      const total = tf.losses.softmaxCrossEntropy(targets, logits);
      return { total: total as tf.Scalar };
    },
  };
}

/** Options of `trainClassifier`. */
export interface TrainClassifierOptions {
  /** Passes over the data (default 2). */
  epochs?: number;
  /** Images per step (default 128); each epoch has floor(n / batchSize) full batches. */
  batchSize?: number;
  /** Seed of the batch order (default 0). */
  seed?: number;
  /** Called after each step with its index and loss (e.g. for progress). */
  onStep?: (step: number, loss: number) => void | Promise<void>;
}

/**
 * Trains the classifier on softmax cross-entropy with `optimizer` (the
 * caller's: e.g. `adam(2e-3)`): `trainStep` on seeded shuffled batches of
 * `batchSampler([images, labels], batchSize, { seed })`. Labels are int32
 * classes 0..9. Returns the loss of every step (plain numbers).
 *
 * @example
 * const losses = await trainClassifier(fashionClassifier(), adam(2e-3), train.images, train.labels);
 */
export async function trainClassifier(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  images: tf.Tensor4D,
  labels: tf.Tensor1D,
  options: TrainClassifierOptions = {},
): Promise<number[]> {
  const where = "trainClassifier";
  const { epochs = 2, batchSize = 128, seed = 0, onStep } = checkOptions(
    where,
    options,
    ["epochs", "batchSize", "seed", "onStep"],
  );
  checkModel(where, model);
  if (!(optimizer instanceof tf.Optimizer)) {
    throw new ArgumentError(
      where,
      "optimizer must be a tf.Optimizer, e.g. adam(2e-3)",
    );
  }
  const n = checkImages(where, images).shape[0];
  checkLabels(where, labels, n);
  checkInteger(where, "epochs", epochs, { min: 1 });
  checkInteger(where, "batchSize", batchSize, { min: 1, max: n });
  checkNumber(where, "seed", seed);
  if (onStep !== undefined && typeof onStep !== "function") {
    throw new ArgumentError(where, "onStep must be a function (step, loss)");
  }
  const objective = classifierObjective(model);
  const sampler = batchSampler([images, labels], batchSize, { seed });
  const steps = epochs * Math.floor(n / batchSize);
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    const { loss } = tf.tidy(() =>
      trainStep(objective, optimizer, sampler.next())
    );
    losses.push(loss);
    await onStep?.(step, loss);
  }
  return losses;
}

function batched(
  n: number,
  batchSize: number,
  f: (start: number, end: number) => tf.Tensor,
): tf.Tensor {
  const parts: tf.Tensor[] = [];
  try {
    for (let s = 0; s < n; s += batchSize) {
      parts.push(f(s, Math.min(s + batchSize, n)));
    }
    return tf.concat(parts, 0);
  } finally {
    tf.dispose(parts);
  }
}

function sliceRows(
  images: tf.Tensor4D,
  start: number,
  end: number,
): tf.Tensor4D {
  return images.slice([start, 0, 0, 0], [end - start, 28, 28, 1]);
}

/**
 * Class probabilities (softmax) [n, 10] of images [n, 28, 28, 1], computed
 * `batchSize` images at a time (default 500); the caller disposes them.
 */
export function classifierProbabilities(
  model: tf.LayersModel,
  images: tf.Tensor4D,
  options: { batchSize?: number } = {},
): tf.Tensor2D {
  const where = "classifierProbabilities";
  const batchSize = checkBatchSize(where, options);
  checkModel(where, model);
  checkImages(where, images);
  return batched(
    images.shape[0],
    batchSize,
    (s, e) =>
      tf.tidy(() =>
        tf.softmax(model.apply(sliceRows(images, s, e)) as tf.Tensor)
      ),
  ) as tf.Tensor2D;
}

/** Fraction of `images` whose most probable class is the label. */
function classifierAccuracy(
  model: tf.LayersModel,
  images: tf.Tensor4D,
  labels: tf.Tensor1D,
): number {
  return tf.tidy(() => {
    const probs = classifierProbabilities(model, images);
    return tf.mean(tf.cast(tf.equal(tf.argMax(probs, 1), labels), "float32"))
      .dataSync()[0];
  });
}

/**
 * The penultimate-layer features [n, 64] of images [n, 28, 28, 1] (what the
 * Frechet distance and precision/recall compare), computed `batchSize`
 * images at a time (default 500). The caller disposes them.
 *
 * @example
 * const { model } = await loadOrTrainClassifier();
 * const features = classifierFeatures(model, test.images);
 * frechetDistance(features, classifierFeatures(model, samples));
 */
export function classifierFeatures(
  model: tf.LayersModel,
  images: tf.Tensor4D,
  options: { batchSize?: number } = {},
): tf.Tensor2D {
  const where = "classifierFeatures";
  const batchSize = checkBatchSize(where, options);
  checkImages(where, images);
  let layer: tf.layers.Layer;
  try {
    layer = (model as tf.LayersModel).getLayer(FEATURE_LAYER);
  } catch {
    throw new ArgumentError(
      where,
      `model has no layer named ${FEATURE_LAYER}; use a model from fashionClassifier()`,
    );
  }
  checkModel(where, model);
  const extractor = tf.model({
    inputs: model.inputs,
    outputs: layer.output as tf.SymbolicTensor,
  });
  return batched(
    images.shape[0],
    batchSize,
    (s, e) =>
      tf.tidy(() => extractor.apply(sliceRows(images, s, e)) as tf.Tensor),
  ) as tf.Tensor2D;
}

/** What `loadOrTrainClassifier` returns. */
export interface TrainedClassifier {
  /** The classifier (the caller disposes it). */
  model: tf.Sequential;
  /** Accuracy on the Fashion-MNIST test split, measured when it was trained. */
  testAccuracy: number;
  /** True when it was trained now, false when loaded from `path`. */
  trained: boolean;
  /** Saved-file path (without extension). */
  path: string;
  /** Training settings recorded with the weights. */
  config: Record<string, unknown>;
}

/** Options of `loadOrTrainClassifier`. */
export interface LoadOrTrainClassifierOptions {
  /** Saved-file path without extension (default: the project's data/models/fmnist_classifier). */
  path?: string;
  /** Training images used when the file is missing (default 20000). */
  trainLimit?: number;
  /** Epochs of that training (default 2). */
  epochs?: number;
  /** Seed of the initial weights and the batch order (default 0). */
  seed?: number;
  /** Progress callback of that training. */
  onStep?: (step: number, loss: number) => void | Promise<void>;
}

/**
 * Loads the project's classifier from `path` (default
 * data/models/fmnist_classifier), or, when the file is missing, trains one
 * (Adam, learning rate 2e-3) on the first `trainLimit` Fashion-MNIST
 * training images, measures its test accuracy and saves it there (an
 * existing file is never overwritten; if saving fails, a warning is printed
 * and the trained model is still returned).
 *
 * @example
 * const classifier = await loadOrTrainClassifier();
 * const features = classifierFeatures(classifier.model, images);
 */
export async function loadOrTrainClassifier(
  options: LoadOrTrainClassifierOptions = {},
): Promise<TrainedClassifier> {
  const where = "loadOrTrainClassifier";
  const {
    path = CLASSIFIER_PATH,
    trainLimit = 20000,
    epochs = 2,
    seed = 0,
    onStep,
  } = checkOptions(where, options, [
    "path",
    "trainLimit",
    "epochs",
    "seed",
    "onStep",
  ]);
  if (typeof path !== "string" || path === "") {
    throw new ArgumentError(
      where,
      "path must be a non-empty file path (without extension)",
    );
  }
  checkInteger(where, "trainLimit", trainLimit, { min: 1 });
  checkInteger(where, "epochs", epochs, { min: 1 });
  checkNumber(where, "seed", seed);
  if (onStep !== undefined && typeof onStep !== "function") {
    throw new ArgumentError(where, "onStep must be a function (step, loss)");
  }
  const model = fashionClassifier({ seed });
  try {
    let saved = true;
    try {
      await Deno.stat(`${path}.json`);
    } catch {
      saved = false;
    }
    if (saved) {
      const { tensors, config } = await loadTensors(path);
      try {
        setModelWeights(model, tensors);
      } finally {
        Object.values(tensors).forEach((t) => t.dispose());
      }
      return {
        model,
        testAccuracy: Number(config.testAccuracy),
        trained: false,
        path,
        config,
      };
    }
    const train = await loadFashionMNIST({ split: "train", limit: trainLimit });
    const optimizer = adam(2e-3);
    try {
      await trainClassifier(model, optimizer, train.images, train.labels, {
        epochs,
        batchSize: Math.min(128, train.images.shape[0]),
        seed,
        onStep,
      });
    } finally {
      optimizer.dispose();
      train.images.dispose();
      train.labels.dispose();
    }
    const test = await loadFashionMNIST({ split: "test" });
    const testAccuracy = classifierAccuracy(model, test.images, test.labels);
    const config = {
      architecture: "fashionClassifier/1",
      trainImages: trainLimit,
      testImages: test.images.shape[0],
      epochs,
      seed,
      testAccuracy,
      source: test.source,
    };
    test.images.dispose();
    test.labels.dispose();
    try {
      await saveTensors(path, modelWeights(model), { config });
    } catch (e) {
      console.warn(
        `${where}: could not save the classifier to ${path}: ${
          (e as Error).message
        }`,
      );
    }
    return { model, testAccuracy, trained: true, path, config };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
