import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { loadFashionMNIST } from "../lib/data.ts";
import {
  bernoulliNLL,
  compareEncoderEstimators,
  createDVAE,
  dvaeCodeUsageStats,
  dvaeReconstructionMSE,
  encoderGradientStats,
} from "../lib/dvae.ts";
import { klToUniform } from "../lib/gumbel.ts";
import { randomNormal, randomUniform } from "../lib/random.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

const data = await loadFashionMNIST({
  split: "train",
  subset: true,
  limit: 200,
});
const images = data.images;
data.labels.dispose();

function batch(n: number, start = 0): tf.Tensor4D {
  return images.slice([start, 0, 0, 0], [n, 28, 28, 1]);
}

Deno.test("bernoulliNLL matches -sum[x log p + (1-x) log(1-p)] and is stable for large logits", () => {
  tf.tidy(() => {
    const logits = randomNormal([3, 4], { seed: 1, std: 3 });
    const x = randomUniform([3, 4], { seed: 2 });
    const p = tf.sigmoid(logits);
    const direct = x.mul(p.log()).add(
      tf.scalar(1).sub(x).mul(tf.scalar(1).sub(p).log()),
    ).sum(1).neg();
    assertAllClose(bernoulliNLL(logits, x), direct, { rtol: 1e-5, atol: 1e-5 });
    const big = bernoulliNLL(tf.tensor2d([[100, -100]]), tf.tensor2d([[0, 1]]));
    assertAllClose(big, [200], { rtol: 1e-6 });
    assertThrows(
      () => bernoulliNLL(logits, x.slice([0, 0], [2, 4])),
      ArgumentError,
      "same shape",
    );
  });
});

Deno.test("DVAE loss: -ELBO = recon + KL, KL exact and within [0, N log K]", () => {
  const model = createDVAE({ latents: 6, classes: 4, hidden: [32], seed: 1 });
  tf.tidy(() => {
    const x = batch(8);
    const logits = model.encode(x);
    assertEquals(logits.shape, [8, 6, 4]);
    const { loss, recon, kl } = model.loss(x, { tau: 0.5, seed: 3 });
    assertAllClose(loss, recon.add(kl), { rtol: 1e-6 });
    assertAllClose(kl, klToUniform(logits).sum(1).mean(), { rtol: 1e-6 });
    const k = kl.dataSync()[0];
    assert(k >= 0 && k <= 6 * Math.log(4), `KL ${k} in [0, N log K]`);
    // Same seed, same noise, same loss; another seed, another sample.
    assertAllClose(model.loss(x, { tau: 0.5, seed: 3 }).recon, recon, {
      atol: 0,
    });
    assert(
      model.loss(x, { tau: 0.5, seed: 4 }).recon.dataSync()[0] !==
        recon.dataSync()[0],
    );
    assertEquals(
      model.decode(tf.oneHot(logits.argMax(-1), 4).toFloat()).shape,
      [8, 28, 28, 1],
    );
  });
  model.dispose();
});

Deno.test("DVAE trains: the relaxed -ELBO on a fixed batch drops, without leaking tensors", async () => {
  const model = createDVAE({ latents: 8, classes: 5, hidden: [64], seed: 2 });
  const opt = tf.train.adam(3e-3);
  const x = batch(32);
  model.trainStep(x, opt, { tau: 1, seed: 0 }); // creates the optimizer's slots
  const first = model.evaluate(x, { seed: 1 }).loss;
  await assertNoTensorLeak(() => {
    for (let i = 1; i < 60; i++) {
      const m = model.trainStep(x, opt, { tau: 1, hard: i % 2 === 0, seed: i });
      assertAllClose(m.loss, m.recon + m.kl, { rtol: 1e-5 });
    }
  });
  const last = model.evaluate(x, { seed: 1 }).loss;
  assert(last < first - 40, `-ELBO went from ${first} to ${last}`);
  tf.dispose([x]);
  opt.dispose();
  model.dispose();
});

