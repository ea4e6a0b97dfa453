import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { batchSampler } from "../lib/data.ts";
import { makeMoons } from "../lib/datasets2d.ts";
import { trainStep } from "../lib/model.ts";
import { type LabeledPoints, OdeClassifier } from "../lib/ode.ts";
import { adam } from "../lib/optim.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

/** `steps` trainStep calls on the full set; the metrics of each. */
function train(
  clf: OdeClassifier,
  batch: LabeledPoints,
  steps: number,
  optimizer = adam(0.01),
): Record<string, number>[] {
  const history = Array.from(
    { length: steps },
    () => trainStep(clf, optimizer, batch),
  );
  optimizer.dispose();
  return history;
}

Deno.test("OdeClassifier separates two moons with trainStep: > 95% training accuracy in 200 steps", async () => {
  await assertNoTensorLeak(() => {
    const moons = makeMoons(200, { noise: 0.1, seed: 0 });
    const test = makeMoons(400, { noise: 0.1, seed: 1 });
    const clf = new OdeClassifier({ seed: 0 });
    const history = train(clf, [moons.points, moons.labels], 200);
    const loss = history.map((m) => m.loss);
    assert(loss.every(Number.isFinite), "finite losses");
    // Chance level at the start: log 2 ≈ 0.69 for two classes.
    assert(loss[0] > 0.4, `first loss ${loss[0]}`);
    assert(loss[199] < loss[0] / 20, `loss ${loss[0]} -> ${loss[199]}`);
    const trainAcc = clf.accuracy(moons.points, moons.labels);
    assert(trainAcc > 0.95, `training accuracy ${trainAcc}`);
    // The metric is the accuracy before the step's update.
    assert(history[199].accuracy > 0.95, `step accuracy ${history[199]}`);
    const testAcc = clf.accuracy(test.points, test.labels);
    assert(testAcc > 0.9, `test accuracy ${testAcc}`);
    clf.dispose();
    tf.dispose([moons.points, moons.labels, test.points, test.labels]);
  });
});

Deno.test("OdeClassifier.loss is the mean cross-entropy of z(1) W + b and reports the accuracy", () => {
  const { points, labels } = makeMoons(12, { noise: 0.1, seed: 7 });
  const clf = new OdeClassifier({ seed: 3, solverSteps: 2 });
  const { total, terms } = clf.loss([points, labels]);
  // By hand from the flow and the readout.
  const z1 = clf.flow(points, [1])[0];
  const { weights: w, bias: b } = clf.readout();
  const y = Array.from(labels.dataSync());
  let ce = 0;
  let correct = 0;
  z1.forEach((z, i) => {
    const logits = [0, 1].map((k) => z[0] * w[0][k] + z[1] * w[1][k] + b[k]);
    const m = Math.max(...logits);
    const lse = m + Math.log(logits.reduce((s, l) => s + Math.exp(l - m), 0));
    ce += lse - logits[y[i]];
    if (logits[y[i]] === m) correct++;
  });
  assertAllClose(total, ce / 12, { rtol: 1e-5 });
  assertAllClose(terms!.accuracy, correct / 12, { rtol: 1e-6 });
  tf.dispose([total, terms!.accuracy, points, labels]);
  clf.dispose();
});

Deno.test("OdeClassifier is seeded: same seed, same losses; another seed differs", () => {
  const { points, labels } = makeMoons(64, { noise: 0.1, seed: 3 });
  const run = (seed: number) => {
    const clf = new OdeClassifier({ seed });
    const losses = train(clf, [points, labels], 5).map((m) => m.loss);
    clf.dispose();
    return losses;
  };
  const a = run(7);
  assertEquals(run(7), a);
  assert(run(8)[0] !== a[0], "a different seed gives different weights");
  tf.dispose([points, labels]);
});

