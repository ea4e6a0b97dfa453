import {
  ALIGNMENTS,
  chunkCall,
  type CutRule,
  MIN_CHUNK_MNK,
  planChunks,
  RING,
} from "../kernels/blas_split_plan.ts";
import { openBlas } from "../kernels/blas_kernels.ts";
import {
  findCutRule,
  gemmInBlocks,
  type SplitBlas,
  startSplitBlas,
} from "../kernels/blas_split.ts";
import { assert, assertEquals } from "../../../tests/assert.ts";
import { runChildScript } from "./child_script.ts";

/** The rules of the kernels seen here, and one direction forbidden each way. */
const rules: CutRule[] = [
  { rows: 64, columns: 64 },
  { rows: 12, columns: null },
  { rows: null, columns: 8 },
  { rows: 24, columns: 48 },
];

Deno.test("planChunks: aligned blocks that cover C once, each large enough", () => {
  for (const rule of rules) {
    let planned = 0;
    for (const m of [1, 63, 64, 65, 128, 191, 500, 1000, 4096]) {
      for (const n of [1, 16, 37, 64, 200, 1024]) {
        for (const k of [1, 50, 300, 2000]) {
          for (const threads of [2, 3, 4, 8]) {
            const what =
              `${m} x ${n} x ${k}, rows ${rule.rows}, columns ${rule.columns}`;
            const plan = planChunks(m, n, k, threads, rule);
            if (plan === null) {
              // Then no allowed cut in two leaves both blocks large enough.
              for (const byRows of [true, false]) {
                const align = byRows ? rule.rows : rule.columns;
                if (align === null) continue;
                const length = byRows ? m : n;
                const perLine = (byRows ? n : m) * k;
                for (let cut = align; cut < length; cut += align) {
                  assert(
                    cut * perLine < MIN_CHUNK_MNK ||
                      (length - cut) * perLine < MIN_CHUNK_MNK,
                    `${what} could be cut at ${cut}`,
                  );
                }
              }
              continue;
            }
            planned++;
            assert(plan.chunks >= 2 && plan.chunks <= threads);
            const align = plan.byRows ? rule.rows : rule.columns;
            assert(align !== null, `${what}: cut a forbidden way`);
            assertEquals(plan.step % align, 0);
            // The longer side is cut whenever the rule allows it.
            if ((m >= n) !== plan.byRows) {
              assertEquals(plan.byRows ? rule.columns : rule.rows, null, what);
            }
            let covered = 0;
            for (let i = 0; i < plan.chunks; i++) {
              const call = chunkCall(plan, i, false, false, m, n, k);
              const length = plan.byRows ? call.m : call.n;
              assert(length > 0);
              assert(call.m * call.n * k >= MIN_CHUNK_MNK, "block too small");
              assertEquals(call.cOffset, plan.byRows ? covered * n : covered);
              covered += length;
            }
            assertEquals(covered, plan.byRows ? m : n);
          }
        }
      }
    }
    assert(planned > 50, `only ${planned} shapes were cut`);
  }
  assertEquals(planChunks(128, 128, 128, 2, rules[0]), null);
  assertEquals(
    planChunks(4096, 4096, 64, 2, { rows: null, columns: null }),
    null,
  );
  // A wide C is cut by rows when its columns may not be cut.
  assertEquals(planChunks(128, 784, 256, 2, rules[1])?.byRows, true);
});

