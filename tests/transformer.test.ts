import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { trainStep } from "../lib/model.ts";
import { adam } from "../lib/optim.ts";
import { causalAttentionMask, TransformerPrior } from "../lib/transformer.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

Deno.test("causalAttentionMask: 0 on and below the diagonal, -1e9 above", () => {
  const m = causalAttentionMask(3);
  assertAllClose(m, [[0, -1e9, -1e9], [0, 0, -1e9], [0, 0, 0]]);
  m.dispose();
});

Deno.test("TransformerPrior is causal: the prediction at i does not change when tokens at or after i change", () => {
  const prior = new TransformerPrior({
    vocabSize: 5,
    length: 6,
    dim: 8,
    heads: 2,
    layers: 2,
    seed: 3,
  });
  const a = tf.tensor2d([[1, 2, 3, 4, 0, 1]], [1, 6], "int32");
  for (let i = 0; i < 6; i++) {
    const changed = [1, 2, 3, 4, 0, 1].map((
      t,
      j,
    ) => (j >= i ? (t + 2) % 5 : t));
    const b = tf.tensor2d([changed], [1, 6], "int32");
    const [la, lb] = [prior.logits(a), prior.logits(b)];
    // Logits at position i are computed from tokens < i only.
    for (let p = 0; p <= i; p++) {
      const rowA = la.slice([0, p, 0], [1, 1, 5]);
      const rowB = lb.slice([0, p, 0], [1, 1, 5]);
      assertAllClose(rowA, rowB, {
        atol: 1e-5,
        message: `position ${p} after changing tokens >= ${i}`,
      });
      tf.dispose([rowA, rowB]);
    }
    // ...and the model is not trivially constant: a later position does change.
    if (i < 5) {
      const diff = tf.tidy(() =>
        la.slice([0, i + 1, 0], [1, 1, 5]).sub(
          lb.slice([0, i + 1, 0], [1, 1, 5]),
        ).abs().max().dataSync()[0]
      );
      assert(diff > 1e-4, `position ${i + 1} ignores token ${i}`);
    }
    tf.dispose([la, lb, b]);
  }
  a.dispose();
  prior.dispose();
});

Deno.test("TransformerPrior: exp(logProb) sums to 1 over every sequence of a tiny vocabulary", () => {
  const prior = new TransformerPrior({
    vocabSize: 3,
    length: 4,
    dim: 8,
    heads: 2,
    layers: 1,
    seed: 1,
  });
  const all: number[][] = [];
  for (let c = 0; c < 3 ** 4; c++) {
    all.push([0, 1, 2, 3].map((i) => Math.floor(c / 3 ** i) % 3));
  }
  const tokens = tf.tensor2d(all, [81, 4], "int32");
  const logp = prior.logProb(tokens);
  const total = tf.tidy(() => logp.exp().sum().dataSync()[0]);
  assertAllClose([total], [1], { atol: 1e-4 });
  tf.dispose([tokens, logp]);
  prior.dispose();
});

Deno.test("TransformerPrior trains with trainStep: a deterministic pattern is learned to near zero bits; no leaks", async () => {
  const prior = new TransformerPrior({
    vocabSize: 4,
    length: 8,
    dim: 16,
    heads: 2,
    layers: 1,
    seed: 0,
  });
  // Two sequences, each a deterministic function of its first token: 1 bit per sequence at best.
  const tokens = tf.tensor2d(
    [[0, 1, 2, 3, 0, 1, 2, 3], [1, 3, 1, 3, 1, 3, 1, 3]],
    [2, 8],
    "int32",
  );
  const optimizer = adam(1e-2);
  const first = trainStep(prior, optimizer, tokens);
  trainStep(prior, optimizer, tokens); // the optimizer makes its moment variables on the first steps
  let last = first;
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 200; i++) last = trainStep(prior, optimizer, tokens);
  });
  assert(first.bitsPerImage > 10, `untrained: ${first.bitsPerImage} bits`);
  assert(
    last.bitsPerImage < 1.3,
    `trained: ${last.bitsPerImage} bits (the floor is 1 bit)`,
  );
  assertAllClose([prior.bitsPerImage(tokens)], [last.bitsPerImage], {
    rtol: 0.1,
    atol: 0.05,
  });
  // Samples at a low temperature are the memorised sequences.
  const s = prior.sample(6, { temperature: 0.1, seed: 2 });
  const rows = s.arraySync();
  for (const r of rows) {
    assert(
      r[1] === (r[0] === 0 ? 1 : 3) && r[2] === (r[0] === 0 ? 2 : 1),
      `sample ${r}`,
    );
  }
  tf.dispose([tokens, s]);
  prior.dispose();
});

Deno.test("TransformerPrior.sample: seeded, reproducible, and different seeds differ", () => {
  const prior = new TransformerPrior({
    vocabSize: 6,
    length: 5,
    dim: 8,
    heads: 2,
    layers: 1,
    seed: 0,
  });
  const [a, b, c] = [
    prior.sample(4, { seed: 1 }),
    prior.sample(4, { seed: 1 }),
    prior.sample(4, { seed: 2 }),
  ];
  assertEquals(a.arraySync(), b.arraySync());
  assert(JSON.stringify(a.arraySync()) !== JSON.stringify(c.arraySync()));
  tf.dispose([a, b, c]);
  prior.dispose();
});

Deno.test("TransformerPrior: bad arguments are ArgumentErrors and build nothing", async () => {
  await assertNoTensorLeak(() => {
    assertThrows(
      () => new TransformerPrior({ vocabSize: 4, length: 5, dim: 6, heads: 4 }),
      ArgumentError,
      "heads (4) must divide dim (6)",
    );
    assertThrows(
      () => new TransformerPrior({ vocabSize: 4, lenght: 5 } as never),
      ArgumentError,
      'did you mean "length"',
    );
    assertThrows(
      () => new TransformerPrior(null as never),
      ArgumentError,
      "TransformerPrior: options must be an object",
    );
  });
  const prior = new TransformerPrior({
    vocabSize: 4,
    length: 3,
    dim: 8,
    heads: 2,
    layers: 1,
  });
  const bad = tf.tensor2d([[0, 1, 4]], [1, 3], "int32");
  const wrong = tf.tensor2d([[0, 1]], [1, 2], "int32");
  const empty = tf.zeros([0, 3], "int32") as tf.Tensor2D;
  await assertNoTensorLeak(() => {
    assertThrows(
      () => prior.logProb(bad),
      ArgumentError,
      "tokens must be in [0, 3], got 4",
    );
    assertThrows(
      () => prior.loss(wrong),
      ArgumentError,
      "TransformerPrior.loss: tokens must have shape [*, 3]",
    );
    assertThrows(() => prior.loss(empty), ArgumentError, "empty");
    assertThrows(
      () => prior.sample(2, { temperature: 0 }),
      ArgumentError,
      "temperature",
    );
  });
  tf.dispose([bad, wrong, empty]);
  prior.dispose();
});