Deno.test("OdeClassifier trains on minibatches from batchSampler", () => {
  const { points, labels } = makeMoons(128, { noise: 0.1, seed: 9 });
  const clf = new OdeClassifier({ seed: 1, hidden: 16 });
  const optimizer = adam(0.02);
  const sampler = batchSampler([points, labels], 32, { seed: 0 });
  const losses = Array.from(
    { length: 60 },
    () =>
      tf.tidy(() =>
        trainStep(clf, optimizer, sampler.next() as LabeledPoints).loss
      ),
  );
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  assert(
    mean(losses.slice(-10)) < mean(losses.slice(0, 10)) / 2,
    `loss ${mean(losses.slice(0, 10))} -> ${mean(losses.slice(-10))}`,
  );
  optimizer.dispose();
  clf.dispose();
  tf.dispose([points, labels]);
});

Deno.test("OdeClassifier.flow: shapes, starts at the inputs, ends where the readout classifies", () => {
  const { points, labels } = makeMoons(30, { noise: 0.1, seed: 2 });
  const clf = new OdeClassifier({ seed: 1, solverSteps: 5 });
  train(clf, [points, labels], 3);
  const xs = points.arraySync() as number[][];
  const snaps = clf.flow(points, [0, 0.4, 1]);
  assertEquals([snaps.length, snaps[0].length, snaps[0][0].length], [3, 30, 2]);
  assertAllClose(snaps[0], xs, { atol: 0 });
  // The default times are every solver step.
  assertEquals(clf.flow(xs).length, 6);
  // softmax(z(1) W + b) from the flow and the readout = probabilities().
  const { weights: w, bias: b } = clf.readout();
  const mine = snaps[2].map((z) => {
    const logits = [0, 1].map((k) => z[0] * w[0][k] + z[1] * w[1][k] + b[k]);
    const m = Math.max(...logits);
    const e = logits.map((l) => Math.exp(l - m));
    return e.map((v) => v / (e[0] + e[1]));
  });
  const probs = clf.probabilities(xs);
  assertAllClose(probs, mine, { atol: 1e-5 });
  probs.forEach((p) => assertAllClose(p[0] + p[1], 1, { atol: 1e-6 }));
  // Starting later than 0 still flows from t = 0.
  assertAllClose(clf.flow(xs, [0.4, 1]), snaps.slice(1), { atol: 1e-6 });
  clf.dispose();
  tf.dispose([points, labels]);
});

Deno.test("OdeClassifier with augment: the extra coordinates start at zero and move", () => {
  const { points, labels } = makeMoons(20, { noise: 0.1, seed: 4 });
  const clf = new OdeClassifier({ augment: 2, hidden: 8 });
  assertEquals([clf.inputDim, clf.dim, clf.net.inputs[0].shape[1]], [2, 4, 5]);
  train(clf, [points, labels], 3);
  const [start, end] = clf.flow(points, [0, 1]);
  assertEquals(start[0].length, 4);
  assert(start.every((z) => z[2] === 0 && z[3] === 0), "zeros at t = 0");
  assert(end.some((z) => Math.abs(z[2]) > 1e-3), "the flow uses them");
  assertEquals(clf.readout().weights.length, 4);
  clf.dispose();
  tf.dispose([points, labels]);
});

Deno.test("OdeClassifier: no tensor leak over training and the queries", async () => {
  const { points, labels } = makeMoons(40, { noise: 0.1, seed: 5 });
  const badLabels = tf.fill([40], 5, "int32") as tf.Tensor1D;
  // The whole life of a classifier, then the loop alone.
  await assertNoTensorLeak(async () => {
    const clf = new OdeClassifier({ seed: 2 });
    const optimizer = adam(0.01);
    trainStep(clf, optimizer, [points, labels]); // Adam makes its moments
    await assertNoTensorLeak(() => {
      for (let i = 0; i < 20; i++) trainStep(clf, optimizer, [points, labels]);
      clf.flow(points);
      clf.probabilities([[0, 0], [1, 0.5]]);
      clf.accuracy(points, labels);
      clf.accuracy([[0, 1]], [0]);
      clf.readout();
      for (
        const bad of [
          () => clf.flow(points, [0, 2]),
          () => clf.accuracy(points, [0, 1]),
          () => clf.flow([[0, 1, 2]]),
          () => trainStep(clf, optimizer, [points, badLabels]),
        ]
      ) {
        try {
          bad();
        } catch { /* expected */ }
      }
    });
    optimizer.dispose();
    clf.dispose();
  });
  tf.dispose([points, labels, badLabels]);
});