const opened = openBlas({ threads: 1 });
if (!opened.ok) {
  // The OpenBLAS tests need the library: .ci/run and `deno task setup`
  // install it, so a missing one is a broken set-up, not a skip.
  Deno.test("OpenBLAS is installed", () => {
    throw new Error(`OpenBLAS did not load: ${opened.reason}`);
  });
} else {
  const whole = opened.blas;

  /** Deterministic values in [-1, 1), with a few exact zeros and ties. */
  const values = (length: number, seed: number) => {
    const v = new Float32Array(length);
    let s = seed >>> 0;
    for (let i = 0; i < length; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      v[i] = i % 97 === 0 ? 0 : s / 2 ** 31 - 1;
    }
    return v;
  };

  const sameBits = (x: Float32Array, y: Float32Array) => {
    const a = new Uint32Array(x.buffer, x.byteOffset, x.length);
    const b = new Uint32Array(y.buffer, y.byteOffset, y.length);
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
    return -1;
  };

  /** The split over `threads` threads, started (each test stops it). */
  const startSplit = async (threads: number): Promise<SplitBlas> => {
    const started = await startSplitBlas(whole, threads);
    assert(started.ok, started.ok ? "" : started.reason);
    return started.blas;
  };

  Deno.test("findCutRule: every cut it allows keeps the whole call's bits", () => {
    const rule = findCutRule(whole);
    assert(
      rule.rows !== null || rule.columns !== null,
      "no direction can be cut in this OpenBLAS build",
    );
    assertEquals(findCutRule(whole), rule);
    for (const align of [rule.rows, rule.columns]) {
      if (align !== null) {
        assert((ALIGNMENTS as readonly number[]).includes(align), `${align}`);
      }
    }
    let checked = 0;
    // Long sides past OpenBLAS's blocks of rows and columns (thousands),
    // odd ends, the course's layers' shapes; every transpose.
    const shapes = [
      [1111, 64, 257],
      [6272, 32, 800],
      [20011, 37, 64],
      [128, 784, 256],
      [784, 256, 128],
      [33, 1000, 600],
      [300, 4099, 96],
    ];
    for (const [i, [m, n, k]] of shapes.entries()) {
      for (const byRows of [true, false]) {
        const align = byRows ? rule.rows : rule.columns;
        const length = byRows ? m : n, perLine = (byRows ? n : m) * k;
        if (align === null) continue;
        // The first, a middle and the last multiple of the alignment that
        // leave both blocks above MIN_CHUNK_MNK.
        const cuts: number[] = [];
        for (let cut = align; cut < length; cut += align) {
          if (
            cut * perLine >= MIN_CHUNK_MNK &&
            (length - cut) * perLine >= MIN_CHUNK_MNK
          ) cuts.push(cut);
        }
        const chosen = [
          ...new Set([cuts[0], cuts[cuts.length >> 1], cuts.at(-1)]),
        ].filter((cut) => cut !== undefined);
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            const a = values(m * k, 5 * i + 1), b = values(k * n, 5 * i + 2);
            const expected = new Float32Array(m * n);
            whole.sgemm(transA, transB, m, n, k, a, b, expected);
            for (const cut of chosen) {
              const got = new Float32Array(m * n);
              const plan = { byRows, step: cut, chunks: 2 };
              gemmInBlocks(whole, plan, transA, transB, m, n, k, a, b, got);
              const at = sameBits(expected, got);
              assertEquals(
                at,
                -1,
                `${m} x ${n} x ${k} transA ${transA} transB ${transB}, ${
                  byRows ? "rows" : "columns"
                } cut at ${cut}: element ${at}`,
              );
              checked++;
            }
          }
        }
      }
    }
    assert(checked >= 20, `only ${checked} cuts were checked`);
  });

  for (const threads of [2, 3]) {
    Deno.test(`a product cut over ${threads} threads has the whole call's bits`, async () => {
      const split = await startSplit(threads);
      try {
        assertEquals(split.threads, threads);
        // Rows and columns cuts, odd ends (37, 1000, 1111), the shapes the
        // course's layers give (conv patches x filters, dense layers) and
        // products too small to cut (computed whole).
        const shapes = [
          [1000, 37, 500],
          [33, 1000, 600],
          [1111, 64, 257],
          [6272, 32, 800],
          [800, 32, 6272],
          [128, 784, 256],
          [784, 256, 128],
          [1024, 1024, 64],
          [130, 1, 100000],
          [64, 64, 64],
        ];
        let cut = 0;
        for (const [i, [m, n, k]] of shapes.entries()) {
          if (planChunks(m, n, k, threads, split.rule) !== null) cut++;
          const a = values(m * k, 3 * i + 1);
          const b = values(k * n, 3 * i + 2);
          const c0 = values(m * n, 3 * i + 3);
          for (const transA of [false, true]) {
            for (const transB of [false, true]) {
              for (const beta of [0, 1]) {
                const expected = c0.slice(), got = c0.slice();
                whole.sgemm(transA, transB, m, n, k, a, b, expected, beta);
                split.sgemm(transA, transB, m, n, k, a, b, got, beta);
                const at = sameBits(expected, got);
                assertEquals(
                  at,
                  -1,
                  `${m} x ${n} x ${k} transA ${transA} transB ${transB} beta ${beta}: element ${at} is ${
                    got[at]
                  }, the whole call gives ${expected[at]}`,
                );
              }
            }
          }
        }
        assert(cut >= 7, `only ${cut} shapes were cut`);
      } finally {
        split.stop();
      }
    });
  }

  Deno.test("products on views of one buffer, back to back, stay exact", async () => {
    // The kernels pass subarrays of the wasm heap: operands at offsets,
    // one job after another without a pause between them.
    const split = await startSplit(2);
    try {
      const [m, n, k] = [700, 48, 400];
      const heap = values(m * k + k * n + 2 * m * n + 10, 7);
      const a = heap.subarray(3, 3 + m * k);
      const b = heap.subarray(5 + m * k, 5 + m * k + k * n);
      for (let round = 0; round < 50; round++) {
        const expected = new Float32Array(m * n);
        const c = heap.subarray(heap.length - m * n);
        whole.sgemm(round % 2 === 1, false, m, n, k, a, b, expected);
        split.sgemm(round % 2 === 1, false, m, n, k, a, b, c);
        assertEquals(sameBits(expected, c), -1, `round ${round}`);
      }
    } finally {
      split.stop();
    }
  });

  Deno.test("started products finish in any order, past the ring's length, with the whole call's bits", async () => {
    const split = await startSplit(2);
    try {
      // Small products (one call each) and cut ones, 3 * RING calls in
      // all: the ring is written over while earlier tickets are unfinished.
      const shapes = [[300, 40, 200], [1000, 37, 500], [64, 64, 64]];
      const operands = shapes.map(([m, n, k], i) => ({
        m,
        n,
        k,
        a: values(m * k, 11 + i),
        b: values(k * n, 21 + i),
      }));
      const expected = operands.map(({ m, n, k, a, b }) => {
        const c = new Float32Array(m * n);
        whole.sgemm(false, true, m, n, k, a, b, c);
        return c;
      });
      const products = Array.from({ length: 3 * RING / 2 }, (_, i) => {
        const o = operands[i % operands.length];
        const c = new Float32Array(o.m * o.n);
        const ticket = split.start(false, true, o.m, o.n, o.k, o.a, o.b, c);
        return { c, ticket, i };
      });
      const calls = products.reduce((sum, p) => sum + p.ticket.count, 0);
      assert(calls >= 2 * RING, `only ${calls} calls were queued`);
      // The first tickets last: their slots have long been written again.
      for (const p of [...products.slice(8), ...products.slice(0, 8)]) {
        split.finish(p.ticket);
        split.finish(p.ticket); // twice is harmless
        const at = sameBits(expected[p.i % operands.length], p.c);
        assertEquals(at, -1, `product ${p.i}: element ${at}`);
      }
    } finally {
      split.stop();
    }
  });

  Deno.test("stop finishes the products started before it", async () => {
    const split = await startSplit(2);
    const [m, n, k] = [1000, 37, 500];
    const a = values(m * k, 5), b = values(k * n, 6);
    const expected = new Float32Array(m * n);
    whole.sgemm(false, false, m, n, k, a, b, expected);
    const outputs = Array.from({ length: 6 }, () => new Float32Array(m * n));
    const tickets = outputs.map((c) =>
      split.start(false, false, m, n, k, a, b, c)
    );
    split.stop();
    for (const [i, c] of outputs.entries()) {
      split.finish(tickets[i]);
      assertEquals(sameBits(expected, c), -1, `product ${i}`);
    }
  });

  Deno.test("a product started on one thread is computed before start returns", () => {
    const [m, n, k] = [300, 40, 200];
    const a = values(m * k, 1), b = values(k * n, 2);
    const expected = new Float32Array(m * n), got = new Float32Array(m * n);
    whole.sgemm(false, false, m, n, k, a, b, expected);
    const ticket = whole.start(false, false, m, n, k, a, b, got);
    assertEquals(sameBits(expected, got), -1);
    whole.finish(ticket);
    assertEquals(ticket.count, 0);
  });

  Deno.test("after stop, products run on the main thread, still exact", async () => {
    const split = await startSplit(2);
    split.stop();
    split.stop(); // twice is harmless
    assertEquals(split.threads, 1);
    const [m, n, k] = [1000, 37, 500];
    const a = values(m * k, 1), b = values(k * n, 2);
    const expected = new Float32Array(m * n), got = new Float32Array(m * n);
    whole.sgemm(false, false, m, n, k, a, b, expected);
    split.sgemm(false, false, m, n, k, a, b, got);
    assertEquals(sameBits(expected, got), -1);
  });

  Deno.test("the helper threads do not keep a script alive", async () => {
    const script = `
      import { openBlas } from ${
      JSON.stringify(new URL("../kernels/blas_kernels.ts", import.meta.url))
    };
      import { startSplitBlas } from ${
      JSON.stringify(new URL("../kernels/blas_split.ts", import.meta.url))
    };
      const opened = openBlas({ threads: 1 });
      if (!opened.ok) throw new Error(opened.reason);
      const split = await startSplitBlas(opened.blas, 2);
      if (!split.ok) throw new Error(split.reason);
      const c = new Float32Array(1000 * 37);
      split.blas.sgemm(false, false, 1000, 37, 500, new Float32Array(500000).fill(1), new Float32Array(500 * 37).fill(1), c);
      console.log(c[0]);
    `;
    const out = await runChildScript(script);
    const text = out.stdout.trim();
    assertEquals(
      out.code,
      0,
      `exit ${out.code} (killed after 60 s?): ${out.stderr}`,
    );
    assertEquals(text, "500");
  });

  Deno.test("seeded training prints the same numbers on 1 and 2 threads", async () => {
    const run = async (threads: number) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-env",
          "--allow-ffi",
          "--allow-sys",
          new URL("./thread_bits_script.ts", import.meta.url).pathname,
        ],
        env: { TFJS_WASM_THREADS: String(threads) },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
      return text.trim().split("\n");
    };
    const [oneLine, oneHash] = await run(1);
    const [twoLine, twoHash] = await run(2);
    assert(
      oneLine.includes("matMul on OpenBLAS") && oneLine.includes("(1 thread"),
      oneLine,
    );
    assert(twoLine.includes("(2 threads, the bits of 1"), twoLine);
    assert(/^hash [0-9a-f]+$/.test(oneHash), oneHash);
    assertEquals(twoHash, oneHash);
  });
}
