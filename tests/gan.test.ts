import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import {
  convDiscriminator28,
  convGenerator28,
  discriminatorLoss,
  ExponentialMovingAverage,
  GAN,
  mlpDiscriminator,
  mlpGenerator,
  nonSaturatingGeneratorLoss,
  r1Penalty,
  ringQuality,
  saturatingGeneratorLoss,
  spectralNorm,
} from "../lib/gan.ts";
import { makeRing, ringCenters } from "../lib/datasets2d.ts";
import { batchSampler } from "../lib/data.ts";
import { trainStep } from "../lib/model.ts";
import { adam } from "../lib/optim.ts";
import { ArgumentError } from "../lib/validate.ts";
import { randomNormal } from "../lib/random.ts";
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
const logSigmoid = (v: number) => -Math.log1p(Math.exp(-v));
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
  const n = logits.length;
  // Per-sample derivatives: n times the gradient of the mean.
  const perSample = (loss: (v: tf.Tensor) => tf.Scalar) =>
    tf.tidy(() =>
      Array.from(
        tf.grad((v: tf.Tensor) => tf.mul(loss(v), n))(tf.tensor1d(logits))
          .abs().dataSync(),
      )
    );
  const sat = perSample(saturatingGeneratorLoss);
  const nonSat = perSample(nonSaturatingGeneratorLoss);
  // Closed forms: |d/dv log(1 - s(v))| = s(v); |d/dv -log s(v)| = 1 - s(v).
  assertAllClose(sat, logits.map(sigmoid), { rtol: 1e-4, atol: 1e-12 });
  assertAllClose(nonSat, logits.map((v) => 1 - sigmoid(v)), { rtol: 1e-4 });
  assert(sat[0] < 1e-8, `saturating gradient at D = s(-20) is ${sat[0]}`);
  assert(nonSat[0] > 0.999, `non-saturating gradient is ${nonSat[0]}`);
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

/** A small ring GAN (conditional on the ring's mode labels when asked). */
function ringGame(
  { conditional = false, inputDropout = 0, seed = 0, batchNorm = false } = {},
) {
  const { points, labels } = makeRing({ n: 256, seed: 3 });
  const numClasses = conditional ? 8 : 0;
  const data = conditional ? [points, labels] : points;
  const gan = new GAN({
    generator: mlpGenerator({
      noiseDim: 2,
      outputDim: 2,
      hidden: [16],
      numClasses,
      batchNorm,
      seed: 1,
    }),
    discriminator: mlpDiscriminator({
      inputDim: 2,
      hidden: [16],
      numClasses,
      seed: 2,
    }),
    data,
    numClasses: conditional ? 8 : undefined,
    noiseDim: 2,
    inputDropout,
    seed,
  });
  const sampler = batchSampler(data, 32, { seed });
  return {
    gan,
    sampler,
    d: gan.discriminatorObjective(),
    g: gan.generatorObjective(),
    dOpt: adam(1e-2, 0.5),
    gOpt: adam(1e-2, 0.5),
    dispose() {
      gan.dispose();
      this.dOpt.dispose();
      this.gOpt.dispose();
      tf.dispose([points, labels]);
    },
  };
}

/** One round of the game: k D-steps, then l G-steps (what the notebook writes out). */
function round(game: ReturnType<typeof ringGame>, k = 1, l = 1) {
  let d: Record<string, number> = {};
  let g: Record<string, number> = {};
  for (let i = 0; i < k; i++) {
    d = tf.tidy(() => trainStep(game.d, game.dOpt, game.sampler.next()));
  }
  for (let i = 0; i < l; i++) {
    g = tf.tidy(() => trainStep(game.g, game.gOpt, game.sampler.next()));
  }
  return { d, g };
}

Deno.test("the D objective freezes G, the G objective freezes D (plain, dropout, batch norm, conditional)", () => {
  for (
    const options of [
      {},
      { inputDropout: 0.3 },
      { batchNorm: true },
      { conditional: true },
    ]
  ) {
    const game = ringGame(options);
    const { generator, discriminator } = game.gan;
    let g0 = snapshot(generator);
    let d0 = snapshot(discriminator);
    const d = tf.tidy(() => trainStep(game.d, game.dOpt, game.sampler.next()));
    assert(!changed(g0, generator), "a D step changed G's weights");
    assert(changed(d0, discriminator), "a D step did not change D");
    assertEquals(Object.keys(d).sort(), ["dFake", "dReal", "loss"]);
    assert(d.dReal > 0 && d.dReal < 1 && d.dFake > 0 && d.dFake < 1);
    g0 = snapshot(generator);
    d0 = snapshot(discriminator);
    const g = tf.tidy(() => trainStep(game.g, game.gOpt, game.sampler.next()));
    assert(!changed(d0, discriminator), "a G step changed D's weights");
    assert(changed(g0, generator), "a G step did not change G");
    // The non-saturating loss -mean log D(G(z)) is positive.
    assert(g.loss > 0, JSON.stringify(g));
    game.dispose();
  }
});

