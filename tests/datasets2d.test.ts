import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertNotEquals,
  assertThrows,
} from "./assert.ts";
import { initBackend } from "../lib/backend.ts";
import { Rng } from "../lib/random.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  type Dataset2D,
  makeBlobs,
  makeMoons,
  makeRing,
  makeSpiral,
  ringCenters,
} from "../lib/datasets2d.ts";

await initBackend();

/** Reads a dataset into plain arrays and disposes its tensors. */
function read(data: Dataset2D): { xy: number[][]; labels: number[] } {
  try {
    assertEquals(data.points.dtype, "float32");
    assertEquals(data.labels.dtype, "int32");
    assertEquals(data.points.shape, [data.labels.shape[0], 2]);
    const flat = data.points.dataSync();
    const xy = Array.from(
      { length: flat.length / 2 },
      (_, i) => [flat[2 * i], flat[2 * i + 1]],
    );
    return { xy, labels: Array.from(data.labels.dataSync()) };
  } finally {
    tf.dispose([data.points, data.labels]);
  }
}

const GENERATORS: [string, (seed: number | Rng) => Dataset2D][] = [
  ["makeBlobs", (seed) => makeBlobs(200, { seed })],
  ["makeRing", (seed) => makeRing({ n: 200, seed })],
  ["makeMoons", (seed) => makeMoons(200, { seed })],
  ["makeSpiral", (seed) => makeSpiral(200, { seed })],
];

Deno.test("2D datasets: shapes, dtypes, seeding, no leaks", async () => {
  for (const [name, make] of GENERATORS) {
    await assertNoTensorLeak(() => {
      const a = read(make(7));
      assertEquals(a.xy.length, 200, name);
      assert(a.xy.flat().every(Number.isFinite), name);
      assertEquals(read(make(7)), a, `${name}: same seed, same data`);
      assertEquals(
        read(make(new Rng(7))),
        a,
        `${name}: an Rng seeds like its number`,
      );
      assertNotEquals(
        read(make(8)).xy,
        a.xy,
        `${name}: different seed, different data`,
      );
    });
  }
});

Deno.test("ringCenters are evenly spaced on the circle, starting at angle 0", () => {
  const c = ringCenters(8, 2);
  assertEquals(c.length, 8);
  assertAllClose(c[0], [2, 0]);
  assertAllClose(c[2], [0, 2], { atol: 1e-12 });
  assertAllClose(c[1], [Math.SQRT2, Math.SQRT2]);
  for (const [x, y] of c) assertAllClose(Math.hypot(x, y), 2);
  assertEquals(ringCenters(), c);
  assertThrows(() => ringCenters(0), ArgumentError, "ringCenters", "modes");
  assertThrows(
    () => ringCenters(8, -1),
    ArgumentError,
    "ringCenters",
    "radius",
  );
});

Deno.test("makeRing: points sit near their labelled mode and every mode is used", () => {
  const std = 0.02;
  const { xy, labels } = read(makeRing({ n: 4000, std, seed: 3 }));
  const centers = ringCenters(8, 2);
  const counts = new Array(8).fill(0);
  let sq = 0;
  for (let i = 0; i < xy.length; i++) {
    const [cx, cy] = centers[labels[i]];
    const d = Math.hypot(xy[i][0] - cx, xy[i][1] - cy);
    assert(d < 8 * std, `point ${i} is ${d} from its mode`);
    sq += d * d;
    counts[labels[i]]++;
  }
  // E|x - mu|^2 = 2 std^2 for a 2D isotropic Gaussian.
  assertAllClose(sq / xy.length, 2 * std * std, { rtol: 0.1 });
  for (const c of counts) assert(c > 400 && c < 600, `mode counts ${counts}`);

  const five = read(makeRing({ n: 500, modes: 5, radius: 1, std: 0, seed: 1 }));
  const c5 = ringCenters(5, 1);
  assertAllClose(five.xy.flat(), five.labels.flatMap((l) => c5[l]), {
    atol: 1e-6,
  });
});

