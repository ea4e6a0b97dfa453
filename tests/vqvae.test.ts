import * as tf from "@tensorflow/tfjs";
import { stopGradient, straightThrough } from "../lib/autodiff.ts";
import { initBackend } from "../lib/backend.ts";
import { batchSampler } from "../lib/data.ts";
import { trainStep } from "../lib/model.ts";
import { adam } from "../lib/optim.ts";
import { randomNormal, randomUniform } from "../lib/random.ts";
import { ArgumentError } from "../lib/validate.ts";
import { quantize } from "../lib/vq.ts";
import {
  codeUsage,
  vectorQuantize,
  VectorQuantizer,
  VQVAE,
} from "../lib/vqvae.ts";
import { makeTestDir } from "./temp.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertNotEquals,
  assertRejects,
  assertThrows,
  numericGradient,
} from "./assert.ts";

await initBackend({ quiet: true });

/** Nearest codebook row of each row, in plain JavaScript (the reference). */
function nearestJS(h: number[][], cb: number[][]): number[] {
  return h.map((row) => {
    let best = 0;
    let bestD = Infinity;
    cb.forEach((c, k) => {
      const d = c.reduce((s, v, j) => s + (v - row[j]) ** 2, 0);
      if (d < bestD) [best, bestD] = [k, d];
    });
    return best;
  });
}

const tiny = { channels: [4, 8] as [number, number], dim: 4, numCodes: 8 };

/** One optimizer per variable group of a VQVAE. */
const optimizers = (lr = 2e-3, codebookLr = lr) => ({
  networks: adam(lr),
  codebook: adam(codebookLr),
});

Deno.test("the three written forms of straight-through agree in value and gradient", () => {
  tf.tidy(() => {
    const h = randomNormal([6, 3], { seed: 11 });
    const cb = randomNormal([4, 3], { seed: 12 }) as tf.Tensor2D;
    const up = randomNormal([6, 3], { seed: 13 });
    // f(A): the nearest codeword, a piecewise-constant function of A.
    const f = (a: tf.Tensor) =>
      quantize(stopGradient(a) as tf.Tensor2D, cb).quantized;
    const forms: Record<string, (a: tf.Tensor) => tf.Tensor> = {
      "hprime.detach() + h - h.detach()": (a) =>
        stopGradient(f(a)).add(a).sub(stopGradient(a)),
      "h + sg(q - h)": (a) => a.add(stopGradient(f(a).sub(a))),
      "A + (f(A) - A).detach()": (a) => a.add(stopGradient(f(a).sub(a))),
      "straightThrough(h, q)": (a) => straightThrough(a, f(a)),
    };
    const q = f(h);
    for (const [name, form] of Object.entries(forms)) {
      assertAllClose(form(h), q, { atol: 1e-6, message: `${name}: value` });
      // The identity expectation: d sum(up * form(h)) / dh = up exactly.
      const g = tf.grad((a: tf.Tensor) => form(a).mul(up).sum())(h);
      assertAllClose(g, up, {
        atol: 1e-7,
        rtol: 0,
        message: `${name}: gradient`,
      });
    }
    // Finite differences of the true map h -> q are zero (piecewise constant):
    // the estimator replaces this useless derivative by the identity.
    const fd = numericGradient((a) => f(a).mul(up).sum() as tf.Scalar, h, 1e-3);
    assertAllClose(Array.from(fd), 0, { atol: 1e-6 });
  });
});

Deno.test("vectorQuantize: nearest codes, straight-through value, losses", () => {
  tf.tidy(() => {
    const h = randomNormal([2, 3, 4], { seed: 1 });
    const cb = randomNormal([5, 4], { seed: 2 }) as tf.Tensor2D;
    const out = vectorQuantize(h, cb);
    const hRows = h.reshape([-1, 4]).arraySync() as number[][];
    const want = nearestJS(hRows, cb.arraySync());
    assertEquals(out.indices.shape, [2, 3]);
    assertEquals(out.indices.dtype, "int32");
    assertEquals(Array.from(out.indices.dataSync()), want);
    const e = tf.gather(cb, want);
    assertAllClose(out.quantized, e.reshape([2, 3, 4]), { atol: 0, rtol: 0 });
    const mse = h.reshape([-1, 4]).sub(e).square().mean().dataSync()[0];
    assertAllClose(out.codebookLoss, mse);
    assertAllClose(out.commitmentLoss, mse);
    assertAllClose(out.loss, 1.25 * mse, { rtol: 1e-5 });
  });
});

