import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import {
  classifierFeatures,
  classifierProbabilities,
  fashionClassifier,
  loadOrTrainClassifier,
  trainClassifier,
} from "../lib/classifier.ts";
import { loadFashionMNIST } from "../lib/data.ts";
import { countParameters } from "../lib/nn.ts";
import { adam } from "../lib/optim.ts";
import { ArgumentError } from "../lib/validate.ts";
import { makeTestDir } from "./temp.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertRejects,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

/** Share of images whose most probable class is the label. */
function accuracy(
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

Deno.test("fashionClassifier: shapes, feature layer and parameter count", async () => {
  const model = fashionClassifier({ seed: 1 });
  // conv 3x3x1x16 + conv 3x3x16x32 + dense 1568x64 + dense 64x10, with biases.
  assertEquals(countParameters(model), 160 + 4640 + 100416 + 650);
  const x = tf.zeros([3, 28, 28, 1]) as tf.Tensor4D;
  const probs = await assertNoTensorLeak(
    () => classifierProbabilities(model, x, { batchSize: 2 }),
    {
      allowed: 1,
    },
  );
  assertEquals(probs.shape, [3, 10]);
  assertAllClose(tf.tidy(() => tf.sum(probs, 1)), [1, 1, 1], { rtol: 1e-5 });
  const feats = await assertNoTensorLeak(
    () => classifierFeatures(model, x, { batchSize: 2 }),
    {
      allowed: 1,
    },
  );
  assertEquals(feats.shape, [3, 64]);
  tf.dispose([x, probs, feats]);
  model.dispose();
});

Deno.test("trainClassifier learns Fashion-MNIST (subset) well above chance, without leaks", async () => {
  const train = await loadFashionMNIST({
    split: "train",
    subset: true,
    limit: 2000,
  });
  const test = await loadFashionMNIST({ split: "test", subset: true });
  const model = fashionClassifier({ seed: 0 });
  const optimizer = adam(2e-3);
  const before = accuracy(model, test.images, test.labels);
  // Only the optimizer's two moment slots per variable (8 variables) stay.
  const losses = await assertNoTensorLeak(
    () =>
      trainClassifier(model, optimizer, train.images, train.labels, {
        epochs: 2,
        seed: 1,
      }),
    { allowed: 16 },
  );
  // Full batches only: floor(2000 / 128) = 15 steps per epoch.
  assertEquals(losses.length, 2 * 15);
  const after = accuracy(model, test.images, test.labels);
  assert(
    after > 0.65 && after > before + 0.3,
    `accuracy ${before} -> ${after}`,
  );
  assert(losses.at(-1)! < losses[0], "the loss fell");
  tf.dispose([train.images, train.labels, test.images, test.labels]);
  optimizer.dispose();
  model.dispose();
});

Deno.test("loadOrTrainClassifier trains and saves when missing, then loads the same model", async () => {
  const dir = await makeTestDir("classifier-");
  const path = `${dir}/clf`;
  try {
    const first = await loadOrTrainClassifier({
      path,
      trainLimit: 600,
      epochs: 1,
      seed: 2,
    });
    assert(first.trained);
    assert(
      first.testAccuracy > 0.3 && first.testAccuracy <= 1,
      `${first.testAccuracy}`,
    );
    const second = await loadOrTrainClassifier({
      path,
      trainLimit: 600,
      epochs: 1,
      seed: 2,
    });
    assert(!second.trained, "the saved file was reused");
    assertEquals(second.testAccuracy, first.testAccuracy);
    const x = tf.tidy(() =>
      tf.randomUniform([4, 28, 28, 1], 0, 1, "float32", 3)
    ) as tf.Tensor4D;
    const a = classifierFeatures(first.model, x);
    const b = classifierFeatures(second.model, x);
    assertAllClose(a, b);
    tf.dispose([x, a, b]);
    first.model.dispose();
    second.model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("classifier functions reject bad inputs", async () => {
  const model = fashionClassifier();
  const optimizer = tf.train.sgd(0.1);
  const flat = tf.zeros([2, 784]) as unknown as tf.Tensor4D;
  const x = tf.zeros([2, 28, 28, 1]) as tf.Tensor4D;
  const empty = tf.zeros([0, 28, 28, 1]) as tf.Tensor4D;
  const badLabels = tf.tensor1d([0, 1, 2], "int32");
  assertThrows(
    () => classifierFeatures(model, flat),
    ArgumentError,
    "images",
    "[*, 28, 28, 1]",
  );
  assertThrows(
    () => classifierFeatures(model, empty),
    ArgumentError,
    "classifierFeatures",
    "at least one image",
  );
  await assertRejects(
    () => trainClassifier(model, optimizer, x, badLabels),
    ArgumentError,
    "labels",
    "[2]",
  );
  await assertRejects(
    () => loadOrTrainClassifier({ path: "" }),
    ArgumentError,
    "path",
  );
  await assertRejects(
    () => loadOrTrainClassifier({ trainLimt: 5 } as never),
    ArgumentError,
    'did you mean "trainLimit"',
  );
  const other = tf.sequential({
    layers: [tf.layers.flatten({ inputShape: [28, 28, 1] })],
  });
  assertThrows(
    () => classifierFeatures(other, x),
    ArgumentError,
    "fashionClassifier",
  );
  assertThrows(
    () => fashionClassifier(null as never),
    ArgumentError,
    "fashionClassifier",
  );
  tf.dispose([flat, x, empty, badLabels]);
  model.dispose();
  optimizer.dispose();
  other.dispose();
});

Deno.test("classifierProbabilities and classifierFeatures reject a batchSize that is not a positive integer", () => {
  const model = fashionClassifier();
  const x = tf.zeros([3, 28, 28, 1]) as tf.Tensor4D;
  // 0 used to loop forever; -1, NaN and 0.5 failed inside tfjs or the FFI.
  for (const batchSize of [0, -1, NaN, 0.5]) {
    assertThrows(
      () => classifierProbabilities(model, x, { batchSize }),
      ArgumentError,
      "classifierProbabilities",
      "batchSize",
    );
    assertThrows(
      () => classifierFeatures(model, x, { batchSize }),
      ArgumentError,
      "classifierFeatures",
      "batchSize",
    );
  }
  assertThrows(
    () => classifierProbabilities(model, x, { batchsize: 2 } as never),
    ArgumentError,
    'did you mean "batchSize"',
  );
  tf.dispose(x);
  model.dispose();
});

Deno.test("trainClassifier rejects labels outside 0..9 and leaks nothing when it throws", async () => {
  const model = fashionClassifier();
  const optimizer = tf.train.sgd(0.1);
  const x = tf.zeros([3, 28, 28, 1]) as tf.Tensor4D;
  const outside = tf.tensor1d([11, -3, 2], "int32");
  const labels = tf.tensor1d([0, 1, 2], "int32");
  await assertNoTensorLeak(async () => {
    await assertRejects(
      () => trainClassifier(model, optimizer, x, outside),
      ArgumentError,
      "trainClassifier",
      "labels[0] is 11",
    );
    await assertRejects(
      () =>
        trainClassifier(model, optimizer, x, labels, {
          batchSize: 2,
          onStep: () => {
            throw new Error("stop");
          },
        }),
      Error,
      "stop",
    );
    await assertRejects(
      () => trainClassifier(model, optimizer, x, labels, { batchSize: 4 }),
      ArgumentError,
      "batchSize",
    );
    await assertRejects(
      () => trainClassifier(model, optimizer, x, labels, { epoch: 1 } as never),
      ArgumentError,
      'did you mean "epochs"',
    );
    await assertRejects(
      () => trainClassifier(model, "adam" as never, x, labels),
      ArgumentError,
      "optimizer",
    );
  });
  tf.dispose([x, outside, labels]);
  model.dispose();
  optimizer.dispose();
});