Deno.test("DVAE evaluate: discrete -ELBO, seeded, batch size does not matter for the KL", async () => {
  const model = createDVAE({ latents: 5, classes: 3, hidden: [16], seed: 3 });
  const x = batch(50);
  const a = await assertNoTensorLeak(() =>
    model.evaluate(x, { seed: 7, batchSize: 50 })
  );
  const b = model.evaluate(x, { seed: 7, batchSize: 50 });
  const c = model.evaluate(x, { seed: 7, batchSize: 17 });
  assertEquals(a, b);
  assertAllClose(c.kl, a.kl, { rtol: 1e-5 });
  assertAllClose(a.loss, a.recon + a.kl, { rtol: 1e-6 });
  // The recon term is an expectation over codes: with N = 5, K = 3 there are
  // 243 codes, so check one image against exact enumeration.
  tf.tidy(() => {
    const one = x.slice([0, 0, 0, 0], [1, 28, 28, 1]);
    const q = tf.softmax(model.encode(one)).dataSync();
    const codes: number[][] = [];
    for (let i = 0; i < 243; i++) {
      codes.push([0, 1, 2, 3, 4].map((n) => Math.floor(i / 3 ** n) % 3));
    }
    const c1h = tf.oneHot(tf.tensor2d(codes, [243, 5], "int32"), 3).toFloat();
    const nll = bernoulliNLL(
      model.decode(c1h),
      tf.broadcastTo(one, [243, 28, 28, 1]),
    ).dataSync();
    let exact = 0;
    codes.forEach((code, i) => {
      exact += code.reduce((p, k, n) => p * q[n * 3 + k], 1) * nll[i];
    });
    const mc = model.evaluate(tf.broadcastTo(one, [4000, 28, 28, 1]), {
      seed: 9,
      batchSize: 1000,
    }).recon;
    const spread = Math.max(...nll) - Math.min(...nll);
    assertAllClose(mc, exact, { atol: 4 * spread / Math.sqrt(4000) });
  });
  x.dispose();
  model.dispose();
});

Deno.test("DVAE reinforceLoss: its encoder gradient is an unbiased estimate (exact enumeration, K = 3)", () => {
  const model = createDVAE({ latents: 1, classes: 3, hidden: [8], seed: 4 });
  const vars = model.encoderVariables();
  const bias = vars[vars.length - 1];
  tf.tidy(() => {
    const x = batch(1, 3);
    // The exact -ELBO: sum over the 3 codes of q(c) * recon(c), plus the KL.
    const codes = tf.oneHot(tf.tensor1d([0, 1, 2], "int32"), 3).toFloat()
      .reshape([3, 1, 3]);
    const reconAll = () =>
      bernoulliNLL(model.decode(codes), tf.broadcastTo(x, [3, 28, 28, 1]));
    const exactLoss = () => {
      const logits = model.encode(x);
      const q = tf.softmax(logits).reshape([3]);
      return q.mul(reconAll()).sum().add(
        klToUniform(logits).sum(),
      ) as tf.Scalar;
    };
    const exact = tf.variableGrads(exactLoss, [bias]).grads[bias.name]
      .dataSync();
    // A constant baseline keeps the estimator unbiased and makes the test sharp.
    const q = tf.softmax(model.encode(x)).reshape([3]);
    const baseline = q.mul(reconAll()).sum().dataSync()[0];
    // 20 independent estimates, each the mean of 1000 single-sample ones.
    const x1000 = tf.broadcastTo(x, [1000, 28, 28, 1]);
    const estimates = [...Array(20)].map((_, i) =>
      Array.from(
        tf.variableGrads(
          () => model.reinforceLoss(x1000, { seed: 100 + i, baseline }),
          [bias],
        ).grads[bias.name].dataSync(),
      )
    );
    let sharp = 0;
    for (let j = 0; j < 3; j++) {
      const v = estimates.map((e) => e[j]);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const se = Math.sqrt(
        v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1) / v.length,
      );
      if (se < Math.abs(exact[j]) / 3) sharp++;
      assert(
        Math.abs(mean - exact[j]) < 3 * se,
        `coordinate ${j}: mean ${mean}, exact ${exact[j]}, se ${se}`,
      );
    }
    assert(
      sharp >= 2,
      "the test resolves the gradient (se well below its size)",
    );
  });
  model.dispose();
});

