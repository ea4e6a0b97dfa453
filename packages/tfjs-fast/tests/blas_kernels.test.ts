import * as tf from "@tensorflow/tfjs";
import { describeBackend, initBackend } from "../backend.ts";
import {
  openBlas,
  type OpenBlasOptions,
  useBlas,
} from "../kernels/blas_kernels.ts";
import { DEFAULT_BLAS, matMulPathTest } from "./matmul_paths.ts";
import { ArgumentError } from "../errors.ts";
import { randomNormal } from "./seeded.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertThrows,
} from "../../../tests/assert.ts";

await initBackend({ quiet: true });
const blas = DEFAULT_BLAS;

Deno.test("openBlas names the file it could not load and does not throw", () => {
  const result = openBlas({ paths: ["/nonexistent/libopenblas.so.0"] });
  assertEquals(result.ok, false);
  if (!result.ok) {
    assert(
      result.reason.includes("/nonexistent/libopenblas.so.0"),
      result.reason,
    );
  }
});

Deno.test("openBlas rejects a bad thread count, an empty path list or an unknown option", () => {
  for (const threads of [0, 1.5, 65]) {
    assertThrows(() => openBlas({ threads }), ArgumentError, "threads");
  }
  assertThrows(() => openBlas({ paths: [] }), ArgumentError, "paths");
  assertThrows(
    () => openBlas({ path: ["/x.so"] } as OpenBlasOptions),
    ArgumentError,
    'openBlas: unknown option "path" (did you mean "paths"?)',
  );
});

Deno.test("describeBackend says whether the matMuls run on OpenBLAS", () => {
  const line = describeBackend();
  if (blas) {
    assert(/matMul on OpenBLAS [\d.]+/.test(line), line);
  } else {
    assert(!line.includes("matMul on OpenBLAS"), line);
  }
});

// The thread count follows the machine's load (products are cut into
// one-thread blocks, so the bits do not: blas_split.test.ts), and the line
// says so. (Only where OpenBLAS loads and TFJS_WASM_THREADS does not ask.)
if (blas && Deno.env.get("TFJS_WASM_THREADS") === undefined) {
  Deno.test("describeBackend names OpenBLAS's thread count and says the bits are one thread's", () => {
    const line = describeBackend();
    assert(
      /matMul on OpenBLAS [\d.]+ \((1 thread|2 threads, the bits of 1): (default, [\d.]+ of \d CPUs free|[\d.]+ of \d CPUs free; TFJS_WASM_THREADS=2 forces 2|default, load [\d.]+|load [\d.]+ on \d CPUs, no idle core; TFJS_WASM_THREADS=2 forces 2)\)( \+ conv on oneDNN [\d.]+ \([^)]*\))?$/
        .test(line),
      line,
    );
  });
}

/** C = op(A) op(B) by the definition, in float64. */
function naiveProduct(
  ta: boolean,
  tb: boolean,
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  b: Float32Array,
): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) {
        sum += (ta ? a[p * m + i] : a[i * k + p]) *
          (tb ? b[j * k + p] : b[p * n + j]);
      }
      c[i * n + j] = sum;
    }
  }
  return c;
}

if (blas) {
  Deno.test("OpenBLAS sgemm binding: row-major, every transpose, leading dimensions", () => {
    const [m, n, k] = [7, 5, 11];
    const values = (length: number, seed: number) =>
      tf.tidy(() =>
        randomNormal([length], { seed }).dataSync() as Float32Array
      );
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        const a = values(m * k, 3);
        const b = values(k * n, 4);
        const c = new Float32Array(m * n).fill(Number.NaN); // beta = 0 overwrites
        blas.sgemm(ta, tb, m, n, k, a, b, c);
        assertAllClose(c, naiveProduct(ta, tb, m, n, k, a, b), {
          rtol: 1e-5,
          atol: 1e-5,
          message: `transA=${ta} transB=${tb}`,
        });
      }
    }
  });

  Deno.test("OpenBLAS and wasm matMuls agree and are deterministic", () => {
    const a = tf.randomNormal([3, 64, 96], 0, 1, "float32", 1);
    const b = tf.randomNormal([96, 80], 0, 1, "float32", 2);
    try {
      useBlas(null);
      const wasm = tf.tidy(() => tf.matMul(a, b).dataSync().slice());
      useBlas(blas);
      const first = tf.tidy(() => tf.matMul(a, b).dataSync().slice());
      const again = tf.tidy(() => tf.matMul(a, b).dataSync().slice());
      assertAllClose(first, wasm, { rtol: 1e-4, atol: 1e-4 });
      assertEquals(Array.from(again), Array.from(first), "same bits twice");
    } finally {
      useBlas(blas);
      tf.dispose([a, b]);
    }
  });
}

matMulPathTest("matMul with an empty dimension", () => {
  tf.tidy(() => {
    const noInner = tf.matMul(tf.zeros([3, 0]), tf.zeros([0, 4]));
    assertEquals(noInner.shape, [3, 4]);
    assertEquals(Array.from(noInner.dataSync()), new Array(12).fill(0));
    const noRows = tf.matMul(tf.zeros([0, 5]), tf.ones([5, 2]));
    assertEquals(noRows.shape, [0, 2]);
  });
});

Deno.test("TFJS_BLAS=0 turns the automatic choice off, not explicit paths", () => {
  const before = Deno.env.get("TFJS_BLAS");
  Deno.env.set("TFJS_BLAS", "0");
  try {
    const automatic = openBlas();
    assertEquals(automatic.ok, false);
    if (!automatic.ok) assertEquals(automatic.reason, "TFJS_BLAS=0");
    const explicit = openBlas({ paths: ["/nonexistent/libopenblas.so.0"] });
    assertEquals(explicit.ok, false);
    if (!explicit.ok) assert(explicit.reason.includes("/nonexistent/"));
  } finally {
    if (before === undefined) Deno.env.delete("TFJS_BLAS");
    else Deno.env.set("TFJS_BLAS", before);
  }
});
