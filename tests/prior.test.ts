import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { trainStep } from "../lib/model.ts";
import { adam } from "../lib/optim.ts";
import { causalMask, PixelCNNPrior } from "../lib/prior.ts";
import { ArgumentError } from "../lib/validate.ts";
import { makeTestDir } from "./temp.ts";
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

/** Code grids int32 [n, 7, 7], uniform over numCodes (the test's own reference draw). */
function uniformCodes(
  n: number,
  numCodes: number,
  { seed }: { seed: number },
): tf.Tensor3D {
  return tf.tidy(() =>
    tf.randomUniform([n, 7, 7], 0, numCodes, "int32", seed)
  ) as tf.Tensor3D;
}

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
    seed: 0,
  });
  const optimizer = adam(1e-2);
  try {
    const start = prior.bitsPerImage(codes);
    const bound = 49 * Math.log2(4);
    assert(Math.abs(start - bound) < 0.3 * bound, `untrained: ${start} bits`);
    trainStep(prior, optimizer, codes); // creates Adam's slots
    await assertNoTensorLeak(() => {
      for (let i = 0; i < 120; i++) trainStep(prior, optimizer, codes);
    });
    assertEquals(prior.steps, 121);
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
    optimizer.dispose();
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
      () => trainStep(prior, adam(), big),
      ArgumentError,
      "PixelCNNPrior.loss",
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
  const dir = await makeTestDir("prior-");
  const prior = new PixelCNNPrior({
    numCodes: 5,
    channels: 8,
    layers: 1,
    seed: 3,
  });
  const codes = uniformCodes(4, 5, { seed: 2 });
  try {
    tf.tidy(() => trainStep(prior, adam(), codes));
    await prior.save(`${dir}/p`);
    await assertRejects(
      () => prior.save(`${dir}/p`),
      ArgumentError,
      "already exists",
    );
    await assertRejects(
      () => prior.save(`${dir}/p`, { overwrite: "yes" as unknown as boolean }),
      ArgumentError,
      "overwrite must be true or false",
    );
    const loaded = await PixelCNNPrior.load(`${dir}/p`);
    assertEquals(loaded.config, prior.config);
    assertEquals(loaded.steps, 1);
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

Deno.test("an empty batch of code grids is rejected before any step or tensor", async () => {
  const prior = new PixelCNNPrior({ numCodes: 4, channels: 4, layers: 0 });
  const optimizer = adam(1e-2);
  const empty = tf.zeros([0, 7, 7], "int32") as tf.Tensor3D;
  const codes = uniformCodes(2, 4, { seed: 1 });
  try {
    trainStep(prior, optimizer, codes); // optimizer slots exist from here on
    const weights = prior.trainableVariables().map((v) => v.clone());
    await assertNoTensorLeak(() => {
      assertThrows(
        () => trainStep(prior, optimizer, empty),
        ArgumentError,
        "PixelCNNPrior.loss",
        "empty batch",
      );
    });
    assertEquals(prior.steps, 1);
    prior.trainableVariables().forEach((v, i) =>
      assertAllClose(v, weights[i], { atol: 0, rtol: 0 })
    );
    assertThrows(
      () => prior.bitsPerImage(empty),
      ArgumentError,
      "empty batch",
    );
    tf.dispose(weights);
  } finally {
    tf.dispose([empty, codes]);
    optimizer.dispose();
    prior.dispose();
  }
});

Deno.test("PixelCNNPrior options are checked; unseeded samples continue a stream", () => {
  const before = tf.memory().numTensors;
  assertThrows(
    () =>
      new PixelCNNPrior(
        { numCodes: 4, chanels: 8 } as unknown as { numCodes: 4 },
      ),
    ArgumentError,
    'did you mean "channels"',
  );
  assertThrows(
    () =>
      new PixelCNNPrior({ numCodes: 4, learningRate: 1 } as unknown as {
        numCodes: 4;
      }),
    ArgumentError,
    "PixelCNNPrior",
    "learningRate",
  );
  assertThrows(
    () => new PixelCNNPrior(null as unknown as { numCodes: 4 }),
    ArgumentError,
    "PixelCNNPrior",
  );
  assertEquals(tf.memory().numTensors, before);
  const prior = new PixelCNNPrior({ numCodes: 4, channels: 4, layers: 0 });
  // Without a seed the prior's own stream continues: two calls draw differently.
  const [u, v] = [prior.sample(2), prior.sample(2)];
  assertNotEquals(Array.from(u.dataSync()), Array.from(v.dataSync()));
  tf.dispose([u, v]);
  assertThrows(
    () => prior.sample(2, { temprature: 1 } as unknown as { temperature: 1 }),
    ArgumentError,
    'did you mean "temperature"',
  );
  prior.dispose();
});