Deno.test("codebook and commitment gradients equal their closed forms", () => {
  tf.tidy(() => {
    const n = 8;
    const d = 3;
    const k = 4;
    const h = randomNormal([n, d], { seed: 3 });
    const cb = randomNormal([k, d], { seed: 4 }) as tf.Tensor2D;
    const z = nearestJS(h.arraySync() as number[][], cb.arraySync());
    const e = tf.gather(cb, z);
    const scale = 2 / (n * d);
    // Codebook loss: d/de_k = 2/(n d) sum_{z_i = k} (e_k - h_i); nothing to h.
    const [dhCode, dcCode] = tf.grads((a: tf.Tensor, c: tf.Tensor) =>
      vectorQuantize(a, c as tf.Tensor2D).codebookLoss
    )([h, cb]);
    assertAllClose(dhCode, 0, { atol: 0, rtol: 0 });
    const wantC = tf.unsortedSegmentSum(
      e.sub(h).mul(scale),
      tf.tensor1d(z, "int32"),
      k,
    );
    assertAllClose(dcCode, wantC, { atol: 1e-6 });
    // Commitment loss: d/dh_i = 2/(n d) (h_i - e_{z_i}); nothing to the codebook.
    const [dhCom, dcCom] = tf.grads((a: tf.Tensor, c: tf.Tensor) =>
      vectorQuantize(a, c as tf.Tensor2D).commitmentLoss
    )([h, cb]);
    assertAllClose(dhCom, h.sub(e).mul(scale), { atol: 1e-6 });
    assertAllClose(dcCom, 0, { atol: 0, rtol: 0 });
    // The weighted total: beta on h, codebookWeight on the codebook.
    const [dhTot, dcTot] = tf.grads((a: tf.Tensor, c: tf.Tensor) =>
      vectorQuantize(a, c as tf.Tensor2D, { beta: 0.4, codebookWeight: 3 }).loss
    )([h, cb]);
    assertAllClose(dhTot, h.sub(e).mul(scale * 0.4), { atol: 1e-6 });
    assertAllClose(dcTot, wantC.mul(3), { atol: 1e-6 });
    // The quantized output h + sg(e - h): identity to h, nothing to the
    // codebook (only the codebook loss moves the codes).
    const up = randomNormal([n, d], { seed: 5 });
    const [dhQ, dcQ] = tf.grads((a: tf.Tensor, c: tf.Tensor) =>
      vectorQuantize(a, c as tf.Tensor2D).quantized.mul(up).sum()
    )([h, cb]);
    assertAllClose(dhQ, up, { atol: 0, rtol: 0 });
    assertAllClose(dcQ, 0, { atol: 0, rtol: 0 });
  });
});

Deno.test("the codebook gradient step moves each code toward the mean of its vectors", () => {
  tf.tidy(() => {
    const h = tf.tensor2d([[0, 0], [2, 0], [10, 10], [12, 10]]);
    const cb = tf.tensor2d([[1.5, 0.5], [10, 9]]);
    // Plain gradient descent on the codebook loss with step n d / 2 lands on the means.
    const g = tf.grad((c: tf.Tensor) =>
      vectorQuantize(h, c as tf.Tensor2D).codebookLoss
    )(cb);
    const stepped = cb.sub(g.mul((4 * 2) / 2 / 2));
    assertAllClose(stepped, [[1, 0], [11, 10]], { atol: 1e-5 });
  });
});