/** A generator whose every output is 0, whatever z: D(G(z)) is then known in closed form. */
function zeroGenerator(inputs: number, outputs: number): tf.Sequential {
  return tf.sequential({
    layers: [tf.layers.dense({
      inputShape: [inputs],
      units: outputs,
      kernelInitializer: "zeros",
      biasInitializer: "zeros",
    })],
  });
}

Deno.test("objective losses equal the closed forms of D's logits (unconditional and conditional)", () => {
  for (const numClasses of [0, 3]) {
    const real = tf.tensor2d([[1, 2], [-1, 0.5], [0.3, -2], [2, 2]]);
    const labels = tf.tensor1d([0, 2, 1, 2], "int32");
    const data = numClasses ? [real, labels] : real;
    const gan = new GAN({
      generator: zeroGenerator(2 + numClasses, 2),
      discriminator: mlpDiscriminator({
        inputDim: 2,
        hidden: [5],
        numClasses,
        seed: 4,
      }),
      data,
      numClasses: numClasses || undefined,
      noiseDim: 2,
    });
    // D's logits on the real rows and on G's zeros, computed by hand.
    const dIn = (x: tf.Tensor) =>
      numClasses ? tf.concat([x, tf.oneHot(labels, numClasses)], 1) : x;
    const logitsOf = (x: tf.Tensor) =>
      tf.tidy(() =>
        Array.from(
          (gan.discriminator.predict(dIn(x)) as tf.Tensor).dataSync(),
        )
      );
    const vReal = logitsOf(real);
    const vFake = tf.tidy(() => logitsOf(tf.zeros([4, 2])));
    const dTerms = gan.discriminatorObjective().loss(data);
    assertAllClose(
      scalar(dTerms.total),
      -(meanOf(vReal.map(logSigmoid)) +
        meanOf(vFake.map((v) => logSigmoid(-v)))),
      { rtol: 1e-5 },
    );
    assertAllClose(scalar(dTerms.terms!.dReal), meanOf(vReal.map(sigmoid)), {
      rtol: 1e-5,
    });
    assertAllClose(scalar(dTerms.terms!.dFake), meanOf(vFake.map(sigmoid)), {
      rtol: 1e-5,
    });
    const nonSat = gan.generatorObjective("nonSaturating").loss(data);
    const sat = gan.generatorObjective("saturating").loss(data);
    assertAllClose(scalar(nonSat.total), -meanOf(vFake.map(logSigmoid)), {
      rtol: 1e-5,
    });
    assertAllClose(
      scalar(sat.total),
      meanOf(vFake.map((v) => logSigmoid(-v))),
      {
        rtol: 1e-5,
      },
    );
    gan.dispose();
    tf.dispose([real, labels]);
  }
});

Deno.test("rounds of k D-steps and l G-steps reproduce with the same seed, differ with another", () => {
  const run = (seed: number) => {
    const game = ringGame({ seed });
    const out = [round(game, 2, 1), round(game, 1, 3)];
    game.dispose();
    return out;
  };
  assertEquals(run(5), run(5));
  assert(JSON.stringify(run(5)) !== JSON.stringify(run(6)));
});

Deno.test("GAN training and sampling do not leak tensors (plain, dropout, conditional)", async () => {
  for (
    const options of [{}, { inputDropout: 0.2 }, { conditional: true }]
  ) {
    const game = ringGame(options);
    round(game); // the optimizers' slots are created on the first step
    await assertNoTensorLeak(() => {
      for (let i = 0; i < 3; i++) round(game, 2, 1);
      const s = game.gan.sample(10, { seed: 1 });
      assertEquals(s.shape, [10, 2]);
      s.dispose();
    });
    game.dispose();
  }
});

Deno.test("sample: a numeric seed repeats its draw, no seed advances the GAN's stream", () => {
  const game = ringGame();
  const values = (t: tf.Tensor) => {
    const v = Array.from(t.dataSync());
    t.dispose();
    return v;
  };
  assertEquals(
    values(game.gan.sample(5, { seed: 3 })),
    values(game.gan.sample(5, { seed: 3 })),
  );
  const a = values(game.gan.sample(5));
  const b = values(game.gan.sample(5));
  assert(a.some((v, i) => v !== b[i]), "two unseeded draws were equal");
  assertThrows(() => game.gan.sample(0), ArgumentError, "GAN.sample", "n");
  assertThrows(
    () => game.gan.sample(2, { sed: 1 } as never),
    ArgumentError,
    "GAN.sample",
    'did you mean "seed"',
  );
  assertThrows(
    () => game.gan.sample(2, { labels: 1 }),
    ArgumentError,
    "unconditional",
  );
  game.dispose();
});

