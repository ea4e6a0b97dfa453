import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { ArgumentError } from "../lib/validate.ts";
import { makeBlobs } from "../lib/datasets2d.ts";
import { Rng } from "../lib/random.ts";
import { kmeans, type KMeansOptions, quantize } from "../lib/vq.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

function randomMatrix(n: number, d: number, seed: number): number[][] {
  const rng = new Rng(seed);
  return Array.from(
    { length: n },
    () => Array.from({ length: d }, () => rng.normal()),
  );
}

function bruteForceNearest(data: number[][], codebook: number[][]): number[] {
  return data.map((x) => {
    let best = 0;
    let bestDist = Infinity;
    codebook.forEach((c, k) => {
      let s = 0;
      for (let j = 0; j < x.length; j++) s += (x[j] - c[j]) ** 2;
      if (s < bestDist) {
        bestDist = s;
        best = k;
      }
    });
    return best;
  });
}

Deno.test("quantize matches a brute-force nearest-codeword loop", () => {
  const data = randomMatrix(200, 5, 1);
  const codebook = randomMatrix(17, 5, 2);
  const { indices, quantized } = quantize(data, codebook);
  const want = bruteForceNearest(data, codebook);
  assertEquals(indices.dtype, "int32");
  assertEquals(Array.from(indices.dataSync()), want);
  assertEquals(quantized.shape, [200, 5]);
  // Bit-exact copies of the (float32) codewords.
  assertAllClose(quantized, want.map((k) => codebook[k].map(Math.fround)), {
    atol: 0,
    rtol: 0,
  });
  tf.dispose([indices, quantized]);
});

Deno.test("quantize sends ties to the lowest index", () => {
  // [0, 0] is equidistant from codewords 1 and 2 (both at distance 1) and
  // [5, 5] sits exactly on the duplicated codewords 3 and 4.
  const codebook = [[9, 9], [1, 0], [0, 1], [5, 5], [5, 5]];
  const { indices, quantized } = quantize([[0, 0], [5, 5]], codebook);
  assertEquals(Array.from(indices.dataSync()), [1, 3]);
  tf.dispose([indices, quantized]);
});

Deno.test("quantize accepts tensors, does not leak and rejects bad input", async () => {
  const data = tf.tensor2d(randomMatrix(30, 3, 3));
  const codebook = tf.tensor2d(randomMatrix(4, 3, 4));
  await assertNoTensorLeak(() => {
    const q = quantize(data, codebook);
    tf.dispose([q.indices, q.quantized]);
  });
  assertThrows(
    () => quantize(data, [[1, 2]]),
    ArgumentError,
    "quantize",
    "codebook",
    "width 3",
  );
  assertThrows(
    () => quantize([[1, 2], [3]], [[1, 2]]),
    ArgumentError,
    "quantize",
    "rectangular",
  );
  assertThrows(
    () => quantize([[1, NaN]], [[1, 2]]),
    ArgumentError,
    "quantize",
    "finite",
  );
  assertThrows(
    () => quantize(tf.tensor2d([[Infinity, 0]]), [[1, 2]]),
    ArgumentError,
    "quantize",
    "data",
    "finite",
  );
  tf.dispose([data, codebook]);
});

Deno.test("kmeans recovers well-separated blob centres", () => {
  const centers = [[-6, -6], [0, 6], [6, -4], [8, 8]];
  const { points, labels } = makeBlobs(400, { centers, std: 0.4, seed: 5 });
  const r = kmeans(points, 4, { seed: 1 });
  const found = r.centroids.arraySync();
  for (const c of centers) {
    const nearest = Math.min(
      ...found.map((f) => Math.hypot(f[0] - c[0], f[1] - c[1])),
    );
    assert(nearest < 0.15, `centre ${c} recovered within ${nearest}`);
  }
  // The clustering agrees with the generating labels up to a relabelling.
  const a = r.assignments.dataSync();
  const l = labels.dataSync();
  const map = new Map<number, number>();
  for (let i = 0; i < a.length; i++) {
    if (!map.has(l[i])) map.set(l[i], a[i]);
    assertEquals(a[i], map.get(l[i]));
  }
  tf.dispose([points, labels, r.centroids, r.assignments]);
});