Deno.test("EMA update equals a hand computation", () => {
  const q = new VectorQuantizer({
    numCodes: 3,
    dim: 2,
    update: "ema",
    decay: 0.5,
    epsilon: 0.1,
    init: "random",
  });
  try {
    const e0 = q.codebook.arraySync();
    const h = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
    const idx = tf.tensor1d([0, 0, 2], "int32");
    q.emaUpdate(h, idx);
    // Start: N = [1, 1, 1], m = e0. Batch: n = [2, 0, 1], sums [4,6], [0,0], [5,6].
    const N = [0.5 * 1 + 0.5 * 2, 0.5 * 1 + 0, 0.5 * 1 + 0.5 * 1];
    const m = [
      [0.5 * e0[0][0] + 0.5 * 4, 0.5 * e0[0][1] + 0.5 * 6],
      [0.5 * e0[1][0], 0.5 * e0[1][1]],
      [0.5 * e0[2][0] + 0.5 * 5, 0.5 * e0[2][1] + 0.5 * 6],
    ];
    const total = N[0] + N[1] + N[2];
    const smoothed = N.map((c) => ((c + 0.1) / (total + 3 * 0.1)) * total);
    const want = m.map((row, k) => row.map((v) => v / smoothed[k]));
    assertAllClose(q.codebook, want, { rtol: 1e-5, atol: 1e-6 });
    const state = q.emaState()!;
    assertAllClose(state.counts, N);
    assertAllClose(state.sums, m, { atol: 1e-6 });
    tf.dispose([h, idx, state.counts, state.sums]);
    assertThrows(
      () =>
        new VectorQuantizer({ numCodes: 2, dim: 2, init: "random" }).emaUpdate(
          h,
          idx,
        ),
      ArgumentError,
      "ema",
    );
  } finally {
    q.dispose();
  }
});

Deno.test("dead-code restart fires only for codes idle deadAfter steps", () => {
  const q = new VectorQuantizer({
    numCodes: 4,
    dim: 2,
    deadAfter: 3,
    init: "random",
    seed: 3,
  });
  const h = tf.tensor2d([[7, 7], [8, 8], [9, 9]]);
  try {
    const before = q.codebook.arraySync();
    assertEquals(q.restartDeadCodes([2, 1, 0, 0], h), []);
    assertEquals(q.restartDeadCodes([2, 0, 1, 0], h), []); // code 2 used: its clock restarts
    assertEquals(Array.from(q.idleSteps()), [0, 1, 0, 2]);
    assertEquals(q.restartDeadCodes([3, 0, 0, 0], h), [3]);
    const after = q.codebook.arraySync();
    assertEquals(
      after.slice(0, 3),
      before.slice(0, 3),
      "live codes must not move",
    );
    assert(
      [[7, 7], [8, 8], [9, 9]].some((r) =>
        r[0] === after[3][0] && r[1] === after[3][1]
      ),
      `code 3 must restart on a batch vector, got ${after[3]}`,
    );
    assertEquals(Array.from(q.idleSteps()), [0, 2, 1, 0]);
    assertEquals(q.restarts, 1);
    // Without deadAfter nothing ever restarts.
    const never = new VectorQuantizer({ numCodes: 2, dim: 2, init: "random" });
    for (let i = 0; i < 10; i++) {
      assertEquals(never.restartDeadCodes([1, 0], h), []);
    }
    never.dispose();
  } finally {
    h.dispose();
    q.dispose();
  }
});

Deno.test("k-means initialisation puts the codes on the clusters of the first batch", () => {
  const centres = [[-5, -5], [5, 5], [5, -5]];
  const rows: number[][] = [];
  for (let i = 0; i < 60; i++) {
    rows.push(centres[i % 3].map((c, j) => c + 0.01 * ((i * 7 + j * 3) % 5)));
  }
  const h = tf.tensor2d(rows);
  const q = new VectorQuantizer({ numCodes: 3, dim: 2, seed: 1 });
  try {
    assert(!q.initialized);
    q.initFromBatch(h);
    assert(q.initialized);
    const cb = q.codebook.arraySync();
    for (const c of centres) {
      assert(
        cb.some((r) => Math.hypot(r[0] - c[0], r[1] - c[1]) < 0.1),
        `no code near ${c}: ${cb}`,
      );
    }
  } finally {
    h.dispose();
    q.dispose();
  }
});

Deno.test("codeUsage: counts, perplexity and codes used", () => {
  const u = codeUsage([0, 0, 1, 3], 4);
  assertEquals(u.counts, [2, 1, 0, 1]);
  assertEquals(u.used, 3);
  assertAllClose(u.fractionUsed, 0.75);
  assertAllClose(
    u.perplexity,
    Math.exp(-(0.5 * Math.log(0.5) + 2 * 0.25 * Math.log(0.25))),
  );
  assertAllClose(codeUsage([2, 2, 2], 3).perplexity, 1);
  assertAllClose(codeUsage([0, 1, 2], 3).perplexity, 3);
  assertThrows(
    () => codeUsage([0, 5], 4),
    ArgumentError,
    "codeUsage",
    "[0, 3]",
  );
});

