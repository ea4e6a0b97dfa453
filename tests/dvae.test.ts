import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { batchSampler, loadFashionMNIST } from "../lib/data.ts";
import { bernoulliNLL, DVAE } from "../lib/dvae.ts";
import { klToUniform } from "../lib/gumbel.ts";
import { trainStep } from "../lib/model.ts";
import { adam } from "../lib/optim.ts";
import {
  randomNormal,
  randomUniform,
  resetRandomStream,
} from "../lib/random.ts";
import { NonFiniteLossError, trainLoop } from "../lib/train.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertNotEquals,
  assertRejects,
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

const scalar = (t: tf.Tensor | undefined) => t!.dataSync()[0];

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
  const model = new DVAE({ latents: 6, classes: 4, hidden: [32], seed: 1 });
  tf.tidy(() => {
    const x = batch(8);
    const logits = model.encode(x);
    assertEquals(logits.shape, [8, 6, 4]);
    const { total, terms } = model.loss({ images: x, tau: 0.5, seed: 3 });
    const { recon, kl } = terms!;
    assertAllClose(total, recon.add(kl), { rtol: 1e-6 });
    assertAllClose(kl, klToUniform(logits).sum(1).mean(), { rtol: 1e-6 });
    const k = scalar(kl);
    assert(k >= 0 && k <= 6 * Math.log(4), `KL ${k} in [0, N log K]`);
    // The recon term is the Bernoulli NLL of the decoded relaxed sample.
    assert(scalar(recon) > 0, "a positive cross-entropy");
    // Same seed, same noise, same loss; another seed, another sample.
    const again = model.loss({ images: x, tau: 0.5, seed: 3 }).terms!.recon;
    assertAllClose(again, recon, { atol: 0 });
    const other = model.loss({ images: x, tau: 0.5, seed: 4 }).terms!.recon;
    assertNotEquals(scalar(other), scalar(recon));
    assertEquals(
      model.decode(tf.oneHot(logits.argMax(-1), 4).toFloat()).shape,
      [8, 28, 28, 1],
    );
  });
  model.dispose();
});

Deno.test("DVAE without a seed draws new Gumbel noise every step (from the shared stream)", () => {
  const model = new DVAE({ latents: 6, classes: 4, hidden: [32], seed: 1 });
  tf.tidy(() => {
    const x = batch(8);
    const recon = () => scalar(model.loss({ images: x, tau: 1 }).terms!.recon);
    resetRandomStream(7);
    const a = [recon(), recon(), recon()];
    assertEquals(new Set(a).size, 3, `three different draws: ${a}`);
    resetRandomStream(7);
    assertEquals([recon(), recon(), recon()], a);
    const ev = () => model.evaluate(x).recon;
    assertNotEquals(ev(), ev());
    resetRandomStream();
  });
  model.dispose();
});

Deno.test("DVAE trains with the shared trainStep: the -ELBO drops, without leaking tensors", async () => {
  const model = new DVAE({ latents: 8, classes: 5, hidden: [64], seed: 2 });
  const optimizer = adam(3e-3);
  const x = batch(32);
  const step = (i: number, hard = false) =>
    tf.tidy(() =>
      trainStep(model, optimizer, { images: x, tau: 1, hard, seed: i })
    );
  step(0); // creates the optimizer's slots
  const first = model.evaluate(x, { seed: 1 }).loss;
  await assertNoTensorLeak(() => {
    for (let i = 1; i < 60; i++) {
      const m = step(i, i % 2 === 0);
      assertEquals(Object.keys(m).sort(), ["kl", "loss", "recon"]);
      assertAllClose(m.loss, m.recon + m.kl, { rtol: 1e-5 });
    }
  });
  const last = model.evaluate(x, { seed: 1 }).loss;
  assert(last < first - 40, `-ELBO went from ${first} to ${last}`);
  x.dispose();
  optimizer.dispose();
  model.dispose();
});

Deno.test("trainStep moves a DVAE exactly as Adam minimising DVAE.loss does", () => {
  const a = new DVAE({ latents: 4, classes: 3, hidden: [16], seed: 9 });
  const b = new DVAE({ latents: 4, classes: 3, hidden: [16], seed: 9 });
  const optA = adam(1e-2);
  const optB = adam(1e-2);
  const sampler = batchSampler(images, 16, { seed: 0 });
  for (let i = 0; i < 4; i++) {
    tf.tidy(() => {
      const batch = { images: sampler.next(), tau: 0.8, seed: i };
      const m = trainStep(a, optA, batch);
      const value = optB.minimize(
        () => b.loss(batch).total,
        true,
        b.trainableVariables(),
      );
      assertAllClose(m.loss, scalar(value!), { rtol: 1e-6 });
    });
  }
  a.trainableVariables().forEach((v, i) =>
    assertAllClose(v, b.trainableVariables()[i], { atol: 1e-6, rtol: 1e-5 })
  );
  optA.dispose();
  optB.dispose();
  a.dispose();
  b.dispose();
});

Deno.test("DVAE rejects an empty batch before the step, leaking nothing", async () => {
  const model = new DVAE({ latents: 3, classes: 3, hidden: [8] });
  const optimizer = adam(1e-3);
  const empty = tf.zeros([0, 28, 28, 1]);
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 3; i++) {
      assertThrows(
        () => trainStep(model, optimizer, { images: empty, tau: 1 }),
        ArgumentError,
        "DVAE.loss",
        "at least one image",
      );
      assertThrows(
        () => model.evaluate(empty),
        ArgumentError,
        "DVAE.evaluate",
        "at least one image",
      );
    }
  });
  empty.dispose();
  optimizer.dispose();
  model.dispose();
});