Deno.test("encoderGradientStats: REINFORCE is far noisier than Gumbel-softmax on the dVAE", async () => {
  const model = createDVAE({ latents: 6, classes: 4, hidden: [32], seed: 5 });
  const x = batch(16);
  const gs = await assertNoTensorLeak(() =>
    encoderGradientStats(model, x, {
      estimator: "gumbel",
      draws: 12,
      tau: 1,
      seed: 1,
    })
  );
  const rf = encoderGradientStats(model, x, {
    estimator: "reinforce",
    draws: 12,
    seed: 1,
  });
  assert(
    rf.totalVariance > 10 * gs.totalVariance,
    `variance REINFORCE ${rf.totalVariance} vs GS ${gs.totalVariance}`,
  );
  assert(gs.snr > rf.snr);
  x.dispose();
  model.dispose();
});

Deno.test("DVAE reconstruct, sample, codeUsage; conv and codebook variants", () => {
  for (
    const options of [{ architecture: "conv" as const, classes: 4 }, {
      latents: 5,
      classes: 4,
      hidden: [16],
      codebookDim: 3,
    }]
  ) {
    const model = createDVAE({ ...options, seed: 6 });
    tf.tidy(() => {
      const x = batch(4);
      const n = model.latents;
      assertEquals(model.encode(x).shape, [4, n, 4]);
      for (
        const r of [
          model.reconstruct(x, { seed: 1 }),
          model.reconstruct(x, { mode: "argmax" }),
          model.sample(4, { seed: 2 }),
        ]
      ) {
        assertEquals(r.shape, [4, 28, 28, 1]);
        assert(
          r.min().dataSync()[0] >= 0 && r.max().dataSync()[0] <= 1,
          "probabilities",
        );
      }
      const usage = model.codeUsage(x, { batchSize: 3 });
      assertEquals(usage.length, n);
      usage.forEach((row) =>
        assertAllClose(row.reduce((a, b) => a + b, 0), 1, { atol: 1e-9 })
      );
      const { loss } = model.loss(x, { tau: 0.5, seed: 1 });
      assert(Number.isFinite(loss.dataSync()[0]));
      const g = tf.variableGrads(() =>
        model.loss(x, { tau: 0.5, seed: 1 }).loss, model.variables()).grads;
      assertEquals(Object.keys(g).length, model.variables().length);
      if (model.codebook) {
        assert(
          g[model.codebook.name].abs().sum().dataSync()[0] > 0,
          "the codebook learns",
        );
      }
    });
    model.dispose();
  }
});

Deno.test("DVAE rejects bad arguments with clear errors", () => {
  assertThrows(() => createDVAE({ classes: 1 }), ArgumentError, "classes");
  assertThrows(
    () => createDVAE({ architecture: "conv", latents: 30 }),
    ArgumentError,
    "49",
  );
  assertThrows(
    () => createDVAE({ architecture: "rnn" as "mlp" }),
    ArgumentError,
    "architecture",
  );
  assertThrows(() => createDVAE({ hidden: [0] }), ArgumentError, "hidden[0]");
  const model = createDVAE({ latents: 3, classes: 3, hidden: [8] });
  tf.tidy(() => {
    const x = batch(2);
    assertThrows(() => model.loss(x, { tau: 0 }), ArgumentError, "tau");
    assertThrows(
      () => model.loss(x.mul(2), { tau: 1 }),
      ArgumentError,
      "[0, 1]",
    );
    assertThrows(
      () => model.loss(tf.fill([2, 28, 28, 1], NaN), { tau: 1 }),
      ArgumentError,
      "[0, 1]",
    );
    assertThrows(
      () => model.loss(x.reshape([2, 784]), { tau: 1 }),
      ArgumentError,
      "shape",
    );
    assertThrows(
      () => model.trainStep(x, {} as tf.Optimizer, { tau: 1 }),
      ArgumentError,
      "optimizer",
    );
    assertThrows(
      () => model.decode(tf.zeros([2, 4, 3])),
      ArgumentError,
      "c must have shape",
    );
    assertThrows(() => model.sample(0), ArgumentError, "n");
    assertThrows(
      () =>
        encoderGradientStats(model, x, {
          estimator: "score" as "gumbel",
          draws: 3,
        }),
      ArgumentError,
      "estimator",
    );
  });
  model.dispose();
});