Deno.test("codeUsage rejects null, non-integers and out-of-range codes with ArgumentErrors", () => {
  assertThrows(
    () => codeUsage(null as unknown as number[], 4),
    ArgumentError,
    "codeUsage",
    "indices",
  );
  assertThrows(() => codeUsage([0, 1.5], 4), ArgumentError, "[0, 3]");
  assertThrows(() => codeUsage([0], 0), ArgumentError, "numCodes");
});

Deno.test("the quantizer rejects mismatched d, empty codebooks and NaN with clear errors", () => {
  const h = tf.zeros([2, 5, 3]);
  const cb = tf.zeros([4, 2]) as tf.Tensor2D;
  const empty = tf.zeros([0, 3]) as tf.Tensor2D;
  const nanH = tf.tensor2d([[0, NaN, 1]]);
  const good = tf.ones([2, 3]) as tf.Tensor2D;
  try {
    assertThrows(
      () => vectorQuantize(h, cb),
      ArgumentError,
      "vectorQuantize",
      "last axis of h (3)",
      "d = 2",
    );
    assertThrows(
      () => vectorQuantize(h, empty),
      ArgumentError,
      "codebook is empty",
    );
    assertThrows(
      () => vectorQuantize(nanH, good),
      ArgumentError,
      "h must be finite",
      "NaN",
    );
    assertThrows(
      () => vectorQuantize(h, tf.zeros([3]) as unknown as tf.Tensor2D),
      ArgumentError,
      "codebook",
      "rank 2",
    );
    assertThrows(
      () => vectorQuantize(h, good, { beta: -1 }),
      ArgumentError,
      "beta",
    );
    assertThrows(
      () => vectorQuantize(h, good, { bta: 1 } as unknown as { beta: number }),
      ArgumentError,
      'did you mean "beta"',
    );
    assertThrows(
      () => new VectorQuantizer({ numCodes: 0, dim: 2 }),
      ArgumentError,
      "numCodes",
    );
    assertThrows(
      () =>
        new VectorQuantizer({ numCodes: 2, dim: 2, update: "adam" as "ema" }),
      ArgumentError,
      "update",
    );
    assertThrows(
      () => new VectorQuantizer(null as unknown as { numCodes: 1; dim: 1 }),
      ArgumentError,
      "VectorQuantizer",
      "options",
    );
    const q = new VectorQuantizer({ numCodes: 2, dim: 2 });
    assertThrows(() => q.initFromBatch(h), ArgumentError, "d = 2");
    q.dispose();
  } finally {
    tf.dispose([h, cb, empty, nanH, good]);
  }
});

Deno.test("VQVAE options: errors name VQVAE, typos name the closest key, nothing is built on an error", () => {
  const before = tf.memory().numTensors;
  assertThrows(() => new VQVAE({ beta: -1 }), ArgumentError, "VQVAE: beta");
  assertThrows(
    () => new VQVAE({ update: "adam" as "ema" }),
    ArgumentError,
    "VQVAE: update",
  );
  assertThrows(
    () => new VQVAE({ learningrate: 1 } as VQVAEOptionsLike),
    ArgumentError,
    "VQVAE",
    "learningrate",
  );
  assertThrows(
    () => new VQVAE({ deadAftr: 3 } as VQVAEOptionsLike),
    ArgumentError,
    'did you mean "deadAfter"',
  );
  assertThrows(
    () => new VQVAE(null as unknown as undefined),
    ArgumentError,
    "VQVAE",
    "options",
  );
  assertThrows(
    () => new VQVAE({ channels: [4] as unknown as [number, number] }),
    ArgumentError,
    "channels",
  );
  assertThrows(
    () => new VQVAE({ encoder: {} as tf.LayersModel }),
    ArgumentError,
    "encoder must be a tf.LayersModel",
  );
  assertEquals(tf.memory().numTensors, before, "a failed constructor leaks");
});

type VQVAEOptionsLike = ConstructorParameters<typeof VQVAE>[0];