Deno.test("kmeans inertia equals the recomputed sum of squares; history is non-increasing", () => {
  for (const init of ["kmeans++", "random"] as const) {
    const data = randomMatrix(300, 4, 7);
    const r = kmeans(data, 6, { init, seed: 3, nInit: 2 });
    const c = r.centroids.arraySync();
    const a = Array.from(r.assignments.dataSync());
    // The assignments are the nearest final centroids.
    assertEquals(a, bruteForceNearest(data, c));
    let inertia = 0;
    data.forEach((x, i) =>
      x.forEach((v, j) => (inertia += (v - c[a[i]][j]) ** 2))
    );
    assertAllClose(r.inertia, inertia, { rtol: 1e-5 });
    assertEquals(r.inertia, r.history.at(-1));
    assert(r.history.length >= 2, "at least two assignment steps");
    for (let t = 1; t < r.history.length; t++) {
      assert(
        r.history[t] <= r.history[t - 1] * (1 + 1e-6),
        `${init}: history rose at step ${t}: ${r.history[t - 1]} -> ${
          r.history[t]
        }`,
      );
    }
    // Each centroid is the mean of its cluster (a fixed point of Lloyd).
    for (let k = 0; k < 6; k++) {
      const members = data.filter((_, i) => a[i] === k);
      assert(members.length > 0, `cluster ${k} is not empty`);
      const mean = members[0].map((_, j) =>
        members.reduce((s, m) => s + m[j], 0) / members.length
      );
      assertAllClose(c[k], mean, { atol: 1e-4 });
    }
    tf.dispose([r.centroids, r.assignments]);
  }
});

Deno.test("kmeans is reproducible from its seed and best-of-nInit is no worse", () => {
  const data = randomMatrix(200, 3, 11);
  const a = kmeans(data, 8, { seed: 4 });
  const b = kmeans(data, 8, { seed: 4 });
  assertEquals(a.history, b.history);
  assertAllClose(a.centroids, b.centroids, { atol: 0, rtol: 0 });
  // The best of 5 runs includes the first run, which is the single run.
  const best = kmeans(data, 8, { seed: 4, nInit: 5 });
  assert(best.inertia <= a.inertia + 1e-9, `${best.inertia} <= ${a.inertia}`);
  tf.dispose([
    a.centroids,
    a.assignments,
    b.centroids,
    b.assignments,
    best.centroids,
    best.assignments,
  ]);
});

Deno.test("kmeans re-seeds empty clusters instead of producing NaN", () => {
  // Random seeding can pick two rows of one tight group; with k equal to the
  // number of distinct rows every cluster must end with exactly one value.
  const data = [[0, 0], [0, 0], [0, 0], [10, 0], [10, 0], [0, 10], [20, 20]];
  for (let seed = 0; seed < 5; seed++) {
    const r = kmeans(data, 4, { init: "random", seed, nInit: 1 });
    assert(
      r.centroids.arraySync().flat().every(Number.isFinite),
      "finite centroids",
    );
    assertAllClose(r.inertia, 0, { atol: 1e-9 });
    tf.dispose([r.centroids, r.assignments]);
  }
  // Centroid 1 starts far from every row, so its cluster is empty after the
  // first assignment; it is re-seeded with the row farthest from its centre
  // (row 0 or row 1, both at squared distance 1 from centroid 0). Left
  // empty, it would never win a row back and the inertia would stay 2.5.
  const line = [[3], [5], [10], [11]];
  const r = kmeans(line, 3, { init: [[4], [100], [10.5]] });
  assertEquals(r.history[0], 2.5);
  assert(
    r.centroids.arraySync().flat().every(Number.isFinite),
    "finite centroids",
  );
  assertEquals(new Set(r.assignments.dataSync()).size, 3);
  assertAllClose(r.inertia, 0.5, { atol: 1e-6 });
  tf.dispose([r.centroids, r.assignments]);
});

