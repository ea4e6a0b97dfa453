import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import {
  atFractions,
  convDiscriminator28,
  convGenerator28,
  discriminatorLoss,
  GANTrainer,
  generatorLossGradients,
  mlpDiscriminator,
  mlpGAN,
  mlpGenerator,
  nonSaturatingGeneratorLoss,
  optimalDiscriminator,
  ringQuality,
  saturatingGeneratorLoss,
} from "../lib/gan.ts";
import { makeRing, ringCenters } from "../lib/datasets2d.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertGradientMatches,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const scalar = (t: tf.Tensor) => {
  const v = t.dataSync()[0];
  t.dispose();
  return v;
};

Deno.test("GAN losses equal their closed forms and binary cross-entropy with logits", () => {
  const real = [2.0, -0.5, 0.3, 4.0];
  const fake = [-3.0, 0.7, -1.2];
  const r = tf.tensor1d(real);
  const f = tf.tensor1d(fake);
  const closedD = -(meanOf(real.map((v) => Math.log(sigmoid(v)))) +
    meanOf(fake.map((v) => Math.log(1 - sigmoid(v)))));
  const closedSat = meanOf(fake.map((v) => Math.log(1 - sigmoid(v))));
  const closedNonSat = -meanOf(fake.map((v) => Math.log(sigmoid(v))));
  assertAllClose(scalar(discriminatorLoss(r, f)), closedD, { rtol: 1e-5 });
  assertAllClose(scalar(saturatingGeneratorLoss(f)), closedSat, { rtol: 1e-5 });
  assertAllClose(scalar(nonSaturatingGeneratorLoss(f)), closedNonSat, {
    rtol: 1e-5,
  });
  // The same numbers from tfjs's own BCE-with-logits (label 1 real, 0 fake).
  const bce = (labels: number[], logits: tf.Tensor) =>
    scalar(tf.losses.sigmoidCrossEntropy(tf.tensor1d(labels), logits));
  const bceReal = bce(real.map(() => 1), r);
  const bceFake0 = bce(fake.map(() => 0), f);
  const bceFake1 = bce(fake.map(() => 1), f);
  assertAllClose(scalar(discriminatorLoss(r, f)), bceReal + bceFake0, {
    rtol: 1e-5,
  });
  assertAllClose(scalar(saturatingGeneratorLoss(f)), -bceFake0, { rtol: 1e-5 });
  assertAllClose(scalar(nonSaturatingGeneratorLoss(f)), bceFake1, {
    rtol: 1e-5,
  });
  // [n, 1] logits (a layer's output) give the same values.
  const f2 = f.reshape([3, 1]);
  assertAllClose(scalar(nonSaturatingGeneratorLoss(f2)), closedNonSat, {
    rtol: 1e-5,
  });
  tf.dispose([r, f, f2]);
});

Deno.test("GAN losses stay finite for logits of +-100", () => {
  const big = tf.tensor1d([100, 100]);
  const small = tf.tensor1d([-100, -100]);
  // A perfect D: loss ~ 0; a perfectly fooled D: 100 per term.
  assertAllClose(scalar(discriminatorLoss(big, small)), 0, { atol: 1e-6 });
  assertAllClose(scalar(discriminatorLoss(small, big)), 200, { rtol: 1e-6 });
  assertAllClose(scalar(saturatingGeneratorLoss(big)), -100, { rtol: 1e-6 });
  assertAllClose(scalar(saturatingGeneratorLoss(small)), 0, { atol: 1e-6 });
  assertAllClose(scalar(nonSaturatingGeneratorLoss(small)), 100, {
    rtol: 1e-6,
  });
  assertAllClose(scalar(nonSaturatingGeneratorLoss(big)), 0, { atol: 1e-6 });
  // Gradients too: finite and equal to -sigmoid(v) / (1 - sigmoid(v)) per sample.
  const g = tf.grad((v: tf.Tensor) => nonSaturatingGeneratorLoss(v))(small);
  assertAllClose(g, [-0.5, -0.5], { rtol: 1e-6 });
  tf.dispose([big, small, g]);
});