Deno.test("VQVAE.loss rejects bad, empty and non-finite batches before any tensor is made", async () => {
  const model = new VQVAE({ ...tiny, seed: 1 });
  const opt = optimizers();
  const x = randomUniform([4, 28, 28, 1], { seed: 1 }) as tf.Tensor4D;
  const empty = tf.zeros([0, 28, 28, 1]) as tf.Tensor4D;
  const nan = tf.fill([1, 28, 28, 1], NaN) as tf.Tensor4D;
  const wrong = tf.zeros([2, 28, 28, 3]) as tf.Tensor4D;
  try {
    assertThrows(
      () => trainStep(model, opt, x),
      ArgumentError,
      "VQVAE.loss",
      "initCodebook",
    );
    assertThrows(
      () => model.initCodebook(empty),
      ArgumentError,
      "VQVAE.initCodebook",
      "at least",
    );
    model.initCodebook(x);
    trainStep(model, opt, x); // optimizer slots exist from here on
    await assertNoTensorLeak(() => {
      assertThrows(
        () => trainStep(model, opt, empty),
        ArgumentError,
        "VQVAE.loss",
        "empty",
      );
      assertThrows(
        () => trainStep(model, opt, nan),
        ArgumentError,
        "VQVAE.loss",
        "finite",
      );
      assertThrows(
        () => trainStep(model, opt, wrong),
        ArgumentError,
        "images",
        "[*, 28, 28, 1]",
      );
    });
    assertEquals(model.steps, 1, "a rejected batch takes no step");
    assertThrows(
      () => model.decodeCodes(tf.fill([1, 7, 7], 9, "int32")),
      ArgumentError,
      "codes must be in [0, 7]",
    );
    assertThrows(
      () => model.evaluate(x, null as unknown as undefined),
      ArgumentError,
      "VQVAE.evaluate",
    );
  } finally {
    tf.dispose([x, empty, nan, wrong]);
    model.dispose();
  }
});

Deno.test("trainStep on a VQVAE: the codebook group has its own optimizer and learns only from the codebook loss", () => {
  const model = new VQVAE({ ...tiny, init: "random", deadAfter: 0, seed: 2 });
  const x = randomUniform([4, 28, 28, 1], { seed: 2 }) as tf.Tensor4D;
  try {
    const groups = model.trainableVariables();
    assertEquals(groups.codebook, [model.quantizer.codebook]);
    assertEquals(groups.networks.length, 12); // 3 encoder + 3 decoder layers, kernel and bias
    // The gradient the codebook should get: d(codebook loss)/de at the current weights.
    const [codebook0, expected] = tf.tidy(() => {
      const h = model.encode(x);
      const g = tf.grad((e: tf.Tensor) =>
        vectorQuantize(h, e as tf.Tensor2D).codebookLoss
      )(model.quantizer.codebook);
      return [model.quantizer.codebook.clone(), g];
    });
    const encoder0 = model.encoder.weights[0].read().clone();
    const lr = 0.5;
    const opt = { networks: tf.train.sgd(0), codebook: tf.train.sgd(lr) };
    const metrics = tf.tidy(() => trainStep(model, opt, x));
    assertEquals(Object.keys(metrics).sort(), [
      "codebook",
      "commitment",
      "loss",
      "perplexity",
      "recon",
      "restarted",
      "used",
    ]);
    assertAllClose(
      metrics.loss,
      metrics.recon + metrics.codebook + 0.25 * metrics.commitment,
      { rtol: 1e-5 },
    );
    assertAllClose(model.encoder.weights[0].read(), encoder0, { atol: 0 });
    const want = codebook0.sub(expected.mul(lr));
    assertAllClose(model.quantizer.codebook, want, { atol: 1e-6 });
    assertEquals(model.steps, 1);
    tf.dispose([codebook0, expected, encoder0, want]);
  } finally {
    model.dispose();
    x.dispose();
  }
});

