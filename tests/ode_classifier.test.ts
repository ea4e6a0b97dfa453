import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { makeMoons } from "../lib/datasets2d.ts";
import { OdeClassifier } from "../lib/ode.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

Deno.test("OdeClassifier separates two moons: > 95% training accuracy in 200 steps", async () => {
  await assertNoTensorLeak(() => {
    const train = makeMoons(200, { noise: 0.1, seed: 0 });
    const test = makeMoons(400, { noise: 0.1, seed: 1 });
    const clf = new OdeClassifier(train.points, train.labels, { seed: 0 });
    for (let i = 0; i < 200; i++) clf.step();
    const { loss, accuracy, step } = clf.history;
    assertEquals(step, Array.from({ length: 200 }, (_, i) => i));
    assert(loss.every(Number.isFinite), "finite losses");
    // Chance level at the start: log 2 ≈ 0.69 for two classes.
    assert(loss[0] > 0.4, `first loss ${loss[0]}`);
    assert(loss[199] < loss[0] / 20, `loss ${loss[0]} -> ${loss[199]}`);
    const trainAcc = clf.accuracy();
    assert(trainAcc > 0.95, `training accuracy ${trainAcc}`);
    assert(accuracy[199] > 0.95, `history accuracy ${accuracy[199]}`);
    const testAcc = clf.accuracy(test.points, test.labels);
    assert(testAcc > 0.9, `test accuracy ${testAcc}`);
    clf.dispose();
    tf.dispose([train.points, train.labels, test.points, test.labels]);
  });
});

Deno.test("OdeClassifier is seeded: same seed, same losses; another seed differs", () => {
  const { points, labels } = makeMoons(64, { noise: 0.1, seed: 3 });
  const run = (seed: number) => {
    const clf = new OdeClassifier(points, labels, { seed });
    const losses = Array.from({ length: 5 }, () => clf.step().loss);
    clf.dispose();
    return losses;
  };
  const a = run(7);
  assertEquals(run(7), a);
  assert(run(8)[0] !== a[0], "a different seed gives different weights");
  tf.dispose([points, labels]);
});

Deno.test("OdeClassifier.flow: shapes, starts at the inputs, ends where the readout classifies", () => {
  const { points, labels } = makeMoons(30, { noise: 0.1, seed: 2 });
  const clf = new OdeClassifier(points, labels, { seed: 1, solverSteps: 5 });
  for (let i = 0; i < 3; i++) clf.step();
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
  const clf = new OdeClassifier(points, labels, { augment: 2, hidden: 8 });
  assertEquals([clf.inputDim, clf.dim, clf.net.inputs[0].shape[1]], [2, 4, 5]);
  for (let i = 0; i < 3; i++) clf.step();
  const [start, end] = clf.flow(points, [0, 1]);
  assertEquals(start[0].length, 4);
  assert(start.every((z) => z[2] === 0 && z[3] === 0), "zeros at t = 0");
  assert(end.some((z) => Math.abs(z[2]) > 1e-3), "the flow uses them");
  assertEquals(clf.readout().weights.length, 4);
  clf.dispose();
  tf.dispose([points, labels]);
});

Deno.test("OdeClassifier: no tensor leak over the training loop and the queries", async () => {
  const { points, labels } = makeMoons(40, { noise: 0.1, seed: 5 });
  // The whole life of a classifier, then the loop alone.
  await assertNoTensorLeak(async () => {
    const clf = new OdeClassifier(points, labels, { seed: 2 });
    clf.step(); // Adam creates its moment variables on the first step
    await assertNoTensorLeak(() => {
      for (let i = 0; i < 20; i++) clf.step();
      clf.flow(points);
      clf.probabilities([[0, 0], [1, 0.5]]);
      clf.accuracy();
      clf.accuracy([[0, 1]], [0]);
      clf.readout();
      try {
        clf.flow(points, [0, 2]);
      } catch { /* expected */ }
      try {
        clf.accuracy(points, [0, 1]);
      } catch { /* expected */ }
    });
    clf.dispose();
  });
  tf.dispose([points, labels]);
});

Deno.test("OdeClassifier: bad arguments name the argument", () => {
  const { points, labels } = makeMoons(10, { noise: 0.1, seed: 6 });
  const mk = (p: unknown, l: unknown, o?: unknown) => () =>
    new OdeClassifier(p as tf.Tensor2D, l as tf.Tensor1D, o as object);
  assertThrows(mk([[0, 1]], labels), ArgumentError, "OdeClassifier", "points");
  const nan = tf.tensor2d([[0, NaN]]);
  assertThrows(mk(nan, tf.tensor1d([0], "int32")), ArgumentError, "points");
  assertThrows(
    mk(points, tf.tensor1d([0, 1], "int32")),
    ArgumentError,
    "labels",
  );
  assertThrows(
    mk(points, tf.cast(labels, "float32")),
    ArgumentError,
    "labels",
    "int32",
  );
  const negative = tf.tensor1d(
    Array.from({ length: 10 }, (_, i) => i - 1),
    "int32",
  );
  assertThrows(mk(points, negative), ArgumentError, "labels", ">= 0");
  assertThrows(
    mk(points, labels, { hidden: 0 }),
    ArgumentError,
    "options.hidden",
  );
  assertThrows(
    mk(points, labels, { augment: -1 }),
    ArgumentError,
    "options.augment",
  );
  assertThrows(
    mk(points, labels, { solverSteps: 1.5 }),
    ArgumentError,
    "options.solverSteps",
  );
  assertThrows(
    mk(points, labels, { learningRate: 0 }),
    ArgumentError,
    "options.learningRate",
  );
  assertThrows(
    mk(points, labels, { numClasses: 1 }),
    ArgumentError,
    "options.numClasses",
  );
  assertThrows(mk(points, labels, null), ArgumentError, "options");
  const clf = new OdeClassifier(points, labels, { hidden: 4 });
  assertThrows(() => clf.flow([[0, 1, 2]]), ArgumentError, "flow", "columns");
  assertThrows(() => clf.flow(points, [0, 1.5]), ArgumentError, "times");
  assertThrows(() => clf.flow(points, [0.5, 0.2]), ArgumentError, "times");
  assertThrows(() => clf.probabilities([[0, NaN]]), ArgumentError, "points");
  assertThrows(() => clf.accuracy(points), ArgumentError, "both");
  assertThrows(
    () => clf.accuracy(points, [0, 1]),
    ArgumentError,
    "labels",
    "one entry per point",
  );
  assertThrows(() => clf.accuracy([[0, 1]], [0.5]), ArgumentError, "labels[0]");
  clf.dispose();
  tf.dispose([points, labels, nan, negative]);
});
