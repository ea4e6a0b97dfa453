import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import {
  glorotUniform,
  randomNormal,
  randomUniform,
  Rng,
  rngFrom,
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