Deno.test("EMA mode: the codebook is no optimizer's; afterStep moves it as emaUpdate does", () => {
  const model = new VQVAE({ ...tiny, update: "ema", deadAfter: 0, seed: 3 });
  const twin = new VectorQuantizer({
    numCodes: 8,
    dim: 4,
    update: "ema",
    init: "random",
  });
  const x = randomUniform([4, 28, 28, 1], { seed: 3 }) as tf.Tensor4D;
  try {
    model.initCodebook(x);
    assertEquals(model.trainableVariables().codebook, []);
    // The twin starts from the same codebook and EMA state.
    twin.codebook.assign(model.quantizer.codebook);
    const s = model.quantizer.emaState()!;
    twin.setEmaState(s.counts, s.sums);
    tf.dispose([s.counts, s.sums]);
    const [h, idx] = tf.tidy(() => {
      const h = model.encode(x);
      return [h, twin.forward(h).indices];
    });
    twin.emaUpdate(h, idx);
    tf.tidy(() =>
      trainStep(model, { networks: adam(1e-3), codebook: adam(1e-3) }, x)
    );
    assertAllClose(model.quantizer.codebook, twin.codebook, { atol: 1e-6 });
    tf.dispose([h, idx]);
  } finally {
    model.dispose();
    twin.dispose();
    x.dispose();
  }
});

Deno.test("VQ-VAE training: no tensor leak over 100 steps (gradient and EMA, with restarts)", async () => {
  const x = randomUniform([8, 28, 28, 1], { seed: 9 }) as tf.Tensor4D;
  for (const update of ["gradient", "ema"] as const) {
    const model = new VQVAE({
      channels: [4, 8],
      dim: 4,
      numCodes: 16,
      deadAfter: 5,
      update,
      seed: 1,
    });
    const opt = optimizers();
    model.initCodebook(x);
    trainStep(model, opt, x); // the first step creates the optimizer slots
    const first = model.evaluate(x).mse;
    await assertNoTensorLeak(() => {
      for (let i = 0; i < 100; i++) {
        const m = trainStep(model, opt, x);
        assert(Number.isFinite(m.loss), `loss at step ${i} is ${m.loss}`);
      }
    });
    const last = model.evaluate(x);
    assert(
      last.mse < first,
      `${update}: reconstruction error did not fall (${first} -> ${last.mse})`,
    );
    assert(
      model.quantizer.restarts > 0,
      `${update}: dead codes were never restarted`,
    );
    assertEquals(model.steps, 101);
    model.dispose();
    Object.values(opt).forEach((o) => o.dispose());
  }
  x.dispose();
});

Deno.test("the same seeds and batches give the same run twice", () => {
  const images = randomUniform([12, 28, 28, 1], { seed: 4 }) as tf.Tensor4D;
  const run = () => {
    const model = new VQVAE({ ...tiny, deadAfter: 2, seed: 3 });
    const opt = optimizers();
    model.initCodebook(batchSampler(images, 4, { seed: 0 }).next());
    const sampler = batchSampler(images, 4, { seed: 0 });
    const recon: number[] = [];
    for (let i = 0; i < 4; i++) {
      recon.push(tf.tidy(() => trainStep(model, opt, sampler.next())).recon);
    }
    model.dispose();
    Object.values(opt).forEach((o) => o.dispose());
    return recon;
  };
  const a = run();
  assertEquals(run(), a);
  assertNotEquals(a[0], a[3]);
  images.dispose();
});

/** A 14x14x1 -> 7x7x3 encoder and its mirror (names fixed, so a second pair loads the first's weights). */
function smallNetworks(seed: number) {
  const init = (i: number) => tf.initializers.glorotUniform({ seed: seed + i });
  const encoder = tf.sequential({
    layers: [tf.layers.conv2d({
      inputShape: [14, 14, 1],
      filters: 3,
      kernelSize: 4,
      strides: 2,
      padding: "same",
      kernelInitializer: init(1),
      name: "small_encoder",
    })],
  });
  const decoder = tf.sequential({
    layers: [tf.layers.conv2dTranspose({
      inputShape: [7, 7, 3],
      filters: 1,
      kernelSize: 4,
      strides: 2,
      padding: "same",
      kernelInitializer: init(2),
      name: "small_decoder",
    })],
  });
  return { encoder, decoder };
}