Deno.test("loss gradients match finite differences", () => {
  const v = tf.tensor1d([-2.5, -0.4, 0.8, 1.9]);
  assertGradientMatches((x) => saturatingGeneratorLoss(x), v);
  assertGradientMatches((x) => nonSaturatingGeneratorLoss(x), v);
  assertGradientMatches((x) => discriminatorLoss(x, tf.neg(x)), v);
  v.dispose();
});

Deno.test("the saturating gradient vanishes as D(G(z)) -> 0, the non-saturating one does not", () => {
  const logits = [-20, -10, -5, -2, 0, 2];
  const g = generatorLossGradients(logits);
  // Closed forms: |d/dv log(1 - s(v))| = s(v); |d/dv -log s(v)| = 1 - s(v).
  assertAllClose(g.saturating, logits.map(sigmoid), {
    rtol: 1e-4,
    atol: 1e-12,
  });
  assertAllClose(g.nonSaturating, logits.map((v) => 1 - sigmoid(v)), {
    rtol: 1e-4,
  });
  assert(
    g.saturating[0] < 1e-8,
    `saturating gradient at D = s(-20) is ${g.saturating[0]}`,
  );
  assert(
    g.nonSaturating[0] > 0.999,
    `non-saturating gradient is ${g.nonSaturating[0]}`,
  );
  // Monotone: the further D rejects the fake, the smaller the saturating gradient.
  for (let i = 1; i < logits.length; i++) {
    assert(g.saturating[i] > g.saturating[i - 1]);
    assert(g.nonSaturating[i] < g.nonSaturating[i - 1]);
  }
});

Deno.test("losses reject bad logits with clear errors", () => {
  const nan = tf.tensor1d([0, NaN]);
  const wide = tf.zeros([3, 2]);
  const ints = tf.tensor1d([1, 2], "int32");
  const empty = tf.tensor1d([]);
  assertThrows(
    () => nonSaturatingGeneratorLoss(nan),
    ArgumentError,
    "fakeLogits",
    "finite",
  );
  assertThrows(
    () => discriminatorLoss(wide, wide),
    ArgumentError,
    "realLogits",
    "[n, 1]",
  );
  assertThrows(() => saturatingGeneratorLoss(ints), ArgumentError, "float32");
  assertThrows(() => saturatingGeneratorLoss(empty), ArgumentError, "empty");
  assertThrows(
    () => discriminatorLoss([1, 2] as unknown as tf.Tensor, nan),
    ArgumentError,
    "tf.Tensor",
  );
  assertThrows(
    () => generatorLossGradients([0, NaN]),
    ArgumentError,
    "logits[1]",
  );
  tf.dispose([nan, wide, ints, empty]);
});

function snapshot(model: tf.LayersModel): Float32Array[] {
  return model.trainableWeights.map((w) =>
    Float32Array.from(w.read().dataSync())
  );
}

function changed(before: Float32Array[], model: tf.LayersModel): boolean {
  const after = snapshot(model);
  return after.some((a, i) => a.some((v, j) => v !== before[i][j]));
}

function ringGAN(
  extra: Partial<ConstructorParameters<typeof GANTrainer>[0]> = {},
) {
  const { points, labels } = makeRing({ n: 256, seed: 3 });
  const numClasses = extra.labels ? 8 : 0;
  const generator = mlpGenerator({
    noiseDim: 2,
    outputDim: 2,
    hidden: [16],
    numClasses,
    seed: 1,
  });
  const discriminator = mlpDiscriminator({
    inputDim: 2,
    hidden: [16],
    numClasses,
    seed: 2,
  });
  return {
    points,
    labels,
    generator,
    discriminator,
    make: (o: Partial<ConstructorParameters<typeof GANTrainer>[0]> = {}) =>
      new GANTrainer({
        generator,
        discriminator,
        data: points,
        noiseDim: 2,
        batchSize: 32,
        learningRate: 1e-2,
        ...extra,
        ...o,
      }),
  };
}

