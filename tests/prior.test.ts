import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import {
  causalMask,
  independentCodeBits,
  PixelCNNPrior,
  rateBoundBits,
  uniformCodes,
} from "../lib/prior.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertRejects,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

Deno.test("rate bound and uniform codes", () => {
  assertAllClose(rateBoundBits(64), 49 * 6);
  assertAllClose(rateBoundBits(10, 2, 3), 6 * Math.log2(10));
  const a = uniformCodes(50, 5, { seed: 3 });
  const b = uniformCodes(50, 5, { seed: 3 });
  assertEquals(a.shape, [50, 7, 7]);
  assertEquals(a.dtype, "int32");
  assertEquals(Array.from(a.dataSync()), Array.from(b.dataSync()));
  const v = a.dataSync();
  const seen = new Set(v);
  assertEquals(
    [...seen].sort(),
    [0, 1, 2, 3, 4],
    "all 5 codes appear among 2450 draws",
  );
  tf.dispose([a, b]);
  assertThrows(() => uniformCodes(0, 5), ArgumentError, "uniformCodes", "n");
});

Deno.test("causal masks: A hides the centre, B shows it, nothing after it", () => {
  const a = causalMask(3, "A");
  const b = causalMask(3, "B");
  assertEquals(Array.from(a.dataSync()), [1, 1, 1, 1, 0, 0, 0, 0, 0]);
  assertEquals(Array.from(b.dataSync()), [1, 1, 1, 1, 1, 0, 0, 0, 0]);
  tf.dispose([a, b]);
  assertThrows(() => causalMask(4, "A"), ArgumentError, "odd");
});

Deno.test("the prior is causal: logits at a position ignore that position and later ones", () => {
  const prior = new PixelCNNPrior({
    numCodes: 6,
    channels: 8,
    layers: 2,
    seed: 4,
  });
  try {
    tf.tidy(() => {
      const base = uniformCodes(1, 6, { seed: 1 });
      const before = prior.logits(base).reshape([49, 6])
        .arraySync() as number[][];
      for (const p of [0, 10, 24, 48]) {
        const v = Array.from(base.dataSync());
        v[p] = (v[p] + 1) % 6;
        const after = prior.logits(tf.tensor3d(v, [1, 7, 7], "int32")).reshape([
          49,
          6,
        ])
          .arraySync() as number[][];
        for (let i = 0; i <= p; i++) {
          assertAllClose(after[i], before[i], {
            atol: 1e-6,
            message: `change at ${p} leaked to ${i}`,
          });
        }
        if (p < 48) {
          const moved = after.slice(p + 1).some((row, j) =>
            row.some((x, c) => Math.abs(x - before[p + 1 + j][c]) > 1e-6)
          );
          assert(moved, `a change at ${p} should reach some later position`);
        }
      }
    });
  } finally {
    prior.dispose();
  }
});

Deno.test("bits per image is the summed cross-entropy of the logits, in bits", () => {
  const prior = new PixelCNNPrior({
    numCodes: 5,
    channels: 8,
    layers: 1,
    seed: 2,
  });
  try {
    tf.tidy(() => {
      const codes = uniformCodes(3, 5, { seed: 7 });
      const logp = tf.logSoftmax(prior.logits(codes))
        .arraySync() as number[][][][];
      const z = codes.arraySync();
      let nats = 0;
      for (let n = 0; n < 3; n++) {
        for (let r = 0; r < 7; r++) {
          for (let c = 0; c < 7; c++) nats -= logp[n][r][c][z[n][r][c]];
        }
      }
      assertAllClose(
        prior.bitsPerImage(codes, { batchSize: 2 }),
        nats / 3 / Math.LN2,
        { rtol: 1e-5 },
      );
    });
  } finally {
    prior.dispose();
  }
});