Deno.test("conditional GAN: samples follow the requested classes", () => {
  const game = ringGame({ conditional: true });
  assertEquals(game.gan.numClasses, 8);
  round(game);
  // Different classes with the same noise must give different samples.
  const a = game.gan.sample(4, { seed: 1, labels: 0 });
  const b = game.gan.sample(4, { seed: 1, labels: 5 });
  assert(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]) > 0);
  assertThrows(
    () => game.gan.sample(4, { labels: 8 }),
    ArgumentError,
    "labels[0]",
  );
  assertThrows(
    () => game.gan.sample(4, { labels: [1, 2] }),
    ArgumentError,
    "4 classes",
  );
  // Training batches must carry the labels.
  const x = tf.zeros([4, 2]);
  assertThrows(
    () => trainStep(game.d, game.dOpt, x),
    ArgumentError,
    "trainStep",
    "[examples, labels]",
  );
  tf.dispose([a, b, x]);
  game.dispose();
});

Deno.test("conv G and D play a conditional game with label channels, each frozen in the other's step", () => {
  const n = 8;
  const images = tf.tidy(() =>
    tf.randomUniform([n, 28, 28, 1], 0, 1, "float32", 1)
  );
  const labels = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], "int32");
  const discriminator = convDiscriminator28({
    numClasses: 3,
    channels: [2, 4],
  });
  assertEquals(discriminator.inputs[0].shape, [null, 28, 28, 4]);
  const gan = new GAN({
    generator: convGenerator28({
      noiseDim: 4,
      numClasses: 3,
      channels: [4, 2],
    }),
    discriminator,
    data: [images, labels],
    numClasses: 3,
    noiseDim: 4,
  });
  const sampler = batchSampler([images, labels], 4, { seed: 0 });
  const opt = tf.train.sgd(0.1);
  const g0 = snapshot(gan.generator);
  tf.tidy(() => trainStep(gan.discriminatorObjective(), opt, sampler.next()));
  assert(!changed(g0, gan.generator));
  const d0 = snapshot(gan.discriminator);
  tf.tidy(() => trainStep(gan.generatorObjective(), opt, sampler.next()));
  assert(!changed(d0, gan.discriminator));
  assert(changed(g0, gan.generator));
  const s = gan.sample(6, { seed: 2, labels: [0, 1, 2, 0, 1, 2] });
  assertEquals(s.shape, [6, 28, 28, 1]);
  assert(s.dataSync().every((x) => x >= 0 && x <= 1), "sigmoid output");
  s.dispose();
  gan.dispose();
  opt.dispose();
  tf.dispose([images, labels]);
});

Deno.test("GAN rejects bad data, mismatched networks and bad options before keeping anything", () => {
  const { points, labels } = makeRing({ n: 64, seed: 3 });
  const G = mlpGenerator({ noiseDim: 2, outputDim: 2, hidden: [4], seed: 1 });
  const D = mlpDiscriminator({ inputDim: 2, hidden: [4], seed: 2 });
  const wideD = mlpDiscriminator({ inputDim: 3, hidden: [4] });
  const nanData = tf.tidy(() =>
    tf.concat([points.slice(0, 63), tf.tensor2d([[0, NaN]])])
  );
  const badLabels = tf.fill([64], 9, "int32");
  const make = (o: Record<string, unknown>) => () =>
    new GAN({
      generator: G,
      discriminator: D,
      data: points,
      noiseDim: 2,
      ...o,
    });
  const before = tf.memory().numTensors;
  // The NaN is in the last row: found up front, not when a batch draws it.
  assertThrows(make({ data: nanData }), ArgumentError, "GAN", "data", "finite");
  assertThrows(make({ noiseDim: 3 }), ArgumentError, "generator must take");
  assertThrows(make({ inputDropout: 1 }), ArgumentError, "inputDropout");
  assertThrows(make({ numClasses: 8 }), ArgumentError, "without labels");
  assertThrows(
    make({ data: [points, badLabels], numClasses: 8 }),
    ArgumentError,
    "labels[0] is 9",
  );
  assertThrows(make({ data: [points, labels] }), ArgumentError, "numClasses");
  assertThrows(
    make({ discriminator: wideD }),
    ArgumentError,
    "MLP discriminator",
  );
  assertThrows(
    make({ noiseDm: 2 }),
    ArgumentError,
    'did you mean "noiseDim"',
  );
  assertThrows(
    () => new GAN(null as never),
    ArgumentError,
    "GAN",
    "options",
  );
  assertEquals(tf.memory().numTensors, before, "a failed GAN kept tensors");
  const gan = make({})();
  assertThrows(
    () => gan.generatorObjective("wgan" as never),
    ArgumentError,
    "GAN.generatorObjective",
    "loss",
  );
  const d = gan.discriminatorObjective();
  const opt = tf.train.sgd(0.1);
  const empty = tf.zeros([0, 2]);
  const wide = tf.zeros([4, 3]);
  assertThrows(() => trainStep(d, opt, empty), ArgumentError, "empty");
  assertThrows(() => trainStep(d, opt, wide), ArgumentError, "[*, 2]");
  gan.dispose();
  assertThrows(() => gan.sample(2), ArgumentError, "disposed");
  wideD.dispose();
  opt.dispose();
  tf.dispose([points, labels, nanData, badLabels, empty, wide]);
});

