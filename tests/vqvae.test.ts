import * as tf from "@tensorflow/tfjs";
import { stopGradient, straightThrough } from "../lib/autodiff.ts";
import { initBackend } from "../lib/backend.ts";
import { randomNormal, randomUniform } from "../lib/random.ts";
import { ArgumentError } from "../lib/validate.ts";
import { quantize } from "../lib/vq.ts";
import {
  assignedMeans,
  batchSampler,
  codesInBatches,
  codeUsage,
  loadVQVAERun,
  roundedJSON,
  saveVQVAERun,
  straightThroughTable,
  trainVQVAEVariants,
  vectorQuantize,
  VectorQuantizer,
  VQVAE,
  vqvaeSizes,
} from "../lib/vqvae.ts";
import { countParameters } from "../lib/nn.ts";
import { makeTestDir } from "./temp.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
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
    assertEquals(q.recordUsage([2, 1, 0, 0], h), []);
    assertEquals(q.recordUsage([2, 0, 1, 0], h), []); // code 2 used: its clock restarts
    assertEquals(Array.from(q.idleSteps()), [0, 1, 0, 2]);
    assertEquals(q.recordUsage([3, 0, 0, 0], h), [3]);
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
    for (let i = 0; i < 10; i++) assertEquals(never.recordUsage([1, 0], h), []);
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
    const q = new VectorQuantizer({ numCodes: 2, dim: 2 });
    assertThrows(() => q.initFromBatch(h), ArgumentError, "d = 2");
    q.dispose();
    const model = new VQVAE({ channels: [2, 2], dim: 2, numCodes: 4 });
    assertThrows(
      () => model.trainStep(tf.zeros([2, 28, 28, 3]) as tf.Tensor4D),
      ArgumentError,
      "images",
      "[*, 28, 28, 1]",
    );
    const bad = tf.fill([1, 28, 28, 1], NaN) as tf.Tensor4D;
    assertThrows(
      () => model.trainStep(bad),
      ArgumentError,
      "trainStep",
      "finite",
    );
    assertThrows(
      () => model.decodeCodes(tf.fill([1, 7, 7], 9, "int32")),
      ArgumentError,
      "codes must be in [0, 3]",
    );
    tf.dispose(bad);
    model.dispose();
  } finally {
    tf.dispose([h, cb, empty, nanH, good]);
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
    model.trainStep(x); // first step creates optimizer slots and the k-means codebook
    const first = model.evaluate(x).mse;
    await assertNoTensorLeak(() => {
      for (let i = 0; i < 100; i++) {
        const m = model.trainStep(x);
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
    model.dispose();
  }
  x.dispose();
});

Deno.test("VQ-VAE save/load round trip; saving never overwrites", async () => {
  const dir = await Deno.makeTempDir({ dir: "build" });
  const x = randomUniform([4, 28, 28, 1], { seed: 2 }) as tf.Tensor4D;
  const model = new VQVAE({
    channels: [4, 8],
    dim: 4,
    numCodes: 8,
    update: "ema",
    seed: 5,
  });
  try {
    for (let i = 0; i < 3; i++) model.trainStep(x);
    await model.save(`${dir}/m`);
    await assertRejects(
      () => model.save(`${dir}/m`),
      ArgumentError,
      "already exists",
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
  } finally {
    model.dispose();
    x.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("batchSampler: seeded epochs that cover every example once", () => {
  const data = tf.range(0, 10).reshape([10, 1]);
  const a = batchSampler(data, 3, { seed: 4 });
  const b = batchSampler(data, 3, { seed: 4 });
  const seen: number[] = [];
  for (let i = 0; i < 3; i++) {
    const [x, y] = [a.next(), b.next()];
    assertEquals(
      Array.from(x.dataSync()),
      Array.from(y.dataSync()),
      "same seed, same batches",
    );
    seen.push(...x.dataSync());
    tf.dispose([x, y]);
  }
  assertEquals(a.epoch, 0);
  assertEquals(new Set(seen).size, 9, "no example twice within an epoch");
  a.next().dispose(); // only 1 left: a new epoch starts
  assertEquals(a.epoch, 1);
  assertThrows(() => batchSampler(data, 11), ArgumentError, "batchSize");
  data.dispose();
});

// ---------------------------------------------------------------------------
// Notebook 03 helpers

const tiny = { channels: [4, 8] as [number, number], dim: 4, numCodes: 8 };

Deno.test("vqvaeSizes: the 7x7 grid of d-vectors and the parameter counts", async () => {
  const model = new VQVAE({ ...tiny, seed: 1 });
  try {
    let sizes = vqvaeSizes(model);
    await assertNoTensorLeak(() => {
      sizes = vqvaeSizes(model);
    });
    assertEquals(sizes.latentShape, [1, 7, 7, 4]);
    assertEquals(sizes.positions, 49);
    assertEquals(sizes.dim, 4);
    assertEquals(sizes.numCodes, 8);
    assertEquals(sizes.codebookParameters, 32);
    assertEquals(sizes.encoderParameters, countParameters(model.encoder));
    assertEquals(sizes.decoderParameters, countParameters(model.decoder));
    // Encoder: 4x4 convs 1->4, 4->8 and a 1x1 conv 8->4, each with biases.
    assertEquals(
      sizes.encoderParameters,
      (16 * 1 * 4 + 4) + (16 * 4 * 8 + 8) + (8 * 4 + 4),
    );
    assertThrows(
      () => vqvaeSizes({} as unknown as VQVAE),
      ArgumentError,
      "model",
    );
  } finally {
    model.dispose();
  }
});

Deno.test("straightThroughTable: zero for straight-through forms, not for the plain quantizer", async () => {
  const h = randomNormal([6, 3], { seed: 21 });
  const cb = randomNormal([4, 3], { seed: 22 }) as tf.Tensor2D;
  const up = randomNormal([6, 3], { seed: 23 });
  const q = (a: tf.Tensor) => vectorQuantize(stopGradient(a), cb).quantized;
  const forms = {
    "straightThrough(h, q)": (a: tf.Tensor) => straightThrough(a, q(a)),
    "q alone": q,
    "identity": (a: tf.Tensor) => a.clone(),
  };
  let rows = straightThroughTable(forms, q, h, up);
  await assertNoTensorLeak(() => {
    rows = straightThroughTable(forms, q, h, up);
  });
  const maxUp = Math.max(...Array.from(up.abs().dataSync()));
  const maxMove = tf.tidy(() => q(h).sub(h).abs().max().dataSync()[0]);
  assertEquals(rows.map((r) => r.form), Object.keys(forms));
  assertEquals(rows[0]["max |value - q|"], 0);
  assertEquals(rows[0]["max |grad - upstream|"], 0);
  // The quantizer alone: the right value, but a zero gradient (error = |up|).
  assertEquals(rows[1]["max |value - q|"], 0);
  assertAllClose([rows[1]["max |grad - upstream|"]], [maxUp]);
  // The identity: the right gradient, but the value of h.
  assertAllClose([rows[2]["max |value - q|"]], [maxMove]);
  assertEquals(rows[2]["max |grad - upstream|"], 0);
  for (const r of rows) assertEquals(r["max |grad of q itself|"], 0);
  assertThrows(
    () => straightThroughTable({}, q, h, up),
    ArgumentError,
    "forms",
  );
  const wrong = tf.zeros([2, 3]);
  assertThrows(
    () => straightThroughTable(forms, q, h, wrong),
    ArgumentError,
    "upstream",
  );
  tf.dispose([h, cb, up, wrong]);
});

Deno.test("assignedMeans: the k-means update of the notebook's 2-D example", () => {
  const h = tf.tensor2d([[0, 0], [1, 0.4], [0.5, 1], [3, 3], [4, 2.6], [
    3.4,
    3.6,
  ]]);
  const e = tf.tensor2d([[1.5, 1.6], [2.2, 2.2]]);
  const means = assignedMeans(h, e);
  assertAllClose(means, [[0.5, 1.4 / 3], [10.4 / 3, 9.2 / 3]], {
    atol: 1e-6,
  });
  // A code far from every vector gets no vector: 0 / 0.
  const far = tf.tensor2d([[0, 0], [100, 100]]);
  const lonely = assignedMeans(tf.tensor2d([[1, 1], [2, 2]]), far);
  const v = Array.from(lonely.dataSync());
  assertAllClose(v.slice(0, 2), [1.5, 1.5]);
  assert(v.slice(2).every(Number.isNaN), `empty code: ${v}`);
  const flat = tf.zeros([3]);
  assertThrows(
    () => assignedMeans(flat as unknown as tf.Tensor2D, e),
    ArgumentError,
    "h",
  );
  tf.dispose([h, e, means, far, lonely, flat]);
});

Deno.test("roundedJSON: rounded rows as JSON", () => {
  const t = tf.tensor2d([[0.5, 1.4 / 3], [-2 / 3, 0]]);
  assertEquals(roundedJSON(t), "[[0.5,0.467],[-0.667,0]]");
  assertEquals(roundedJSON([[1.25, 2]], 1), "[[1.3,2]]");
  assertThrows(() => roundedJSON(t, -1), ArgumentError, "digits");
  const v = tf.zeros([2]);
  assertThrows(() => roundedJSON(v), ArgumentError, "t");
  tf.dispose([t, v]);
});

Deno.test("saveVQVAERun / loadVQVAERun: round trip, null when absent, never overwrites", async () => {
  const dir = await makeTestDir("vqvae-run-");
  const x = randomUniform([4, 28, 28, 1], { seed: 3 }) as tf.Tensor4D;
  const model = new VQVAE({ ...tiny, seed: 2 });
  try {
    assertEquals(await loadVQVAERun(`${dir}/none`), null);
    const history = { step: [0, 1], recon: [0.5, 0.25] };
    for (let i = 0; i < 2; i++) model.trainStep(x);
    await saveVQVAERun(model, history, `${dir}/run`);
    await assertRejects(
      () => saveVQVAERun(model, history, `${dir}/run`),
      ArgumentError,
      "already exists",
    );
    const run = await loadVQVAERun(`${dir}/run`);
    assert(run !== null, "saved run not found");
    try {
      assertEquals(run.history, history);
      assertEquals(run.model.steps, 2);
      const [a, b] = [model.codes(x), run.model.codes(x)];
      assertEquals(Array.from(b.dataSync()), Array.from(a.dataSync()));
      tf.dispose([a, b]);
    } finally {
      run.model.dispose();
    }
    await assertRejects(() => loadVQVAERun(""), ArgumentError, "path");
  } finally {
    model.dispose();
    x.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trainVQVAEVariants: each variant equals a hand-written run on the same batches", async () => {
  const images = randomUniform([12, 28, 28, 1], { seed: 4 }) as tf.Tensor4D;
  const base = { ...tiny, deadAfter: 2, seed: 3 };
  const labels: string[] = [];
  let runs: Record<string, Record<string, number[]>> = {};
  await assertNoTensorLeak(async () => {
    runs = await trainVQVAEVariants(
      images,
      base,
      { ema: { update: "ema" }, "no restart": { deadAfter: 0 } },
      {
        steps: 3,
        batchSize: 4,
        run: (step, { steps, label }) => {
          labels.push(label);
          const h: Record<string, number[]> = {};
          for (let i = 0; i < steps; i++) {
            for (const [k, v] of Object.entries(step())) (h[k] ??= []).push(v);
          }
          return Promise.resolve(h);
        },
      },
    );
  });
  assertEquals(labels, ["ema", "no restart"]);
  const quiet = await trainVQVAEVariants(images, base, {
    ema: { update: "ema" },
  }, { steps: 3, batchSize: 4 });
  assertEquals(quiet.ema.step, [0, 1, 2]);
  // By hand: the same options, the same seeded batches.
  const model = new VQVAE({ ...base, update: "ema" });
  const sampler = batchSampler(images, 4, { seed: 0 });
  const recon: number[] = [];
  for (let i = 0; i < 3; i++) {
    const batch = sampler.next() as tf.Tensor4D;
    recon.push(model.trainStep(batch).recon);
    batch.dispose();
  }
  model.dispose();
  assertEquals(runs.ema.recon, recon);
  assertEquals(quiet.ema.recon, recon);
  assertEquals(runs["no restart"].restarted, [0, 0, 0]);
  await assertRejects(
    () => trainVQVAEVariants(images, base, {}, { steps: 0, batchSize: 4 }),
    ArgumentError,
    "steps",
  );
  await assertRejects(
    () => trainVQVAEVariants(images, base, {}, { steps: 1, batchSize: 13 }),
    ArgumentError,
    "batchSize",
  );
  images.dispose();
});

Deno.test("codesInBatches: the same codes as one big batch", async () => {
  const images = randomUniform([7, 28, 28, 1], { seed: 5 }) as tf.Tensor4D;
  const model = new VQVAE({ ...tiny, init: "random", seed: 4 });
  try {
    const first5 = images.slice([0, 0, 0, 0], [5, 28, 28, 1]) as tf.Tensor4D;
    const whole = model.codes(first5);
    let parts = codesInBatches(model, images, { limit: 5, batchSize: 2 });
    parts.dispose();
    await assertNoTensorLeak(() => {
      parts = codesInBatches(model, images, { limit: 5, batchSize: 2 });
    }, { allowed: 1 });
    assertEquals(parts.shape, [5, 7, 7]);
    assertEquals(Array.from(parts.dataSync()), Array.from(whole.dataSync()));
    const all = codesInBatches(model, images);
    assertEquals(all.shape, [7, 7, 7]);
    assertThrows(
      () => codesInBatches(model, images, { limit: 8 }),
      ArgumentError,
      "limit",
    );
    tf.dispose([first5, whole, parts, all]);
  } finally {
    model.dispose();
    images.dispose();
  }
});