Deno.test("OdeClassifier handles 200,000 points (loops, not Math.max(...labels))", () => {
  const n = 200_000;
  const points = tf.randomUniform([n, 2], -1, 1, "float32", 1) as tf.Tensor2D;
  const labels = tf.tensor1d(
    Int32Array.from({ length: n }, (_, i) => i % 2),
    "int32",
  );
  const clf = new OdeClassifier({ hidden: 4, solverSteps: 1 });
  const acc = clf.accuracy(points, labels);
  assert(acc >= 0 && acc <= 1, `accuracy ${acc}`);
  const { total, terms } = clf.loss([points, labels]);
  assert(Number.isFinite(total.dataSync()[0]), "finite loss");
  tf.dispose([total, terms!.accuracy, points, labels]);
  clf.dispose();
});

Deno.test("OdeClassifier: bad options and batches name the argument; a failing constructor makes no tensor", async () => {
  const { points, labels } = makeMoons(10, { noise: 0.1, seed: 6 });
  await assertNoTensorLeak(() => {
    const mk = (o: unknown) => () => new OdeClassifier(o as object);
    assertThrows(mk({ hidden: 0 }), ArgumentError, "options.hidden");
    assertThrows(mk({ augment: -1 }), ArgumentError, "options.augment");
    assertThrows(
      mk({ solverSteps: 1.5 }),
      ArgumentError,
      "options.solverSteps",
    );
    assertThrows(mk({ numClasses: 1 }), ArgumentError, "options.numClasses");
    assertThrows(mk({ inputDim: 0 }), ArgumentError, "options.inputDim");
    assertThrows(
      mk({ learningRate: 0.01 }),
      ArgumentError,
      "OdeClassifier",
      'unknown option "learningRate"',
    );
    assertThrows(mk({ sed: 1 }), ArgumentError, 'did you mean "seed"');
    assertThrows(mk(null), ArgumentError, "OdeClassifier", "options");
  });
  const clf = new OdeClassifier({ hidden: 4 });
  const loss = (batch: unknown) => () => clf.loss(batch as LabeledPoints);
  assertThrows(loss(points), ArgumentError, "OdeClassifier.loss", "[points");
  assertThrows(
    loss([points, tf.tensor1d([0, 1], "int32")]),
    ArgumentError,
    "labels",
  );
  assertThrows(
    loss([points, tf.cast(labels, "float32")]),
    ArgumentError,
    "labels",
    "int32",
  );
  const negative = tf.tensor1d(
    Array.from({ length: 10 }, (_, i) => i - 1),
    "int32",
  );
  assertThrows(loss([points, negative]), ArgumentError, "labels[0] is -1");
  const three = tf.fill([10], 2, "int32");
  assertThrows(loss([points, three]), ArgumentError, "classes 0..1");
  const nan = tf.tensor2d([[0, NaN]]);
  assertThrows(
    loss([nan, tf.tensor1d([0], "int32")]),
    ArgumentError,
    "points",
    "finite",
  );
  assertThrows(
    loss([tf.zeros([0, 2]), tf.zeros([0], "int32")]),
    ArgumentError,
    "empty",
  );
  assertThrows(() => clf.flow([[0, 1, 2]]), ArgumentError, "flow", "columns");
  assertThrows(() => clf.flow(points, [0, 1.5]), ArgumentError, "times");
  assertThrows(() => clf.flow(points, [0.5, 0.2]), ArgumentError, "times");
  assertThrows(() => clf.probabilities([[0, NaN]]), ArgumentError, "points");
  assertThrows(
    () => clf.accuracy(points, [0, 1]),
    ArgumentError,
    "labels",
    "one entry per point",
  );
  assertThrows(() => clf.accuracy([[0, 1]], [0.5]), ArgumentError, "labels[0]");
  assertThrows(() => clf.accuracy([[0, 1]], [2]), ArgumentError, "labels[0]");
  clf.dispose();
  tf.dispose([points, labels, nan, negative, three]);
});