Deno.test("makeBlobs: explicit centres, random centres, balanced labels", () => {
  const centers = [[-3, 0], [3, 0], [0, 4]];
  const { xy, labels } = read(makeBlobs(3000, { centers, std: 0.3, seed: 2 }));
  assertEquals(labels.slice(0, 6), [0, 1, 2, 0, 1, 2]);
  for (let k = 0; k < 3; k++) {
    const mine = xy.filter((_, i) => labels[i] === k);
    assertEquals(mine.length, 1000);
    const mean = [0, 1].map((d) =>
      mine.reduce((s, p) => s + p[d], 0) / mine.length
    );
    assertAllClose(mean, centers[k], { atol: 0.05 });
    const sd = Math.sqrt(
      mine.reduce((s, p) => s + (p[0] - mean[0]) ** 2, 0) / mine.length,
    );
    assertAllClose(sd, 0.3, { rtol: 0.1 });
  }
  const random = makeBlobs(10, { centers: 4, centerBox: 2, seed: 5 });
  assertEquals(random.centers.length, 4);
  assert(random.centers.flat().every((v) => Math.abs(v) <= 2));
  assertEquals(read(random).labels, [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]);
});

Deno.test("makeMoons: noiseless points lie on the two half-circles", () => {
  const { xy, labels } = read(makeMoons(500, { noise: 0, seed: 4 }));
  assertEquals(labels.filter((l) => l === 0).length, 250);
  for (let i = 0; i < xy.length; i++) {
    const [x, y] = xy[i];
    if (labels[i] === 0) {
      assertAllClose(Math.hypot(x, y), 1, { atol: 1e-6 });
      assert(y >= -1e-6);
    } else {
      assertAllClose(Math.hypot(x - 1, y - 0.5), 1, { atol: 1e-6 });
      assert(y <= 0.5 + 1e-6);
    }
  }
});

Deno.test("makeSpiral: noiseless points follow their arm", () => {
  const arms = 3, turns = 2, radius = 1.5;
  const { xy, labels } = read(
    makeSpiral(600, { arms, turns, radius, noise: 0, seed: 9 }),
  );
  assertEquals(labels.slice(0, 4), [0, 1, 2, 0]);
  for (let i = 0; i < xy.length; i++) {
    const [x, y] = xy[i];
    const s = Math.hypot(x, y) / radius;
    assert(s <= 1 + 1e-6);
    const want = 2 * Math.PI * (turns * s + labels[i] / arms);
    // Compare angles on the circle, tolerant of float32 rounding near the centre.
    const diff = Math.atan2(
      Math.sin(Math.atan2(y, x) - want),
      Math.cos(Math.atan2(y, x) - want),
    );
    if (s > 0.01) {
      assert(Math.abs(diff) < 1e-3, `point ${i} off its arm by ${diff}`);
    }
  }
});

Deno.test("2D datasets reject bad arguments by name", () => {
  const cases: [() => unknown, string, string][] = [
    [() => makeBlobs(0), "makeBlobs", "n"],
    [() => makeBlobs(10, { centers: 0 }), "makeBlobs", "centers"],
    [() => makeBlobs(10, { centers: [] }), "makeBlobs", "centers"],
    [() => makeBlobs(10, { centers: [[1, 2, 3]] }), "makeBlobs", "centers[0]"],
    [
      () => makeBlobs(10, { centers: [[1, NaN]] }),
      "makeBlobs",
      "centers[0][1]",
    ],
    [() => makeBlobs(10, { std: -1 }), "makeBlobs", "std"],
    [() => makeBlobs(10, { seed: NaN }), "makeBlobs", "seed"],
    [() => makeRing({ n: 1.5 }), "makeRing", "n"],
    [() => makeRing({ modes: 0 }), "makeRing", "modes"],
    [() => makeRing({ radius: 0 }), "makeRing", "radius"],
    [() => makeRing({ std: -0.1 }), "makeRing", "std"],
    [() => makeRing(500 as unknown as { n: number }), "makeRing", "options"],
    [() => makeMoons(-5), "makeMoons", "n"],
    [() => makeMoons(10, { noise: Infinity }), "makeMoons", "noise"],
    [() => makeSpiral(10, { turns: 0 }), "makeSpiral", "turns"],
    [() => makeSpiral(10, { arms: 2.5 }), "makeSpiral", "arms"],
    [() => makeSpiral(10, { noise: -1 }), "makeSpiral", "noise"],
    [
      () => makeSpiral(10, { seed: "x" as unknown as number }),
      "makeSpiral",
      "seed",
    ],
  ];
  const before = tf.memory().numTensors;
  for (const [fn, where, arg] of cases) {
    assertThrows(fn, ArgumentError, where, arg);
  }
  assertEquals(tf.memory().numTensors, before);
});
