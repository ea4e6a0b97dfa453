import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import {
  CLASSIFIER_FEATURE_LAYER,
  classifierAccuracy,
  classifierFeatures,
  classifierProbabilities,
  fashionClassifier,
  loadOrTrainClassifier,
  trainClassifier,
} from "../lib/classifier.ts";
import { loadFashionMNIST } from "../lib/data.ts";
import { countParameters } from "../lib/nn.ts";
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
  assert(model.getLayer(CLASSIFIER_FEATURE_LAYER) !== undefined);
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
  const before = classifierAccuracy(model, test.images, test.labels);
  const losses = await assertNoTensorLeak(() =>
    trainClassifier(model, train.images, train.labels, { epochs: 2, seed: 1 })
  );
  assertEquals(losses.length, 2 * Math.ceil(2000 / 128));
  const after = classifierAccuracy(model, test.images, test.labels);
  assert(
    after > 0.65 && after > before + 0.3,
    `accuracy ${before} -> ${after}`,
  );
  assert(losses.at(-1)! < losses[0], "the loss fell");
  tf.dispose([train.images, train.labels, test.images, test.labels]);
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
  const flat = tf.zeros([2, 784]) as unknown as tf.Tensor4D;
  const x = tf.zeros([2, 28, 28, 1]) as tf.Tensor4D;
  const badLabels = tf.tensor1d([0, 1, 2], "int32");
  assertThrows(
    () => classifierFeatures(model, flat),
    ArgumentError,
    "images",
    "[*, 28, 28, 1]",
  );
  assertThrows(
    () => classifierAccuracy(model, x, badLabels),
    ArgumentError,
    "labels",
    "[2]",
  );
  await assertRejects(
    () => trainClassifier(model, x, badLabels),
    ArgumentError,
    "labels",
  );
  await assertRejects(
    () => loadOrTrainClassifier({ path: "" }),
    ArgumentError,
    "path",
  );
  const other = tf.sequential({
    layers: [tf.layers.flatten({ inputShape: [28, 28, 1] })],
  });
  assertThrows(
    () => classifierFeatures(other, x),
    ArgumentError,
    "fashionClassifier",
  );
  tf.dispose([flat, x, badLabels]);
  model.dispose();
  other.dispose();
});