Deno.test("network builders check their options (null, typos, bad sizes) before building", () => {
  const before = tf.memory().numTensors;
  assertThrows(
    () => convDiscriminator28(null as never),
    ArgumentError,
    "convDiscriminator28",
  );
  assertThrows(
    () => convGenerator28({ noiseDim: 2, chanels: [2, 2] } as never),
    ArgumentError,
    "convGenerator28",
    'did you mean "channels"',
  );
  assertThrows(
    () => convDiscriminator28({ channels: [4] as never }),
    ArgumentError,
    "channels",
  );
  assertThrows(
    () => mlpGenerator(null as never),
    ArgumentError,
    "mlpGenerator",
  );
  assertThrows(
    () => mlpGenerator({ noiseDim: 2, outputDim: 2, hidden: [4, 0] }),
    ArgumentError,
    "mlpGenerator",
    "hidden[1]",
  );
  assertThrows(
    () => mlpDiscriminator({ inputDim: 2, hiden: [4] } as never),
    ArgumentError,
    'did you mean "hidden"',
  );
  assertEquals(tf.memory().numTensors, before);
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
  assertThrows(
    () => ringQuality([[0, 0]], { sdt: 1 } as never),
    ArgumentError,
    'did you mean "std"',
  );
  tf.dispose([points, labels]);
});

Deno.test("mlpGenerator with batch norm: shapes and seeded weights", () => {
  const make = () =>
    mlpGenerator({
      noiseDim: 3,
      outputDim: 5,
      hidden: [8],
      batchNorm: true,
      seed: 4,
    });
  const a = make();
  const b = make();
  assertEquals(a.outputs[0].shape, [null, 5]);
  assertEquals(snapshot(a), snapshot(b));
  a.dispose();
  b.dispose();
});

Deno.test("a GAN without a seed continues the shared stream of unseeded draws; a seed repeats", () => {
  const { points, labels } = makeRing({ n: 64, seed: 3 });
  const lossOf = (seed?: number) => {
    const gan = new GAN({
      generator: mlpGenerator({ noiseDim: 2, outputDim: 2, hidden: [4] }),
      discriminator: mlpDiscriminator({ inputDim: 2, hidden: [4] }),
      data: points,
      noiseDim: 2,
      seed,
    });
    const loss = scalar(gan.discriminatorObjective().loss(points).total);
    gan.dispose();
    return loss;
  };
  assertEquals(lossOf(5), lossOf(5));
  assert(lossOf() !== lossOf(), "two unseeded GANs drew the same noise");
  tf.dispose([points, labels]);
});

// ---------------------------------------------------------------------------
// R1, the moving average of G, DCGAN builders, sampling from given z

Deno.test("R1 of a linear D is gamma/2 |w|^2 with gradient gamma w (closed form)", () => {
  const D = tf.sequential({
    layers: [tf.layers.dense({
      inputShape: [3],
      units: 1,
      kernelInitializer: "zeros",
      biasInitializer: "zeros",
    })],
  });
  const w = [0.5, -2, 1.5];
  D.layers[0].setWeights([tf.tensor2d(w, [3, 1]), tf.tensor1d([0.7])]);
  const x = tf.tensor2d([[1, 2, 3], [-1, 0, 4], [0.2, 0.1, -5]]);
  const gamma = 3;
  const normSq = w.reduce((s, v) => s + v * v, 0);
  assertAllClose(scalar(r1Penalty(D, x, { gamma })), (gamma / 2) * normSq, {
    rtol: 1e-6,
  });
  const [kernel, bias] = D.trainableWeights.map((v) => v.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(
    () => r1Penalty(D, x, { gamma }),
    [kernel, bias],
  );
  assertAllClose(grads[kernel.name], w.map((v) => [gamma * v]), {
    rtol: 1e-5,
  });
  // The slope does not depend on the bias: no gradient, or a zero one.
  if (grads[bias.name]) assertAllClose(grads[bias.name], [0], { atol: 1e-7 });
  tf.dispose([value, ...Object.values(grads), x]);
  D.dispose();
});

/** Central differences of `f` in a few entries of a variable (restored afterwards). */
function numericEntries(
  f: () => number,
  v: tf.Variable,
  indices: number[],
  eps = 1e-2,
): number[] {
  const base = v.dataSync().slice();
  const at = (index: number, delta: number) => {
    const shifted = base.slice();
    shifted[index] += delta;
    tf.tidy(() => v.assign(tf.tensor(shifted, v.shape)));
    return f();
  };
  const out = indices.map((i) => (at(i, eps) - at(i, -eps)) / (2 * eps));
  tf.tidy(() => v.assign(tf.tensor(base, v.shape)));
  return out;
}

Deno.test("R1 through convolutions: its gradient w.r.t. every kernel matches finite differences", () => {
  // Without activations R1 is a smooth polynomial of the weights, so central
  // differences are exact up to float32: this checks tfjs's second-order
  // gradients of conv2d (Conv2DBackpropInput's own gradient) and dense.
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const D = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [28, 28, 1],
        filters: 2,
        kernelSize: 4,
        strides: 2,
        padding: "same",
        kernelInitializer: init(1),
      }),
      tf.layers.conv2d({
        filters: 3,
        kernelSize: 4,
        strides: 2,
        padding: "same",
        kernelInitializer: init(2),
      }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 1, kernelInitializer: init(3) }),
    ],
  });
  const x = tf.tidy(() => tf.randomUniform([2, 28, 28, 1], 0, 1, "float32", 3));
  const gamma = 2;
  const penalty = () => tf.tidy(() => scalar(r1Penalty(D, x, { gamma })));
  const variables = D.trainableWeights.map((v) => v.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(
    () => r1Penalty(D, x, { gamma }),
    variables,
  );
  // The value: gamma/2 mean |grad_x D|^2, with the input gradient by autodiff.
  const perExample = tf.tidy(() => {
    const g = tf.grad((xx: tf.Tensor) => (D.apply(xx) as tf.Tensor).sum())(x);
    return Array.from(g.square().reshape([2, -1]).sum(1).dataSync());
  });
  assertAllClose(scalar(value), (gamma / 2) * meanOf(perExample), {
    rtol: 1e-5,
  });
  for (const v of [variables[0], variables[2], variables[4]]) {
    const indices = [0, 7, 13];
    const g = grads[v.name].dataSync();
    assertAllClose(
      indices.map((i) => g[i]),
      numericEntries(penalty, v, indices),
      { rtol: 2e-2, atol: 1e-5, message: v.name },
    );
  }
  tf.dispose([x, ...Object.values(grads)]);
  D.dispose();
});