Deno.test("kmeans with k = 1 gives the mean and the total sum of squares", () => {
  const data = [[0, 0], [2, 0], [1, 3]];
  const r = kmeans(data, 1);
  assertAllClose(r.centroids, [[1, 1]], { atol: 1e-6 });
  assertAllClose(r.inertia, 1 + 1 + 1 + 1 + 4, { rtol: 1e-6 });
  assertEquals(Array.from(r.assignments.dataSync()), [0, 0, 0]);
  tf.dispose([r.centroids, r.assignments]);
});

Deno.test("kmeans does not leak tensors", async () => {
  const data = tf.tensor2d(randomMatrix(100, 3, 5));
  await assertNoTensorLeak(() => {
    for (const init of ["kmeans++", "random"] as const) {
      const r = kmeans(data, 5, { init, seed: 1, nInit: 2 });
      tf.dispose([r.centroids, r.assignments]);
    }
  });
  data.dispose();
});

Deno.test("kmeans rejects bad input with clear errors", () => {
  const data = randomMatrix(10, 2, 1);
  assertThrows(
    () => kmeans(data, 0),
    ArgumentError,
    "kmeans",
    "k",
    "positive integer",
  );
  assertThrows(() => kmeans(data, 2.5), ArgumentError, "kmeans", "k");
  assertThrows(() => kmeans(data, 11), ArgumentError, "kmeans", "k", "10");
  assertThrows(
    () => kmeans([[1, 1], [1, 1], [2, 2]], 3),
    ArgumentError,
    "kmeans",
    "distinct",
  );
  assertThrows(
    () => kmeans([[1, 2], [NaN, 0]], 1),
    ArgumentError,
    "kmeans",
    "finite",
  );
  assertThrows(
    () => kmeans([[1, 2], [3]], 1),
    ArgumentError,
    "kmeans",
    "rectangular",
  );
  assertThrows(
    () => kmeans(data, 2, { init: "farthest" as "random" }),
    ArgumentError,
    "init",
  );
  assertThrows(() => kmeans(data, 2, { nInit: 0 }), ArgumentError, "nInit");
  assertThrows(
    () => kmeans(data, 2, { init: [[0, 0, 0], [1, 1, 1]] }),
    ArgumentError,
    "init",
    "[2, 2]",
  );
  assertThrows(
    () => kmeans(data, 2, { maxIter: -1 }),
    ArgumentError,
    "maxIter",
  );
  assertThrows(() => kmeans(data, 2, { tol: NaN }), ArgumentError, "tol");
});

Deno.test("kmeans: hand-computed first Lloyd steps from an explicit start", async () => {
  const pts = [[0, 0], [0, 2], [10, 0], [10, 2]];
  const start = [[1, 1], [9, 3]];
  // One assignment step: the start itself; squared distances 2 + 2 + 10 + 2.
  const one = await assertNoTensorLeak(() => {
    const r = kmeans(pts, 2, { init: start, maxIter: 1, tol: 0 });
    const out = {
      history: r.history,
      centroids: r.centroids.arraySync(),
      assignments: Array.from(r.assignments.dataSync()),
    };
    tf.dispose([r.centroids, r.assignments]);
    return out;
  });
  assertAllClose(one.history, [16]);
  assertAllClose(one.centroids, start);
  assertEquals(one.assignments, [0, 0, 1, 1]);
  // The update moves to the cluster means (0, 1) and (10, 1): every point at
  // distance 1, and the next update moves nothing, so the run stops there.
  const two = kmeans(pts, 2, { init: start, tol: 0 });
  assertAllClose(two.history, [16, 4]);
  assertAllClose(two.centroids, [[0, 1], [10, 1]]);
  tf.dispose([two.centroids, two.assignments]);
});