Deno.test("a VQVAE composes given networks: a 14x14 encoder and decoder", async () => {
  const model = new VQVAE({ numCodes: 4, ...smallNetworks(1), seed: 1 });
  const x = randomUniform([6, 14, 14, 1], { seed: 5 }) as tf.Tensor4D;
  const dir = await makeTestDir("vqvae-custom-");
  try {
    assertEquals(model.config.dim, 3, "d is read from the encoder");
    assertEquals(model.imageShape, [14, 14, 1]);
    assertEquals(model.gridShape, [7, 7]);
    model.initCodebook(x);
    const opt = optimizers(1e-2);
    for (let i = 0; i < 3; i++) tf.tidy(() => trainStep(model, opt, x));
    Object.values(opt).forEach((o) => o.dispose());
    const codes = model.codes(x);
    assertEquals(codes.shape, [6, 7, 7]);
    await model.save(`${dir}/m`);
    await assertRejects(
      () => VQVAE.load(`${dir}/m`),
      ArgumentError,
      "its own encoder and decoder",
    );
    const loaded = await VQVAE.load(`${dir}/m`, smallNetworks(7));
    const again = loaded.codes(x);
    assertEquals(Array.from(again.dataSync()), Array.from(codes.dataSync()));
    tf.dispose([codes, again]);
    loaded.dispose();
  } finally {
    model.dispose();
    x.dispose();
    await Deno.remove(dir, { recursive: true });
  }
  const wide = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [7, 7, 5], units: 1 })],
  });
  const before = tf.memory().numTensors;
  assertThrows(
    () => new VQVAE({ decoder: wide }),
    ArgumentError,
    "the decoder takes grids [7,7,5], the encoder makes [7,7,16]",
  );
  assertThrows(
    () => new VQVAE({ encoder: wide, dim: 4 }),
    ArgumentError,
    "dim = 4 differs",
  );
  assertEquals(tf.memory().numTensors, before);
  wide.dispose();
});

Deno.test("VQ-VAE save/load round trip; saving never overwrites; extra files in the same save", async () => {
  const dir = await makeTestDir("vqvae-save-");
  const x = randomUniform([4, 28, 28, 1], { seed: 2 }) as tf.Tensor4D;
  const model = new VQVAE({
    channels: [4, 8],
    dim: 4,
    numCodes: 8,
    update: "ema",
    seed: 5,
  });
  try {
    model.initCodebook(x);
    const opt = optimizers();
    for (let i = 0; i < 3; i++) tf.tidy(() => trainStep(model, opt, x));
    Object.values(opt).forEach((o) => o.dispose());
    await model.save(`${dir}/m`);
    await assertRejects(
      () => model.save(`${dir}/m`),
      ArgumentError,
      "already exists",
    );
    await assertRejects(
      () => model.save(`${dir}/m`, { overwrite: "no" as unknown as boolean }),
      ArgumentError,
      "overwrite must be true or false",
    );
    const loaded = await VQVAE.load(`${dir}/m`);
    try {
      assertEquals(loaded.config, model.config);
      assertEquals(loaded.steps, 3);
      const [a, b] = [model.codes(x), loaded.codes(x)];
      assertEquals(Array.from(a.dataSync()), Array.from(b.dataSync()));
      const [ra, rb] = [model.reconstruct(x), loaded.reconstruct(x)];
      assertAllClose(rb, ra, { atol: 1e-6 });
      const [sa, sb] = [
        model.quantizer.emaState()!,
        loaded.quantizer.emaState()!,
      ];
      assertAllClose(sb.sums, sa.sums);
      tf.dispose([a, b, ra, rb, sa.counts, sa.sums, sb.counts, sb.sums]);
    } finally {
      loaded.dispose();
    }
    // A run: model and history as one save; a refused save leaves nothing, a retry works.
    await Deno.writeTextFile(`${dir}/run.history.json`, "stale");
    const files = { "history.json": JSON.stringify({ recon: [0.5, 0.25] }) };
    await assertRejects(
      () => model.save(`${dir}/run`, { files }),
      ArgumentError,
      "run.history.json already exists",
    );
    assertEquals(
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
        n.startsWith("run")
      ),
      ["run.history.json"],
    );
    await Deno.remove(`${dir}/run.history.json`);
    await model.save(`${dir}/run`, { files });
    assertEquals(
      JSON.parse(await Deno.readTextFile(`${dir}/run.history.json`)),
      { recon: [0.5, 0.25] },
    );
  } finally {
    model.dispose();
    x.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
