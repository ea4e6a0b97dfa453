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
  checkTensor,
} from "./validate.ts";
import { rngFrom } from "./random.ts";
import {
  loadTensors,
  modelWeights,
  saveTensors,
  setModelWeights,
} from "./nn.ts";
import { loadFashionMNIST } from "./data.ts";

/** Name of the penultimate (feature) layer. */
export const CLASSIFIER_FEATURE_LAYER = "classifier_features";

/** Where the project keeps the trained classifier (without extension). */
export const CLASSIFIER_PATH: string = fileURLToPath(
  new URL("../data/models/fmnist_classifier", import.meta.url),
);

/**
 * The classifier: two 3x3 stride-2 convolutions (28 -> 14 -> 7, 16 and 32
 * channels, ReLU), a 64-unit dense feature layer (ReLU) and 10 logits.
 * About 106k parameters (0.4 MB). Input [n, 28, 28, 1] in [0, 1].
 */
export function fashionClassifier(
  { seed = 0 }: { seed?: number } = {},
): tf.Sequential {
  checkNumber("fashionClassifier", "seed", seed);
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
        name: CLASSIFIER_FEATURE_LAYER,
      }),
      tf.layers.dense({
        units: 10,
        kernelInitializer: init(4),
        name: "classifier_logits",
      }),
    ],
  });
}

function checkImages(where: string, images: unknown): tf.Tensor4D {
  return checkTensor(where, "images", images, {
    shape: [null, 28, 28, 1],
    dtype: "float32",
  }) as tf.Tensor4D;
}

function checkLabels(where: string, labels: unknown, n: number): tf.Tensor1D {
  return checkTensor(where, "labels", labels, {
    shape: [n],
    dtype: "int32",
  }) as tf.Tensor1D;
}

/**
 * Trains the classifier with Adam on softmax cross-entropy, in seeded
 * shuffled mini-batches. Calls `onStep(step, loss)` after each step (e.g. for
 * progress). Returns the loss of every step (plain numbers).
 */
export async function trainClassifier(
  model: tf.LayersModel,
  images: tf.Tensor4D,
  labels: tf.Tensor1D,
  { epochs = 2, batchSize = 128, learningRate = 2e-3, seed = 0, onStep }: {
    epochs?: number;
    batchSize?: number;
    learningRate?: number;
    seed?: number;
    onStep?: (step: number, loss: number) => void | Promise<void>;
  } = {},
): Promise<number[]> {
  const where = "trainClassifier";
  checkImages(where, images);
  const n = images.shape[0];
  checkLabels(where, labels, n);
  checkInteger(where, "epochs", epochs, { min: 1 });
  checkInteger(where, "batchSize", batchSize, { min: 1 });
  checkNumber(where, "learningRate", learningRate, {
    min: 0,
    minExclusive: true,
  });
  const rng = rngFrom(seed);
  const optimizer: tf.Optimizer = adam(learningRate);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const losses: number[] = [];
  try {
    for (let e = 0; e < epochs; e++) {
      const order = rng.permutation(n);
      for (let start = 0; start < n; start += batchSize) {
        const idx = order.subarray(start, Math.min(start + batchSize, n));
        const loss = tf.tidy(() => {
          const i = tf.tensor1d(idx, "int32");
          const x = tf.gather(images, i);
          const y = tf.oneHot(tf.gather(labels, i), 10).toFloat();
          const { value, grads } = tf.variableGrads(
            () =>
              tf.losses.softmaxCrossEntropy(
                y,
                model.apply(x) as tf.Tensor,
              ) as tf.Scalar,
            vars,
          );
          optimizer.applyGradients(grads);
          return value.dataSync()[0];
        });
        losses.push(loss);
        await onStep?.(losses.length - 1, loss);
      }
    }
  } finally {
    optimizer.dispose();
  }
  return losses;
}

function batched(
  n: number,
  batchSize: number,
  f: (start: number, end: number) => tf.Tensor,
): tf.Tensor {
  const parts: tf.Tensor[] = [];
  for (let s = 0; s < n; s += batchSize) {
    parts.push(f(s, Math.min(s + batchSize, n)));
  }
  const out = tf.concat(parts, 0);
  parts.forEach((p) => p.dispose());
  return out;
}

function sliceRows(
  images: tf.Tensor4D,
  start: number,
  end: number,
): tf.Tensor4D {
  return images.slice([start, 0, 0, 0], [end - start, 28, 28, 1]);
}

/** Class probabilities (softmax) [n, 10] of images [n, 28, 28, 1]; the caller disposes them. */
export function classifierProbabilities(
  model: tf.LayersModel,
  images: tf.Tensor4D,
  { batchSize = 500 }: { batchSize?: number } = {},
): tf.Tensor2D {
  checkImages("classifierProbabilities", images);
  return batched(
    images.shape[0],
    batchSize,
    (s, e) =>
      tf.tidy(() =>
        tf.softmax(model.apply(sliceRows(images, s, e)) as tf.Tensor)
      ),
  ) as tf.Tensor2D;
}

/** Fraction of `images` whose most probable class is the label (a number). */
export function classifierAccuracy(
  model: tf.LayersModel,
  images: tf.Tensor4D,
  labels: tf.Tensor1D,
  { batchSize = 500 }: { batchSize?: number } = {},
): number {
  const where = "classifierAccuracy";
  checkImages(where, images);
  checkLabels(where, labels, images.shape[0]);
  return tf.tidy(() => {
    const probs = classifierProbabilities(model, images, { batchSize });
    return tf.mean(tf.cast(tf.equal(tf.argMax(probs, 1), labels), "float32"))
      .dataSync()[0];
  });
}

/**
 * The penultimate-layer features [n, 64] of images [n, 28, 28, 1]: what the
 * Frechet distance and precision/recall compare. The caller disposes them.
 */
export function classifierFeatures(
  model: tf.LayersModel,
  images: tf.Tensor4D,
  { batchSize = 500 }: { batchSize?: number } = {},
): tf.Tensor2D {
  const where = "classifierFeatures";
  checkImages(where, images);
  let layer: tf.layers.Layer;
  try {
    layer = model.getLayer(CLASSIFIER_FEATURE_LAYER);
  } catch {
    throw new ArgumentError(
      where,
      `model has no layer named ${CLASSIFIER_FEATURE_LAYER}; use a model from fashionClassifier()`,
    );
  }
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

/**
 * Loads the project's classifier from `path` (default `CLASSIFIER_PATH`), or,
 * when the file is missing, trains one on the first `trainLimit` Fashion-MNIST
 * training images, measures its test accuracy and saves it there (an existing
 * file is never overwritten; if saving fails, a warning is printed and the
 * trained model is still returned).
 */
export async function loadOrTrainClassifier(
  { path = CLASSIFIER_PATH, trainLimit = 20000, epochs = 2, seed = 0, onStep }:
    {
      path?: string;
      trainLimit?: number;
      epochs?: number;
      seed?: number;
      onStep?: (step: number, loss: number) => void | Promise<void>;
    } = {},
): Promise<TrainedClassifier> {
  const where = "loadOrTrainClassifier";
  if (typeof path !== "string" || path === "") {
    throw new ArgumentError(
      where,
      "path must be a non-empty file path (without extension)",
    );
  }
  checkInteger(where, "trainLimit", trainLimit, { min: 1 });
  checkInteger(where, "epochs", epochs, { min: 1 });
  const model = fashionClassifier({ seed });
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
  try {
    await trainClassifier(model, train.images, train.labels, {
      epochs,
      seed,
      onStep,
    });
  } finally {
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
}