Deno.test("training learns a structured grid distribution far below the rate bound, and samples it", async () => {
  // Two kinds of grids: all code 0, or code 1 everywhere but a code-2 row 3.
  const n = 32;
  const data = new Int32Array(n * 49);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < 49; p++) {
      data[i * 49 + p] = i % 2 === 0 ? 0 : (Math.floor(p / 7) === 3 ? 2 : 1);
    }
  }
  const codes = tf.tensor3d(data, [n, 7, 7], "int32");
  const prior = new PixelCNNPrior({
    numCodes: 4,
    channels: 16,
    layers: 2,
    learningRate: 1e-2,
    seed: 0,
  });
  try {
    const start = prior.bitsPerImage(codes);
    assert(
      Math.abs(start - rateBoundBits(4)) < 0.3 * rateBoundBits(4),
      `untrained: ${start} bits`,
    );
    prior.trainStep(codes); // creates Adam's slots
    await assertNoTensorLeak(() => {
      for (let i = 0; i < 120; i++) prior.trainStep(codes);
    });
    const end = prior.bitsPerImage(codes);
    // The ideal is 1 bit per image (which of the two kinds).
    assert(
      end < 3,
      `trained prior needs ${end} bits per image, expected about 1`,
    );
    // A lower temperature sharpens the learned conditionals toward their modes.
    const samples = prior.sample(8, { seed: 5, temperature: 0.5 });
    const again = prior.sample(8, { seed: 5, temperature: 0.5 });
    assertEquals(
      Array.from(samples.dataSync()),
      Array.from(again.dataSync()),
      "same seed, same samples",
    );
    const grids = samples.arraySync();
    for (const g of grids) {
      const flat = g.flat();
      const ok = flat.every((c) => c === 0) ||
        flat.every((c, p) => c === (Math.floor(p / 7) === 3 ? 2 : 1));
      assert(ok, `sample is neither kind of training grid: ${flat.join("")}`);
    }
    tf.dispose([samples, again]);
  } finally {
    prior.dispose();
    codes.dispose();
  }
});

Deno.test("bad codes give clear errors", () => {
  const prior = new PixelCNNPrior({ numCodes: 4, channels: 4, layers: 0 });
  const big = tf.fill([1, 7, 7], 4, "int32") as tf.Tensor3D;
  const float = tf.zeros([1, 7, 7]) as tf.Tensor3D;
  const wrong = tf.zeros([1, 6, 7], "int32") as tf.Tensor3D;
  try {
    assertThrows(
      () => prior.trainStep(big),
      ArgumentError,
      "trainStep",
      "[0, 3]",
    );
    assertThrows(() => prior.logits(float), ArgumentError, "dtype int32");
    assertThrows(() => prior.bitsPerImage(wrong), ArgumentError, "[*, 7, 7]");
    assertThrows(() => prior.sample(0), ArgumentError, "n");
    assertThrows(
      () => new PixelCNNPrior({ numCodes: 1 }),
      ArgumentError,
      "numCodes",
    );
  } finally {
    tf.dispose([big, float, wrong]);
    prior.dispose();
  }
});

Deno.test("prior save/load round trip; saving never overwrites", async () => {
  const dir = await Deno.makeTempDir({ dir: "build" });
  const prior = new PixelCNNPrior({
    numCodes: 5,
    channels: 8,
    layers: 1,
    seed: 3,
  });
  const codes = uniformCodes(4, 5, { seed: 2 });
  try {
    prior.trainStep(codes);
    await prior.save(`${dir}/p`);
    await assertRejects(
      () => prior.save(`${dir}/p`),
      ArgumentError,
      "already exists",
    );
    const loaded = await PixelCNNPrior.load(`${dir}/p`);
    assertEquals(loaded.config, prior.config);
    assertAllClose(loaded.bitsPerImage(codes), prior.bitsPerImage(codes), {
      rtol: 1e-6,
    });
    loaded.dispose();
  } finally {
    prior.dispose();
    codes.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("independentCodeBits: 0 bits for one code, the rate bound for uniform use", () => {
  const one = tf.fill([3, 7, 7], 5, "int32") as tf.Tensor3D;
  const r1 = independentCodeBits(one, 8);
  assertEquals(r1.perplexity, 1);
  assertEquals(r1.bits, 0);
  // Every code equally often: entropy log2 K per position.
  const even = tf.tensor3d(
    Array.from({ length: 4 * 2 * 4 }, (_, i) => i % 8),
    [4, 2, 4],
    "int32",
  );
  const r2 = independentCodeBits(even, 8);
  assertAllClose([r2.perplexity, r2.bits], [8, rateBoundBits(8, 2, 4)], {
    atol: 1e-9,
  });
  // Two codes with probabilities 1/4, 3/4: H = 0.8113 bits per position.
  const skew = tf.tensor3d([0, 1, 1, 1], [1, 2, 2], "int32");
  const h = -(0.25 * Math.log2(0.25) + 0.75 * Math.log2(0.75));
  assertAllClose([independentCodeBits(skew, 2).bits], [4 * h], { atol: 1e-9 });
  const float = tf.zeros([1, 7, 7]) as tf.Tensor3D;
  assertThrows(() => independentCodeBits(float, 8), ArgumentError, "codes");
  assertThrows(() => independentCodeBits(even, 4), ArgumentError, "indices");
  tf.dispose([one, even, skew, float]);
});
