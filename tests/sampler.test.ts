import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { batches, batchSampler } from "../lib/data.ts";
import { rngFrom } from "../lib/random.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

Deno.test("batchSampler: full batches, every row once per epoch, reshuffled with seed + epoch", () => {
  const n = 10;
  const data = tf.range(0, n).reshape([n, 1]);
  const sampler = batchSampler(data, 3, { seed: 5 });
  assertEquals(sampler.epoch, -1);
  const rows: number[][] = [];
  for (let i = 0; i < 6; i++) {
    const b = sampler.next();
    assertEquals(b.shape, [3, 1]);
    rows.push(Array.from(b.dataSync()));
    b.dispose();
  }
  // 10 rows, batches of 3: 3 full batches per epoch, the short one dropped.
  assertEquals(sampler.epoch, 1);
  const epoch0 = rows.slice(0, 3).flat();
  assertEquals(new Set(epoch0).size, 9);
  assertEquals(epoch0, Array.from(rngFrom(5).permutation(n).slice(0, 9)));
  assertEquals(
    rows.slice(3).flat(),
    Array.from(rngFrom(6).permutation(n).slice(0, 9)),
  );
  // The same as the epoch iterator it is built on.
  assertEquals(
    epoch0,
    [...batches(n, 3, { seed: 5, dropRemainder: true })].flatMap((b) =>
      Array.from(b)
    ),
  );
  data.dispose();
});

Deno.test("batchSampler: several tensors are sampled at the same indices; no leaks", async () => {
  const images = tf.range(0, 8).reshape([8, 1, 1]);
  const labels = tf.range(100, 108, 1, "int32");
  const sampler = batchSampler([images, labels], 4, { seed: 1 });
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 5; i++) {
      const [x, y] = sampler.next();
      assertEquals(y.dtype, "int32");
      const xs = Array.from(x.dataSync());
      assertEquals(Array.from(y.dataSync()), xs.map((v) => v + 100));
      tf.dispose([x, y]);
    }
  });
  tf.dispose([images, labels]);
});

Deno.test("batchSampler: bad input is a clear ArgumentError", () => {
  const a = tf.zeros([5, 2]);
  const b = tf.zeros([4]);
  assertThrows(() => batchSampler([a, b], 2), ArgumentError, "data[1] has 4");
  assertThrows(
    () => batchSampler(a, 6),
    ArgumentError,
    "batchSize must be an integer in [1, 5]",
  );
  assertThrows(() => batchSampler(a, 0), ArgumentError, "batchSize");
  assertThrows(
    () => batchSampler(a, 2, { sed: 1 } as never),
    ArgumentError,
    'did you mean "seed"',
  );
  assertThrows(() => batchSampler([], 2), ArgumentError, "non-empty array");
  assertThrows(
    () => batchSampler(tf.zeros([0, 2]), 1),
    ArgumentError,
    "no rows",
  );
  assert(true);
  tf.dispose([a, b]);
});