Deno.test("the trainer freezes the other network: D steps leave G unchanged and vice versa", () => {
  for (const inputDropout of [0, 0.3]) {
    const r = ringGAN();
    const gan = r.make({ inputDropout });
    let g0 = snapshot(r.generator);
    let d0 = snapshot(r.discriminator);
    gan.discriminatorStep();
    assert(!changed(g0, r.generator), "a D step changed G's weights");
    assert(changed(d0, r.discriminator), "a D step did not change D");
    g0 = snapshot(r.generator);
    d0 = snapshot(r.discriminator);
    gan.generatorStep();
    assert(!changed(d0, r.discriminator), "a G step changed D's weights");
    assert(changed(g0, r.generator), "a G step did not change G");
    gan.dispose();
    tf.dispose([r.points, r.labels]);
    r.generator.dispose();
    r.discriminator.dispose();
  }
});

Deno.test("step runs k D-steps then l G-steps and records the history", () => {
  const r = ringGAN();
  const gan = r.make({ dSteps: 3, gSteps: 2 });
  let dCalls = 0;
  let gCalls = 0;
  const d = gan.discriminatorStep.bind(gan);
  const g = gan.generatorStep.bind(gan);
  gan.discriminatorStep = () => (dCalls++, d());
  gan.generatorStep = () => (gCalls++, g());
  const m = gan.step();
  gan.step();
  assertEquals([dCalls, gCalls], [6, 4]);
  assertEquals(gan.history.step, [0, 1]);
  assert(m.dReal > 0 && m.dReal < 1 && m.dFake > 0 && m.dFake < 1);
  assert(
    m.gGradNorm > 0 && Number.isFinite(m.gLoss) && Number.isFinite(m.dLoss),
  );
  // The non-saturating loss is -mean log D(G(z)) on G's batch: positive.
  assert(m.gLoss > 0);
  gan.dispose();
  tf.dispose([r.points, r.labels]);
});

Deno.test("the same seed gives the same training run; a different seed does not", () => {
  const run = (seed: number) => {
    const r = ringGAN();
    const gan = r.make({ seed });
    for (let i = 0; i < 3; i++) gan.step();
    const h = [...gan.history.dLoss, ...gan.history.gLoss];
    gan.dispose();
    tf.dispose([r.points, r.labels]);
    return h;
  };
  assertEquals(run(5), run(5));
  assert(run(5).some((v, i) => v !== run(6)[i]));
});

Deno.test("GAN training does not leak tensors (plain, dropout, conditional)", async () => {
  const plain = ringGAN();
  const cond = (() => {
    const { points, labels } = makeRing({ n: 256, seed: 3 });
    const r = ringGAN({ labels, numClasses: 8 });
    tf.dispose([r.points, r.labels]);
    return { ...r, points, labels };
  })();
  for (
    const [r, opts] of [[plain, { inputDropout: 0.2 }], [cond, {}]] as const
  ) {
    const gan = r.make({ ...opts, data: r.points });
    gan.step(); // optimizer slots are created on the first step
    await assertNoTensorLeak(() => {
      for (let i = 0; i < 3; i++) gan.step();
      const s = gan.sample(10, { seed: 1 });
      const f = gan.sampleFixed();
      assertEquals(s.shape, [10, 2]);
      assertEquals(f.shape, [64, 2]);
      gan.discriminatorProbability(s);
      tf.dispose([s, f]);
    });
    gan.dispose();
    tf.dispose([r.points, r.labels]);
  }
});

Deno.test("conditional GAN: G and D see the one-hot label; samples follow requested classes", () => {
  const { points, labels } = makeRing({ n: 256, seed: 3 });
  const r = ringGAN({ labels, numClasses: 8 });
  const gan = r.make({ data: points });
  assertEquals(gan.numClasses, 8);
  assertEquals(Array.from(gan.fixedLabels!.slice(0, 9)), [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    0,
  ]);
  gan.step();
  // Different classes with the same noise must give different samples.
  const a = gan.sample(4, { seed: 1, labels: 0 });
  const b = gan.sample(4, { seed: 1, labels: 5 });
  assert(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]) > 0);
  assertThrows(() => gan.sample(4, { labels: 8 }), ArgumentError, "labels[0]");
  assertThrows(
    () => gan.sample(4, { labels: [1, 2] }),
    ArgumentError,
    "4 classes",
  );
  tf.dispose([a, b]);
  gan.dispose();
  tf.dispose([points, labels, r.points, r.labels]);
});

