import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { ArgumentError } from "../lib/validate.ts";
import { makeBlobs } from "../lib/datasets2d.ts";
import { Rng } from "../lib/random.ts";
import {
  kmeans,
  kmeansDistortion,
  lloydSnapshots,
  quantize,
  seedInertias,
} from "../lib/vq.ts";
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

// ---------------------------------------------------------------------------
// Notebook 01 experiments: lloydSnapshots, seedInertias, kmeansDistortion

Deno.test("lloydSnapshots: hand-computed first two steps, then k-means' own runs", async () => {
  const pts = [[0, 0], [0, 2], [10, 0], [10, 2]];
  const start = [[1, 1], [9, 3]];
  const snaps = await assertNoTensorLeak(() =>
    lloydSnapshots(pts, start, [1, 2])
  );
  // Step 1 assigns to the start: squared distances 2 + 2 + 10 + 2.
  assertEquals(snaps[0].steps, 1);
  assertAllClose(snaps[0].centroids, start);
  assertEquals(snaps[0].assignments, [0, 0, 1, 1]);
  assertAllClose(snaps[0].inertia, 16);
  // Step 2 uses the cluster means (0, 1) and (10, 1): every point at distance 1.
  assertAllClose(snaps[1].centroids, [[0, 1], [10, 1]]);
  assertAllClose(snaps[1].inertia, 4);

  const data = makeBlobs(120, { centers: 3, std: 1.5, seed: 4 });
  const bad = [[-6, 5], [-5, 4.5], [-4, 5.5]];
  const steps = [1, 2, 3, 6];
  const many = lloydSnapshots(data.points, bad, steps);
  many.forEach((s, i) => {
    const r = kmeans(data.points, 3, { init: bad, maxIter: steps[i], tol: 0 });
    assertEquals(s.steps, steps[i]);
    assertEquals(s.inertia, r.inertia);
    assertEquals(s.assignments, Array.from(r.assignments.dataSync()));
    assertAllClose(s.centroids, r.centroids.arraySync());
    tf.dispose([r.centroids, r.assignments]);
    if (i > 0) assert(s.inertia <= many[i - 1].inertia, "inertia went up");
  });
  tf.dispose([data.points, data.labels]);
});

Deno.test("lloydSnapshots rejects bad steps and init", () => {
  const pts = [[0, 0], [1, 1], [2, 0]];
  assertThrows(
    () => lloydSnapshots(pts, [[0, 0]], []),
    ArgumentError,
    "lloydSnapshots",
    "steps",
  );
  assertThrows(
    () => lloydSnapshots(pts, [[0, 0]], [1, 0.5]),
    ArgumentError,
    "lloydSnapshots",
    "steps[1]",
  );
  assertThrows(
    () => lloydSnapshots(pts, [], [1]),
    ArgumentError,
    "lloydSnapshots",
    "init",
  );
});

Deno.test("seedInertias equals one single-run kmeans per seed", async () => {
  const data = makeBlobs(200, { centers: 5, std: 0.8, seed: 2 });
  const seeds = [0, 1, 2];
  for (const init of ["kmeans++", "random"] as const) {
    const got = await assertNoTensorLeak(() =>
      seedInertias(data.points, 5, seeds, init)
    );
    assertEquals(got.length, 3);
    seeds.forEach((seed, i) => {
      const r = kmeans(data.points, 5, { init, nInit: 1, seed });
      assertEquals(got[i], r.inertia);
      tf.dispose([r.centroids, r.assignments]);
    });
  }
  assertThrows(
    () => seedInertias(data.points, 5, [], "random"),
    ArgumentError,
    "seedInertias",
    "seeds",
  );
  assertThrows(
    () => seedInertias(data.points, 5, [-1], "random"),
    ArgumentError,
    "seeds[0]",
  );
  assertThrows(
    () => seedInertias(data.points, 5, [0], "farthest" as "random"),
    ArgumentError,
    "seedInertias",
    "init",
  );
  assertThrows(
    () => seedInertias(data.points, 0, [0], "random"),
    ArgumentError,
    "seedInertias",
    "k",
  );
  tf.dispose([data.points, data.labels]);
});

Deno.test("kmeansDistortion: K = 1 gives the total variance, K = n gives 0", async () => {
  const pts = [[0, 0], [2, 0], [0, 4], [2, 4]];
  // Mean (1, 2): squared distances 1 + 4 = 5 for every point.
  const d = await assertNoTensorLeak(() =>
    kmeansDistortion(pts, [1, 2, 4], { seed: 0 })
  );
  assertAllClose(d, [5, 1, 0], { atol: 1e-5 });
  const data = makeBlobs(150, { centers: 4, std: 1, seed: 9 });
  const r = kmeans(data.points, 4, { seed: 0, nInit: 2 });
  assertEquals(
    kmeansDistortion(data.points, [4], { seed: 0, nInit: 2 })[0],
    r.inertia / 150,
  );
  tf.dispose([r.centroids, r.assignments, data.points, data.labels]);
  assertThrows(
    () => kmeansDistortion(pts, []),
    ArgumentError,
    "kmeansDistortion",
    "ks",
  );
  assertThrows(
    () => kmeansDistortion(pts, [2, 0]),
    ArgumentError,
    "kmeansDistortion",
    "ks[1]",
  );
});