Deno.test("R1 through convDiscriminator28 (leaky ReLUs): the logit layer's gradient matches finite differences", () => {
  // tf.leakyRelu's gradient cannot be differentiated again in tfjs; the
  // builder's leaky ReLU can. Moving the logit layer's kernel changes no
  // ReLU pattern, so R1 is exactly quadratic in it.
  const D = convDiscriminator28({ channels: [2, 3], seed: 4 });
  const x = tf.tidy(() => tf.randomUniform([2, 28, 28, 1], 0, 1, "float32", 3));
  const penalty = () => tf.tidy(() => scalar(r1Penalty(D, x, { gamma: 2 })));
  const variables = D.trainableWeights.map((v) => v.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(
    () => r1Penalty(D, x, { gamma: 2 }),
    variables,
  );
  value.dispose();
  for (const v of [variables[0], variables[2], variables[4]]) {
    assert(grads[v.name] !== undefined, `no R1 gradient for ${v.name}`);
  }
  const logitKernel = variables[4];
  const indices = [0, 11, 100];
  const g = grads[logitKernel.name].dataSync();
  assertAllClose(
    indices.map((i) => g[i]),
    numericEntries(penalty, logitKernel, indices),
    { rtol: 2e-2, atol: 1e-5 },
  );
  tf.dispose([x, ...Object.values(grads)]);
  D.dispose();
});

Deno.test("convDiscriminator28's leaky ReLU is tf.leakyRelu with slope 0.2", () => {
  const D = convDiscriminator28({ channels: [2, 2] });
  const act = D.getLayer("discriminator_act1");
  const x = tf.tensor1d([-3, -0.5, 0, 0.25, 4]);
  assertAllClose(act.apply(x) as tf.Tensor, tf.leakyRelu(x, 0.2), {
    rtol: 1e-6,
  });
  D.dispose();
  x.dispose();
});

Deno.test("r1Penalty checks its arguments and does not leak", async () => {
  const D = mlpDiscriminator({ inputDim: 2, hidden: [3] });
  const x = tf.ones([4, 2]);
  await assertNoTensorLeak(() => scalar(r1Penalty(D, x)));
  assertThrows(
    () => r1Penalty(D, x, { gama: 1 } as never),
    ArgumentError,
    "r1Penalty",
    'did you mean "gamma"',
  );
  assertThrows(() => r1Penalty(D, x, { gamma: -1 }), ArgumentError, "gamma");
  assertThrows(() => r1Penalty(D, x, null as never), ArgumentError);
  assertThrows(
    () => r1Penalty({} as never, x),
    ArgumentError,
    "discriminator",
  );
  assertThrows(() => r1Penalty(D, tf.zeros([0, 2])), ArgumentError, "empty");
  D.dispose();
  x.dispose();
});

Deno.test("the D objective with r1 adds gamma/2 mean |grad_x D(x)|^2 on the real batch", () => {
  const real = tf.tensor2d([[1, 2], [-1, 0.5], [0.3, -2], [2, 2]]);
  const gan = new GAN({
    generator: zeroGenerator(2, 2),
    discriminator: mlpDiscriminator({ inputDim: 2, hidden: [5], seed: 4 }),
    data: real,
    noiseDim: 2,
    r1: 4,
    seed: 1,
  });
  const out = gan.discriminatorObjective().loss(real);
  const expectedR1 = scalar(r1Penalty(gan.discriminator, real, { gamma: 4 }));
  const logits = (x: tf.Tensor) =>
    tf.tidy(() => (gan.discriminator.predict(x) as tf.Tensor).reshape([-1]));
  const plain = tf.tidy(() =>
    discriminatorLoss(logits(real), logits(tf.zeros([4, 2]))).dataSync()[0]
  );
  assertAllClose(scalar(out.terms!.r1), expectedR1, { rtol: 1e-5 });
  assertAllClose(scalar(out.total), plain + expectedR1, { rtol: 1e-5 });
  tf.dispose([out.terms!.dReal, out.terms!.dFake]);
  assertThrows(
    () =>
      new GAN({
        generator: zeroGenerator(2, 2),
        discriminator: mlpDiscriminator({ inputDim: 2, hidden: [5] }),
        data: real,
        noiseDim: 2,
        r1: -1,
      }),
    ArgumentError,
    "r1",
  );
  gan.dispose();
  real.dispose();
});

Deno.test("ExponentialMovingAverage follows its closed form and restores the weights", async () => {
  const v = tf.variable(tf.tensor1d([1, -2]));
  const decay = 0.9;
  const ema = new ExponentialMovingAverage([v], { decay });
  // The weight takes the values w_1..w_n; the average starts at w_0:
  // a_n = decay^n w_0 + (1 - decay) sum_t decay^(n - t) w_t.
  const ws = [[1, -2], [3, 0], [-1, 5], [2, 2]];
  await assertNoTensorLeak(() => {
    for (const w of ws.slice(1)) {
      tf.tidy(() => v.assign(tf.tensor1d(w)));
      ema.update();
    }
  });
  const n = ws.length - 1;
  const closed = [0, 1].map((j) =>
    decay ** n * ws[0][j] +
    ws.slice(1).reduce(
      (s, w, t) => s + (1 - decay) * decay ** (n - 1 - t) * w[j],
      0,
    )
  );
  const [average] = ema.values();
  assertAllClose(average, closed, { rtol: 1e-6 });
  average.dispose();
  // withAverages swaps the average in and the current weight back, also on a throw.
  const inside = ema.withAverages(() => Array.from(v.dataSync()));
  assertAllClose(inside, closed, { rtol: 1e-6 });
  assertAllClose(v, ws[n]);
  assertThrows(() =>
    ema.withAverages(() => {
      throw new Error("boom");
    })
  );
  assertAllClose(v, ws[n]);
  assertThrows(
    () => new ExponentialMovingAverage([v], { decay: 1 }),
    ArgumentError,
    "decay",
  );
  assertThrows(
    () => new ExponentialMovingAverage([v], { decy: 0.5 } as never),
    ArgumentError,
    'did you mean "decay"',
  );
  assertThrows(
    () => new ExponentialMovingAverage([1] as never),
    ArgumentError,
    "source",
  );
  ema.dispose();
  assertThrows(() => ema.update(), ArgumentError, "disposed");
  v.dispose();
});

Deno.test("a GAN with emaDecay averages G after each G step and samples from the average", () => {
  const points = tf.tidy(() => tf.randomNormal([64, 2], 0, 1, "float32", 1));
  const gan = new GAN({
    generator: mlpGenerator({
      noiseDim: 2,
      outputDim: 2,
      hidden: [4],
      seed: 1,
    }),
    discriminator: mlpDiscriminator({ inputDim: 2, hidden: [4], seed: 2 }),
    data: points,
    noiseDim: 2,
    emaDecay: 0.5,
    seed: 3,
  });
  const w0 = snapshot(gan.generator);
  const opt = adam(1e-2);
  const sampler = batchSampler(points, 16, { seed: 0 });
  tf.tidy(() => trainStep(gan.generatorObjective(), opt, sampler.next()));
  const w1 = snapshot(gan.generator);
  const averages = gan.generatorAverage!.values();
  averages.forEach((a, i) =>
    assertAllClose(a, Array.from(w0[i], (v, j) => 0.5 * v + 0.5 * w1[i][j]), {
      rtol: 1e-5,
      atol: 1e-7,
    })
  );
  // sample() uses the average by default; average: false the current G.
  const z = tf.tidy(() => tf.randomNormal([5, 2], 0, 1, "float32", 9));
  const variables = gan.generator.trainableWeights.map((w) =>
    w.read() as tf.Variable
  );
  const current = variables.map((v) => tf.clone(v));
  const byHand = (weights: tf.Tensor[]) => {
    variables.forEach((v, i) => v.assign(weights[i]));
    const out = tf.tidy(() =>
      Array.from((gan.generator.predict(z) as tf.Tensor).dataSync())
    );
    variables.forEach((v, i) => v.assign(current[i]));
    return out;
  };
  assertAllClose(gan.generateFrom(z), byHand(averages), { rtol: 1e-5 });
  assertAllClose(gan.generateFrom(z, { average: false }), byHand(current), {
    rtol: 1e-5,
  });
  assertAllClose(
    snapshot(gan.generator).flatMap((w) => [...w]),
    current.flatMap((w) => [...w.dataSync()]),
  );
  tf.dispose([...averages, ...current, z, points]);
  opt.dispose();
  gan.dispose();
});

/** A small convolutional GAN with a batch-norm G on 8 random images (both the caller's to dispose). */
function tinyBatchNormGAN(): { images: tf.Tensor; gan: GAN } {
  const images = tf.tidy(() =>
    tf.randomUniform([8, 28, 28, 1], 0, 1, "float32", 1)
  );
  const gan = new GAN({
    generator: convGenerator28({
      noiseDim: 4,
      channels: [4, 2],
      batchNorm: true,
      seed: 1,
    }),
    discriminator: convDiscriminator28({ channels: [2, 2], seed: 2 }),
    data: images,
    noiseDim: 4,
  });
  return { images, gan };
}

Deno.test("generateFrom: given z, one image each; a batch-norm G is normalised as in a full batch", () => {
  const { images, gan } = tinyBatchNormGAN();
  const z = tf.tidy(() => tf.randomNormal([1, 4], 0, 1, "float32", 5));
  // Ten copies of one z: with the batch's own statistics alone every pixel
  // would be normalised to the same value; the reference batch prevents it.
  const copies = tf.tidy(() => tf.tile(z, [10, 1]));
  const ten = gan.generateFrom(copies);
  const one = gan.generateFrom(z);
  assertEquals(ten.shape, [10, 28, 28, 1]);
  const spread = tf.tidy(() =>
    tf.moments(one.reshape([-1])).variance.dataSync()[0]
  );
  assert(spread > 1e-6, `a single image is flat (pixel variance ${spread})`);
  assertAllClose(ten.slice(0, 1), one, { rtol: 1e-2, atol: 1e-3 });
  assertThrows(
    () => gan.generateFrom(tf.zeros([2, 3])),
    ArgumentError,
    "GAN.generateFrom",
    "z",
  );
  assertThrows(
    () => gan.generateFrom(z, { average: true }),
    ArgumentError,
    "emaDecay",
  );
  tf.dispose([z, copies, ten, one, images]);
  gan.dispose();
});

Deno.test("convGenerator28 with batch norm: DCGAN's layers, images in [0, 1], seeded", () => {
  const make = () =>
    convGenerator28({
      noiseDim: 8,
      channels: [8, 4],
      batchNorm: true,
      seed: 2,
    });
  const a = make();
  const b = make();
  assertEquals(
    a.layers.map((l) => l.getClassName()),
    [
      "Dense",
      "Reshape",
      "BatchStatisticsNorm",
      "ReLU",
      "Conv2DTranspose",
      "BatchStatisticsNorm",
      "ReLU",
      "Conv2DTranspose",
    ],
  );
  // Its batch norm normalises each channel with the batch's statistics,
  // exactly as tf.layers.batchNormalization does in training mode.
  const x = tf.tidy(() => tf.randomNormal([5, 7, 7, 8], 2, 3, "float32", 4));
  const reference = tf.layers.batchNormalization({ epsilon: 1e-3 });
  assertAllClose(
    a.getLayer("generator_bn1").apply(x) as tf.Tensor,
    reference.apply(x, { training: true }) as tf.Tensor,
    { rtol: 1e-4, atol: 1e-5 },
  );
  const gradOf = (layer: tf.layers.Layer) =>
    tf.grad((t: tf.Tensor) =>
      tf.sum(tf.mul(layer.apply(t, { training: true }) as tf.Tensor, t))
    )(x);
  assertAllClose(
    gradOf(a.getLayer("generator_bn1")),
    gradOf(reference),
    { rtol: 1e-3, atol: 1e-4 },
  );
  reference.dispose();
  x.dispose();
  assertEquals(a.outputs[0].shape, [null, 28, 28, 1]);
  assertEquals(snapshot(a), snapshot(b));
  const out = tf.tidy(() =>
    a.apply(tf.randomNormal([6, 8]), { training: true }) as tf.Tensor
  );
  const [lo, hi] = tf.tidy(
    () => [out.min().dataSync()[0], out.max().dataSync()[0]],
  );
  assert(lo >= 0 && hi <= 1);
  out.dispose();
  assertThrows(
    () => convGenerator28({ noiseDim: 8, batchNorm: 1 as never }),
    ArgumentError,
    "batchNorm",
  );
  a.dispose();
  b.dispose();
});

Deno.test("spectralNorm: the largest singular value (closed forms, a conv kernel, SVD of 2x2)", async () => {
  const norm = (rows: number[][]) => {
    const t = tf.tensor2d(rows);
    const s = spectralNorm(t);
    t.dispose();
    return s;
  };
  assertAllClose(norm([[3, 0], [0, 1]]), 3, { rtol: 1e-5 });
  // A rank-1 matrix u v^T stretches by |u| |v|.
  assertAllClose(
    norm([[1 * 2, 1 * -1], [2 * 2, 2 * -1], [-2 * 2, -2 * -1]]),
    3 * Math.sqrt(5),
    {
      rtol: 1e-5,
    },
  );
  // 2x2: sigma_max^2 is the larger eigenvalue of A^T A.
  const a = [[1, 2], [3, 4]];
  const [p, q, r] = [1 + 9, 2 + 12, 4 + 16]; // A^T A = [[p, q], [q, r]]
  const top = (p + r) / 2 + Math.sqrt(((p - r) / 2) ** 2 + q * q);
  assertAllClose(norm(a), Math.sqrt(top), { rtol: 1e-5 });
  // A conv kernel [h, w, in, out] is the matrix [h * w * in, out].
  const kernel = tf.tidy(() =>
    tf.randomNormal([4, 4, 2, 3], 0, 1, "float32", 7)
  );
  const flat = kernel.reshape([32, 3]);
  const gram = tf.tidy(() =>
    Array.from(tf.matMul(flat, flat, true, false).dataSync())
  );
  // The largest eigenvalue of the 3x3 Gram matrix by many power steps in float64.
  let v = [1, 0.5, 0.25];
  for (let i = 0; i < 500; i++) {
    const next = [0, 1, 2].map((i) =>
      gram[3 * i] * v[0] + gram[3 * i + 1] * v[1] + gram[3 * i + 2] * v[2]
    );
    const n = Math.hypot(...next);
    v = next.map((x) => x / n);
  }
  const lambda = [0, 1, 2].reduce(
    (s, i) =>
      s +
      v[i] *
        (gram[3 * i] * v[0] + gram[3 * i + 1] * v[1] + gram[3 * i + 2] * v[2]),
    0,
  );
  await assertNoTensorLeak(() => {
    assertAllClose(spectralNorm(kernel), Math.sqrt(lambda), { rtol: 1e-4 });
  });
  assertThrows(
    () => spectralNorm(tf.tensor1d([1, 2])),
    ArgumentError,
    "spectralNorm",
    "kernel",
  );
  assertThrows(
    () => spectralNorm(kernel, { iteration: 3 } as never),
    ArgumentError,
    'did you mean "iterations"',
  );
  tf.dispose([kernel, flat]);
});

Deno.test("lazy R1: the penalty, weighted by r1Every, on every r1Every-th D step only", () => {
  const real = tf.tensor2d([[1, 2], [-1, 0.5], [0.3, -2], [2, 2]]);
  const gan = new GAN({
    generator: zeroGenerator(2, 2),
    discriminator: mlpDiscriminator({ inputDim: 2, hidden: [5], seed: 4 }),
    data: real,
    noiseDim: 2,
    r1: 2,
    r1Every: 3,
  });
  const objective = gan.discriminatorObjective();
  const full = scalar(r1Penalty(gan.discriminator, real, { gamma: 6 }));
  const seen = [0, 1, 2, 3].map(() => {
    const out = objective.loss(real);
    const r1 = out.terms!.r1 ? scalar(out.terms!.r1) : null;
    tf.dispose([out.total, ...Object.values(out.terms!)]);
    return r1;
  });
  assertEquals(seen.map((v) => v === null), [false, true, true, false]);
  assertAllClose(seen[0]!, full, { rtol: 1e-5 });
  assertThrows(
    () =>
      new GAN({
        generator: zeroGenerator(2, 2),
        discriminator: mlpDiscriminator({ inputDim: 2, hidden: [5] }),
        data: real,
        noiseDim: 2,
        r1Every: 0,
      }),
    ArgumentError,
    "r1Every",
  );
  gan.dispose();
  real.dispose();
});

Deno.test("sample with truncation psi decodes psi z, also through a batch-norm G (virtual batch)", () => {
  const { images, gan } = tinyBatchNormGAN();
  const z = tf.tidy(() => randomNormal([70, 4], { seed: 3 }));
  const half = tf.tidy(() => tf.mul(z, 0.5));
  // The same draw as sample's own: the seed's first 70 x 4 normals.
  const sampled = gan.sample(70, { seed: 3, truncation: 0.5 });
  assertAllClose(sampled, gan.generateFrom(half), { rtol: 1e-5, atol: 1e-6 });
  // Batch norm does not undo the scaling: the reference batch sets the statistics.
  const full = gan.sample(70, { seed: 3 });
  const gap = tf.tidy(() =>
    tf.max(tf.abs(tf.sub(full, sampled))).dataSync()[0]
  );
  assert(gap > 1e-3, `truncation changed nothing (largest difference ${gap})`);
  assertThrows(
    () => gan.sample(2, { truncation: 0 }),
    ArgumentError,
    "truncation",
  );
  tf.dispose([z, half, sampled, full, images]);
  gan.dispose();
});