Deno.test("conv G and D run in the trainer (conditional, label channels), and stay frozen", () => {
  const n = 8;
  const data = tf.tidy(() =>
    tf.randomUniform([n, 28, 28, 1], 0, 1, "float32", 1)
  );
  const labels = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], "int32");
  const generator = convGenerator28({
    noiseDim: 4,
    numClasses: 3,
    channels: [4, 2],
  });
  const discriminator = convDiscriminator28({
    numClasses: 3,
    channels: [2, 4],
  });
  assertEquals(discriminator.inputs[0].shape, [null, 28, 28, 4]);
  const gan = new GANTrainer({
    generator,
    discriminator,
    data,
    labels,
    numClasses: 3,
    noiseDim: 4,
    batchSize: 4,
    fixedNoiseCount: 6,
  });
  const g0 = snapshot(generator);
  gan.discriminatorStep();
  assert(!changed(g0, generator));
  const d0 = snapshot(discriminator);
  gan.generatorStep();
  assert(!changed(d0, discriminator));
  const s = gan.sampleFixed();
  assertEquals(s.shape, [6, 28, 28, 1]);
  const v = s.dataSync();
  assert(v.every((x) => x >= 0 && x <= 1), "sigmoid output in [0, 1]");
  s.dispose();
  gan.dispose();
  generator.dispose();
  discriminator.dispose();
  tf.dispose([data, labels]);
});

Deno.test("the trainer rejects mismatched networks and bad options with clear errors", () => {
  const r = ringGAN();
  assertThrows(
    () => r.make({ noiseDim: 3 }),
    ArgumentError,
    "generator must take",
    "[n, 3]",
  );
  assertThrows(
    () => r.make({ generatorLoss: "wgan" as never }),
    ArgumentError,
    "generatorLoss",
  );
  assertThrows(
    () => r.make({ inputDropout: 1 }),
    ArgumentError,
    "inputDropout",
  );
  assertThrows(() => r.make({ dSteps: 0 }), ArgumentError, "dSteps");
  assertThrows(
    () => r.make({ numClasses: 8 }),
    ArgumentError,
    "without labels",
  );
  assertThrows(
    () => r.make({ learningRate: -1 }),
    ArgumentError,
    "learningRate",
  );
  const badLabels = tf.fill([256], 9, "int32") as tf.Tensor1D;
  assertThrows(
    () => r.make({ labels: badLabels, numClasses: 8 }),
    ArgumentError,
  );
  const wideD = mlpDiscriminator({ inputDim: 3, hidden: [4] });
  assertThrows(
    () => r.make({ discriminator: wideD }),
    ArgumentError,
    "MLP discriminator",
  );
  const gan = r.make();
  gan.dispose();
  assertThrows(() => gan.step(), ArgumentError, "disposed");
  wideD.dispose();
  tf.dispose([r.points, r.labels, badLabels]);
});

Deno.test("ringQuality: real ring samples cover all modes with the 3-sigma share of a 2D Gaussian", () => {
  const std = 0.05;
  const { points, labels } = makeRing({ n: 8000, std, seed: 11 });
  const q = ringQuality(points, { std });
  assertEquals(q.modesCovered, 8);
  // P(|x - mu| <= 3 std) for an isotropic 2D Gaussian: 1 - exp(-9 / 2).
  assertAllClose(q.highQualityShare, 1 - Math.exp(-4.5), { atol: 0.006 });
  assertEquals(
    q.counts.reduce((a, b) => a + b, 0),
    Math.round(q.highQualityShare * 8000),
  );
  // A collapsed generator: everything on one mode.
  const c = ringCenters(8, 2)[3];
  const collapsed = ringQuality(
    Array.from({ length: 100 }, () => [c[0], c[1]]),
    { std },
  );
  assertEquals(collapsed, {
    modesCovered: 1,
    highQualityShare: 1,
    counts: [0, 0, 0, 100, 0, 0, 0, 0],
  });
  // Points off the ring are not high quality.
  assertEquals(ringQuality([[0, 0], [5, 5]], { std }).highQualityShare, 0);
  assertThrows(() => ringQuality([[0, NaN]]), ArgumentError, "samples[0]");
  assertThrows(
    () => ringQuality(tf.zeros([3, 3]) as tf.Tensor2D),
    ArgumentError,
    "[*, 2]",
  );
  tf.dispose([points, labels]);
});