Deno.test("dvaeCodeUsageStats: perplexity K for a uniform row, 1 for a one-hot row", () => {
  const stats = dvaeCodeUsageStats([
    [0.25, 0.25, 0.25, 0.25],
    [1, 0, 0, 0],
    [0.5, 0.5, 0, 0],
  ]);
  assertAllClose(stats.perplexity, [4, 1, 2], { rtol: 1e-12 });
  assertAllClose(stats.meanPerplexity, 7 / 3, { rtol: 1e-12 });
  assertEquals(stats.unused, 5);
  assertThrows(
    () => dvaeCodeUsageStats([]),
    ArgumentError,
    "dvaeCodeUsageStats",
    "usage",
  );
  assertThrows(
    () => dvaeCodeUsageStats([[0.5, 0.5], [1]]),
    ArgumentError,
    "row 1",
  );
  assertThrows(
    () => dvaeCodeUsageStats([[0.5, NaN]]),
    ArgumentError,
    "usage[0][1]",
  );
});

Deno.test("compareEncoderEstimators: the three encoderGradientStats runs, in order", async () => {
  const model = createDVAE({ latents: 4, classes: 3, hidden: [16], seed: 2 });
  const x = batch(8);
  const rows = await assertNoTensorLeak(() =>
    compareEncoderEstimators(model, x, {
      draws: 3,
      tau: 0.5,
      baseline: 300,
      seed: 4,
    })
  );
  assertEquals(rows.map((r) => r.name), [
    "Gumbel-softmax",
    "REINFORCE",
    "REINFORCE + baseline",
  ]);
  const expected = [
    { estimator: "gumbel", tau: 0.5, draws: 3, seed: 4 },
    { estimator: "reinforce", draws: 3, seed: 4 },
    { estimator: "reinforce", draws: 3, seed: 4, baseline: 300 },
  ] as const;
  expected.forEach((options, i) => {
    const s = encoderGradientStats(model, x, options);
    assertAllClose(rows[i].totalVariance, s.totalVariance, { rtol: 1e-12 });
    assertAllClose(rows[i].snr, s.snr, { rtol: 1e-12 });
  });
  assertThrows(
    () =>
      compareEncoderEstimators(model, x, { draws: 3, tau: 0.5, baseline: NaN }),
    ArgumentError,
    "baseline",
  );
  assertThrows(
    () =>
      compareEncoderEstimators(model, x, { draws: 1, tau: 0.5, baseline: 0 }),
    ArgumentError,
    "draws",
  );
  x.dispose();
  model.dispose();
});

Deno.test("dvaeReconstructionMSE: the mean squared error of reconstruct", async () => {
  const model = createDVAE({ latents: 4, classes: 3, hidden: [16], seed: 3 });
  const x = batch(6);
  const mse = await assertNoTensorLeak(() => dvaeReconstructionMSE(model, x));
  const direct = tf.tidy(() => {
    const r = model.reconstruct(x, { mode: "argmax" });
    const d = Array.from(r.sub(x).dataSync());
    return d.reduce((a, v) => a + v * v, 0) / d.length;
  });
  assertAllClose(mse, direct, { rtol: 1e-4 });
  assert(mse > 0 && mse < 1, `MSE of probabilities in [0, 1]: ${mse}`);
  const sampled = dvaeReconstructionMSE(model, x, { mode: "sample", seed: 1 });
  assertAllClose(
    sampled,
    dvaeReconstructionMSE(model, x, { mode: "sample", seed: 1 }),
    { rtol: 0 },
  );
  assertThrows(
    () => dvaeReconstructionMSE({} as never, x),
    ArgumentError,
    "dvaeReconstructionMSE",
    "DVAE",
  );
  assertThrows(
    () => dvaeReconstructionMSE(model, x, { mode: "mean" as never }),
    ArgumentError,
    "mode",
  );
  x.dispose();
  model.dispose();
});