Deno.test("a diverging DVAE stops trainLoop with NonFiniteLossError, not an error about logits", async () => {
  const model = new DVAE({ latents: 3, classes: 3, hidden: [8], seed: 1 });
  const optimizer = adam(1e-3);
  const x = batch(4);
  // What a blown-up step leaves behind: a weight that is NaN.
  const w = model.encoderVariables()[0];
  tf.tidy(() => w.assign(tf.fill(w.shape, NaN)));
  for (const hard of [false, true]) {
    const error = await assertRejects(
      () =>
        trainLoop(
          (i) =>
            tf.tidy(() =>
              trainStep(model, optimizer, { images: x, tau: 1, hard, seed: i })
            ),
          { steps: 3, quiet: true },
        ),
      NonFiniteLossError,
    );
    assertEquals((error as NonFiniteLossError).step, 0);
  }
  x.dispose();
  optimizer.dispose();
  model.dispose();
});

Deno.test("DVAE evaluate: discrete -ELBO, seeded, batch size does not matter for the KL", async () => {
  const model = new DVAE({ latents: 5, classes: 3, hidden: [16], seed: 3 });
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
  const model = new DVAE({ latents: 1, classes: 3, hidden: [8], seed: 4 });
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

Deno.test("DVAE reconstruct, sample, codeUsage; conv and codebook variants", () => {
  for (
    const options of [{ architecture: "conv" as const, classes: 4 }, {
      latents: 5,
      classes: 4,
      hidden: [16],
      codebookDim: 3,
    }]
  ) {
    const model = new DVAE({ ...options, seed: 6 });
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
      const b = { images: x, tau: 0.5, seed: 1 };
      assert(Number.isFinite(scalar(model.loss(b).total)));
      const vars = model.trainableVariables();
      const g = tf.variableGrads(() => model.loss(b).total, vars).grads;
      assertEquals(Object.keys(g).length, vars.length);
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

Deno.test("DVAE rejects bad arguments with clear errors, before making any tensor", () => {
  const before = tf.memory().numTensors;
  const bad: [unknown, string][] = [
    [{ classes: 1 }, "classes"],
    [{ architecture: "conv", latents: 30 }, "49"],
    [{ architecture: "conv", hidden: [8] }, "hidden"],
    [{ architecture: "rnn" }, "architecture"],
    [{ hidden: [0] }, "hidden[0]"],
    [{ hidden: [8, -1] }, "hidden[1]"],
    [{ latent: 4 }, 'did you mean "latents"'],
    [{ codebookDim: 0 }, "codebookDim"],
    [null, "options"],
  ];
  for (const [options, message] of bad) {
    assertThrows(
      () => new DVAE(options as never),
      ArgumentError,
      "DVAE",
      message,
    );
  }
  assertEquals(tf.memory().numTensors, before, "a throwing constructor leaks");
  const model = new DVAE({ latents: 3, classes: 3, hidden: [8] });
  tf.tidy(() => {
    const x = batch(2);
    const loss = (b: unknown) => () => model.loss(b as never);
    assertThrows(loss({ images: x, tau: 0 }), ArgumentError, "tau");
    assertThrows(loss({ images: x }), ArgumentError, "batch.tau");
    assertThrows(loss({ images: x, tau: 1e-46 }), ArgumentError, "rounds");
    assertThrows(loss(x), ArgumentError, "DVAE.loss", "{ images, tau }");
    assertThrows(loss(undefined), ArgumentError, "{ images, tau }");
    assertThrows(
      loss({ images: x, tau: 1, temperature: 1 }),
      ArgumentError,
      "unknown option",
    );
    assertThrows(loss({ image: x, tau: 1 }), ArgumentError, '"images"');
    assertThrows(
      loss({ images: x, tau: 1, hard: 1 }),
      ArgumentError,
      "batch.hard",
    );
    assertThrows(
      loss({ images: x, tau: 1, seed: "s" }),
      ArgumentError,
      "batch.seed",
    );
    assertThrows(loss({ images: x.mul(2), tau: 1 }), ArgumentError, "[0, 1]");
    assertThrows(
      loss({ images: tf.fill([2, 28, 28, 1], NaN), tau: 1 }),
      ArgumentError,
      "[0, 1]",
    );
    assertThrows(
      loss({ images: x.reshape([2, 784]), tau: 1 }),
      ArgumentError,
      "shape",
    );
    assertThrows(
      () => model.decode(tf.zeros([2, 4, 3])),
      ArgumentError,
      "c must have shape",
    );
    assertThrows(() => model.sample(0), ArgumentError, "n");
    assertThrows(
      () => model.evaluate(x, { batchsize: 2 } as never),
      ArgumentError,
      'did you mean "batchSize"',
    );
    assertThrows(
      () => model.reconstruct(x, { mode: "mean" as never }),
      ArgumentError,
      "mode",
    );
    assertThrows(
      () => model.reinforceLoss(x, { baseline: NaN }),
      ArgumentError,
      "baseline",
    );
    assertThrows(
      () => model.codeUsage(x, null as never),
      ArgumentError,
      "DVAE.codeUsage",
    );
  });
  model.dispose();
});