Deno.test("mlpGenerator with batch norm: shapes, seeded weights, frozen during D steps", () => {
  const a = mlpGenerator({
    noiseDim: 3,
    outputDim: 5,
    hidden: [8],
    batchNorm: true,
    seed: 4,
  });
  const b = mlpGenerator({
    noiseDim: 3,
    outputDim: 5,
    hidden: [8],
    batchNorm: true,
    seed: 4,
  });
  assertEquals(a.outputs[0].shape, [null, 5]);
  assertEquals(snapshot(a), snapshot(b));
  const data = tf.tidy(() => tf.randomNormal([64, 5], 0, 1, "float32", 2));
  const discriminator = mlpDiscriminator({ inputDim: 5, hidden: [8] });
  const gan = new GANTrainer({
    generator: a,
    discriminator,
    data,
    noiseDim: 3,
    batchSize: 16,
  });
  const g0 = snapshot(a);
  gan.discriminatorStep();
  assert(!changed(g0, a), "a D step changed the batch-normalised G");
  gan.generatorStep();
  assert(changed(g0, a));
  gan.dispose();
  [a, b, discriminator].forEach((m) => m.dispose());
  data.dispose();
});

Deno.test("optimalDiscriminator: sigmoid of the log density ratio; 1/2 where the densities agree", () => {
  // N(0, 1) data against N(1, 1) fakes: log p_data - log p_g = 1/2 - x.
  const xs = Array.from({ length: 41 }, (_, i) => -4 + i / 5);
  const gauss = (x: number, m: number) =>
    Math.exp(-0.5 * (x - m) ** 2) / Math.sqrt(2 * Math.PI);
  const dStar = optimalDiscriminator(
    xs.map((x) => gauss(x, 0)),
    xs.map((x) => gauss(x, 1)),
  );
  assertAllClose(dStar, xs.map((x) => sigmoid(0.5 - x)), { rtol: 1e-12 });
  assertAllClose(optimalDiscriminator([0.3, 2], [0.3, 2]), [0.5, 0.5]);
  assertEquals(optimalDiscriminator([1, 0], [0, 1]), [1, 0]);
  assertThrows(
    () => optimalDiscriminator([1, 2], [1]),
    ArgumentError,
    "same length",
  );
  assertThrows(
    () => optimalDiscriminator([1, -1], [1, 1]),
    ArgumentError,
    "pData[1]",
  );
  assertThrows(
    () => optimalDiscriminator([1, 1], [NaN, 1]),
    ArgumentError,
    "pG[0]",
  );
  assertThrows(() => optimalDiscriminator([0], [0]), ArgumentError, "both");
  assertThrows(() => optimalDiscriminator([], []), ArgumentError, "pData");
});

Deno.test("mlpGAN builds the same trainer as mlpGenerator + mlpDiscriminator + GANTrainer", () => {
  const { points, labels } = makeRing({ n: 256, seed: 3 });
  const settings = {
    noiseDim: 2,
    batchSize: 32,
    learningRate: 1e-2,
    dSteps: 2,
  };
  const manual = new GANTrainer({
    ...settings,
    generator: mlpGenerator({
      noiseDim: 2,
      outputDim: 2,
      hidden: [16, 8],
      seed: 3,
    }),
    discriminator: mlpDiscriminator({ inputDim: 2, hidden: [8, 16], seed: 4 }),
    data: points,
    seed: 5,
  });
  const built = mlpGAN(points, {
    ...settings,
    hidden: [16, 8],
    seeds: [3, 4, 5],
  });
  for (let i = 0; i < 3; i++) {
    manual.step();
    built.step();
  }
  assertEquals(built.history, manual.history);
  // D's hidden layers are G's in reverse order.
  const units = (m: tf.LayersModel) =>
    m.layers.map((l) => (l.getConfig() as { units?: number }).units)
      .filter((u) => u !== undefined);
  assertEquals(units(built.generator), [16, 8, 2]);
  assertEquals(units(built.discriminator), [8, 16, 1]);
  for (const gan of [manual, built]) {
    gan.dispose();
    gan.generator.dispose();
    gan.discriminator.dispose();
  }
  tf.dispose([points, labels]);
});

