import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import {
  glorotUniform,
  randomNormal,
  randomUniform,
  resetRandomStream,
  Rng,
  rngFrom,
  rngOrStream,
} from "../lib/random.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNotEquals,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

const draw = (seed: number, n = 50) => {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => r.uniform());
};

Deno.test("same seed gives the same numbers, a different seed different ones", () => {
  assertEquals(draw(42), draw(42));
  assertNotEquals(draw(42), draw(43));
  // Nearby seeds must not give shifted copies of one stream.
  const a = draw(1, 20);
  const b = draw(2, 20);
  assert(!a.slice(1).every((v, i) => v === b[i]));
});

Deno.test("uniform is in [0, 1) with mean 1/2 and variance 1/12", () => {
  const r = new Rng(7);
  const n = 200_000;
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const u = r.uniform();
    assert(u >= 0 && u < 1);
    sum += u;
    sq += u * u;
  }
  const mean = sum / n;
  // Standard error of the mean is sqrt(1/12 / n) ~ 6.5e-4: allow 5 of them.
  assertAllClose(mean, 0.5, { atol: 5 * Math.sqrt(1 / 12 / n) });
  assertAllClose(sq / n - mean * mean, 1 / 12, { atol: 2e-3 });
});

Deno.test("uniformOpen never returns 0 or 1 (safe for logs)", () => {
  const r = new Rng(3);
  for (let i = 0; i < 100_000; i++) {
    const u = r.uniformOpen();
    assert(u > 0 && u < 1 && Number.isFinite(Math.log(-Math.log(u))));
  }
});

Deno.test("normal has mean 0, variance 1 and the right tail mass", () => {
  const r = new Rng(11);
  const n = 200_000;
  let sum = 0;
  let sq = 0;
  let beyond2 = 0;
  for (let i = 0; i < n; i++) {
    const z = r.normal();
    sum += z;
    sq += z * z;
    if (Math.abs(z) > 2) beyond2++;
  }
  assertAllClose(sum / n, 0, { atol: 5 / Math.sqrt(n) });
  assertAllClose(sq / n, 1, { atol: 0.02 });
  // P(|Z| > 2) = 0.0455
  assertAllClose(beyond2 / n, 0.0455, { atol: 0.003 });
});

Deno.test("int, permutation, shuffle and categorical are uniform or weighted as asked", () => {
  const r = new Rng(5);
  const counts = new Array(4).fill(0);
  for (let i = 0; i < 40_000; i++) counts[r.int(4)]++;
  for (const c of counts) assertAllClose(c / 40_000, 0.25, { atol: 0.015 });
  const p = Array.from(new Rng(1).permutation(10)).sort((a, b) => a - b);
  assertEquals(p, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const w = [1, 0, 3];
  const hits = [0, 0, 0];
  for (let i = 0; i < 40_000; i++) hits[r.categorical(w)]++;
  assertEquals(hits[1], 0);
  assertAllClose(hits[2] / 40_000, 0.75, { atol: 0.015 });
  const arr = [1, 2, 3, 4, 5];
  assertEquals([...new Rng(9).shuffle(arr)].sort(), [1, 2, 3, 4, 5]);
});

Deno.test("random tensors are reproducible and have the requested moments", () => {
  const a = randomNormal([1000], { mean: 3, std: 2, seed: 1 });
  const b = randomNormal([1000], { mean: 3, std: 2, seed: 1 });
  assertAllClose(a, b, { atol: 0, rtol: 0 });
  const m = tf.moments(a);
  assertAllClose(m.mean, 3, { atol: 0.2 });
  assertAllClose(m.variance, 4, { atol: 0.5 });
  const u = randomUniform([2, 3], { low: -1, high: 1, seed: rngFrom(2) });
  assertEquals(u.shape, [2, 3]);
  assert(Array.from(u.dataSync()).every((v) => v >= -1 && v < 1));
  const g = glorotUniform([4, 6], { seed: 0 });
  const limit = Math.sqrt(6 / 10);
  assert(Array.from(g.dataSync()).every((v) => Math.abs(v) <= limit));
  tf.dispose([a, b, m.mean, m.variance, u, g]);
});

Deno.test("bad arguments name the argument", () => {
  assertThrows(() => new Rng(NaN), ArgumentError, "seed");
  assertThrows(() => new Rng(1).int(0), ArgumentError, "n");
  assertThrows(() => new Rng(1).categorical([0, 0]), ArgumentError, "zero");
  assertThrows(
    () => new Rng(1).categorical([1, -1]),
    ArgumentError,
    "weights[1]",
  );
  assertThrows(() => randomNormal([2, -1]), ArgumentError, "shape[1]");
  assertThrows(() => randomNormal([2], { std: -1 }), ArgumentError, "std");
});

Deno.test("unseeded draws advance one shared stream: never frozen, reproducible after a reset", () => {
  const draw = () => {
    const t = randomNormal([4]);
    const v = Array.from(t.dataSync());
    t.dispose();
    return v;
  };
  resetRandomStream(5);
  const first = [draw(), draw()];
  assertNotEquals(first[0], first[1]);
  // Not secretly seed 0 either: the first draw after a reset at 5 is seed 5's.
  const seeded = randomNormal([4], { seed: 5 });
  assertAllClose(first[0], seeded, { atol: 0, rtol: 0 });
  resetRandomStream(5);
  assertEquals([draw(), draw()], first);
  // randomUniform and glorotUniform draw from the same stream.
  const u1 = randomUniform([3]);
  const u2 = randomUniform([3]);
  assertNotEquals(Array.from(u1.dataSync()), Array.from(u2.dataSync()));
  const g1 = glorotUniform([2, 2]);
  const g2 = glorotUniform([2, 2]);
  assertNotEquals(Array.from(g1.dataSync()), Array.from(g2.dataSync()));
  // rngOrStream: a seed gives its own generator, no seed the shared one.
  assert(rngOrStream() === rngOrStream(), "one shared stream");
  assert(rngOrStream(3) !== rngOrStream(), "a seed is not the stream");
  const r = new Rng(1);
  assert(rngOrStream(r) === r, "an Rng is used as is");
  // rngFrom keeps its documented default: undefined is seed 0.
  assertEquals(rngFrom().uniform(), new Rng(0).uniform());
  tf.dispose([seeded, u1, u2, g1, g2]);
  resetRandomStream();
  assertThrows(() => resetRandomStream(NaN), ArgumentError, "seed");
});

Deno.test("random tensors check their options before making a tensor", () => {
  const before = tf.memory().numTensors;
  assertThrows(
    () => randomNormal([2], { sd: 1 } as never),
    ArgumentError,
    "randomNormal",
    'did you mean "std"',
  );
  assertThrows(
    () => randomUniform([2], null as never),
    ArgumentError,
    "randomUniform",
    "options",
  );
  assertThrows(
    () => glorotUniform([2, 2], { fanin: 3 } as never),
    ArgumentError,
    'did you mean "fanIn"',
  );
  assertThrows(
    () => randomNormal([2], { mean: NaN }),
    ArgumentError,
    "mean",
  );
  assertThrows(
    () => randomUniform([2], { seed: "a" as never }),
    ArgumentError,
    "seed",
  );
  assertThrows(
    () => randomNormal(3 as never),
    ArgumentError,
    "shape must be an array",
  );
  assertEquals(tf.memory().numTensors, before);
});