Deno.test("kmeans: K = 1 leaves the total sum of squares, K = n leaves nothing", () => {
  const pts = [[0, 0], [2, 0], [0, 4], [2, 4]];
  // Mean (1, 2): squared distance 1 + 4 = 5 from every point.
  for (const [k, inertia] of [[1, 20], [2, 4], [4, 0]]) {
    const r = kmeans(pts, k, { seed: 0 });
    assertAllClose(r.inertia, inertia, { atol: 1e-5 });
    tf.dispose([r.centroids, r.assignments]);
  }
});

Deno.test("kmeans clusters rows of size 1e20 (float32 squares overflow) at an exact scale", () => {
  const base = [[0, 0], [1, 0], [0, 1], [10, 10], [11, 10], [10, 11]];
  for (const size of [1e20, 1e-25]) {
    const big = base.map((r) => r.map((v) => v * size));
    const r = kmeans(big, 2, { seed: 0 });
    const small = kmeans(base, 2, { seed: 0 });
    // The same clustering, centroids and inertia scaled by size and size^2.
    assertEquals(
      Array.from(r.assignments.dataSync()),
      Array.from(small.assignments.dataSync()),
    );
    assertAllClose(
      r.centroids,
      small.centroids.arraySync().map((c) => c.map((v) => v * size)),
      { rtol: 1e-6 },
    );
    assertAllClose(r.inertia / size ** 2, small.inertia, { rtol: 1e-6 });
    assert(Number.isFinite(r.inertia), "finite inertia");
    tf.dispose([
      r.centroids,
      r.assignments,
      small.centroids,
      small.assignments,
    ]);
  }
  // Explicit starting centroids are scaled with the data.
  const big = base.map((r) => r.map((v) => v * 1e20));
  const r = kmeans(big, 2, { init: [[0, 0], [1e21, 1e21]] });
  assertAllClose(r.inertia, 8e40 / 3, { rtol: 1e-5 });
  tf.dispose([r.centroids, r.assignments]);
});

Deno.test("kmeans checks its options object: null, typos, non-objects", () => {
  const data = randomMatrix(10, 2, 1);
  assertThrows(
    () => kmeans(data, 2, null as unknown as KMeansOptions),
    ArgumentError,
    "kmeans",
    "options",
  );
  assertThrows(
    () => kmeans(data, 2, { maxIters: 3 } as unknown as KMeansOptions),
    ArgumentError,
    "kmeans",
    "maxIters",
    "maxIter",
  );
  assertThrows(
    () => kmeans(data, 2, 3 as unknown as KMeansOptions),
    ArgumentError,
    "kmeans",
    "options",
  );
});

Deno.test("a throwing kmeans or quantize leaves the tensor count unchanged", () => {
  const data = tf.tensor2d(randomMatrix(10, 2, 1));
  const before = tf.memory().numTensors;
  const bad: [() => unknown, string][] = [
    [() => kmeans(data, 11), "k must be at most"],
    [() => kmeans(data, 2, { init: [[0, 0, 0], [1, 1, 1]] }), "init"],
    [() => kmeans([[1, 1], [1, 1], [2, 2]], 3), "distinct"],
    [() => kmeans(data, 2, { tol: -1 }), "tol"],
    [() => quantize(data, [[1, 2, 3]]), "width 2"],
  ];
  for (const [call, message] of bad) {
    assertThrows(call, ArgumentError, message);
    assertEquals(tf.memory().numTensors, before, message);
  }
  data.dispose();
});

Deno.test("unseeded kmeans calls draw fresh seeds; a seed repeats", () => {
  const data = randomMatrix(300, 2, 8);
  const run = (options: KMeansOptions) => {
    const r = kmeans(data, 20, { init: "random", nInit: 1, ...options });
    tf.dispose([r.centroids, r.assignments]);
    return r.history[0];
  };
  const unseeded = [run({}), run({}), run({})];
  assert(
    new Set(unseeded).size > 1,
    `three unseeded runs started alike: ${unseeded}`,
  );
  assertEquals(run({ seed: 3 }), run({ seed: 3 }));
});