Deno.test("mlpGAN: conditional image GAN with batch norm; no leak; bad options rejected", async () => {
  const images = randomUniformImages(40);
  const labels = tf.tensor1d(
    Array.from({ length: 40 }, (_, i) => i % 4),
    "int32",
  );
  await assertNoTensorLeak(() => {
    const gan = mlpGAN(images, {
      labels,
      numClasses: 4,
      noiseDim: 5,
      hidden: [12],
      batchNorm: true,
      outputActivation: "sigmoid",
      batchSize: 8,
      fixedNoiseCount: 8,
    });
    assertEquals(gan.generator.inputs[0].shape, [null, 9]);
    assertEquals(gan.discriminator.inputs[0].shape, [null, 6 * 6 + 4]);
    gan.step();
    const s = gan.sample(3, { labels: 2 });
    assertEquals(s.shape, [3, 6, 6, 1]);
    const v = s.dataSync();
    assert(v.every((x) => x >= 0 && x <= 1), "sigmoid output in [0, 1]");
    s.dispose();
    gan.dispose();
    gan.generator.dispose();
    gan.discriminator.dispose();
  });
  assertThrows(
    () => mlpGAN(images, { noiseDim: 2, hidden: [] }),
    ArgumentError,
    "mlpGAN",
    "hidden",
  );
  assertThrows(
    () => mlpGAN(images, { noiseDim: 2, hidden: [4, 0] }),
    ArgumentError,
    "hidden[1]",
  );
  assertThrows(
    () =>
      mlpGAN(images, {
        noiseDim: 2,
        seeds: [1, 2] as unknown as [number, number, number],
      }),
    ArgumentError,
    "seeds",
  );
  assertThrows(
    () => mlpGAN(images, { noiseDim: 0 }),
    ArgumentError,
    "noiseDim",
  );
  const flat = tf.zeros([4]);
  assertThrows(() => mlpGAN(flat, { noiseDim: 2 }), ArgumentError, "data");
  flat.dispose();
  // The trainer's own checks still apply, and no network is left behind.
  const before = tf.memory().numTensors;
  assertThrows(
    () => mlpGAN(images, { noiseDim: 2, numClasses: 4 }),
    ArgumentError,
    "labels",
  );
  assertEquals(tf.memory().numTensors, before);
  tf.dispose([images, labels]);
});

function randomUniformImages(n: number): tf.Tensor4D {
  return tf.tensor4d(
    Float32Array.from({ length: n * 36 }, (_, i) => (i * 0.37) % 1),
    [n, 6, 6, 1],
  );
}

Deno.test("atFractions calls back after each equal part of a run", () => {
  const rounds: number[] = [];
  const onRecord = atFractions(100, 4, (round) => rounds.push(round));
  for (let i = 0; i < 100; i++) onRecord(i);
  assertEquals(rounds, [25, 50, 75, 100]);
  const once: number[] = [];
  const last = atFractions(7, 1, (r) => once.push(r));
  for (let i = 0; i < 7; i++) last(i);
  assertEquals(once, [7]);
  assertThrows(() => atFractions(10, 4, () => {}), ArgumentError, "multiple");
  assertThrows(() => atFractions(10, 0, () => {}), ArgumentError, "parts");
  assertThrows(() => atFractions(0, 1, () => {}), ArgumentError, "steps");
  assertThrows(
    () => atFractions(8, 2, "x" as unknown as () => void),
    ArgumentError,
    "fn",
  );
});
