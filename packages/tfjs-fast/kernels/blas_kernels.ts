/**
 * An optional matMul path through a system OpenBLAS, called with Deno's FFI
 * directly on the wasm backend's heap (no copies).
 *
 * tfjs-backend-wasm's matMul (XNNPACK) reaches ~45 GFLOP/s on one thread of
 * the 2-core machine the course was measured on; OpenBLAS's `cblas_sgemm`
 * reaches ~120 on one thread and ~230 on two (README.md). MLP
 * training steps are mostly matMuls, so this path is what brings the GAN
 * and dVAE steps near PyTorch, which uses the same OpenBLAS.
 *
 * It is used only when everything it needs is there: Deno with FFI
 * permission (`--allow-ffi`; the Jupyter kernel has it), and an OpenBLAS
 * shared library (Debian: `libopenblas0`, which the Jupyter packages pull
 * in; macOS: Homebrew's `openblas`). Otherwise the wasm kernels run, and
 * `openBlas` says why in its `reason`. `TFJS_BLAS=0` turns it off; a path
 * in `TFJS_BLAS` names the library to load.
 *
 * Results differ from the wasm kernels in the last bits (another summation
 * order), so a seeded run reproduces exactly only on the same path, which
 * `describeBackend()` names.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { ProductGeometry, WasmBackendLike } from "./fast_kernels.ts";
import {
  libraryRequest,
  type OpenedLibrary,
  openFirst,
} from "./ffi_library.ts";

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32", // order
      "i32", // transA
      "i32", // transB
      "i32", // M
      "i32", // N
      "i32", // K
      "f32", // alpha
      "buffer", // A
      "i32", // lda
      "buffer", // B
      "i32", // ldb
      "f32", // beta
      "buffer", // C
      "i32", // ldc
    ],
    result: "void",
  },
  openblas_set_num_threads: { parameters: ["i32"], result: "void" },
  openblas_get_num_threads: { parameters: [], result: "i32" },
  openblas_get_config: { parameters: [], result: "pointer" },
} as const;

type BlasSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** CBLAS's enum values for row-major storage and (no) transpose. */
export const ROW_MAJOR = 101;
export const NO_TRANS = 111;
export const TRANS = 112;

/** Where an OpenBLAS shared library is looked for, in order. */
export const OPENBLAS_CANDIDATES: readonly string[] = [
  "libopenblas.so.0",
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
  "libopenblas.so",
  "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
  "/usr/local/opt/openblas/lib/libopenblas.dylib",
  "libopenblas.dylib",
];

/** An opened OpenBLAS. */
export interface Blas {
  /** The library file that was loaded. */
  path: string;
  /** OpenBLAS's own build description, e.g. "OpenBLAS 0.3.21 ... Haswell". */
  config: string;
  /** Threads OpenBLAS uses for one product (set process-wide). */
  readonly threads: number;
  /**
   * Row-major C = op(A) op(B) + beta C (alpha 1; beta 0 by default, 1 to
   * accumulate) on float32 views, with op a transpose when asked.
   */
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    beta?: number,
  ): void;
  /**
   * The same product with explicit leading dimensions (row-major: the
   * stored row lengths), for a block of a larger product.
   */
  gemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    lda: number,
    b: Float32Array,
    ldb: number,
    beta: number,
    c: Float32Array,
    ldc: number,
  ): void;
  /**
   * Starts the product `sgemm` computes and returns before it is done when
   * other threads can take it (1 thread: computes it now). Until `finish`
   * of the ticket returns, the operands must stay where they are and C
   * must not be read: nothing may allocate on the wasm heap, which could
   * move it.
   */
  start(...product: Parameters<Blas["sgemm"]>): ProductTicket;
  /**
   * Returns once the product of `ticket` is done, computing its parts no
   * other thread has taken.
   */
  finish(ticket: ProductTicket): void;
}

/** A started product: the numbers of its calls in the helpers' queue. */
export interface ProductTicket {
  readonly first: number;
  readonly count: number;
}

/** The result of `openBlas`: the library, or why it is not used. */
export type OpenBlasResult = { ok: true; blas: Blas } | {
  ok: false;
  reason: string;
};

/** Libraries already opened, by the path they were asked for. */
const opened = new Map<
  string,
  { lib: Deno.DynamicLibrary<typeof SYMBOLS>; path: string }
>();

function load(paths: readonly string[]): OpenedLibrary<typeof SYMBOLS> {
  for (const path of paths) {
    const known = opened.get(path);
    if (known) return known;
  }
  const found = openFirst(paths, SYMBOLS, "OpenBLAS");
  if ("lib" in found) opened.set(found.path, found);
  return found;
}

/** Options for `openBlas`. */
export interface OpenBlasOptions {
  /** Threads for OpenBLAS (1 to 64; default 1). */
  threads?: number;
  /**
   * Library files to try, in order (default: env `TFJS_BLAS` when it is a
   * path, else `OPENBLAS_CANDIDATES`). Given paths are tried even when
   * `TFJS_BLAS=0`, which turns off the automatic choice only.
   */
  paths?: readonly string[];
}

/**
 * Opens OpenBLAS (each file once per process) and sets its thread count.
 * Does not throw when the library or the FFI permission is missing: the
 * result then says why. `TFJS_BLAS=0` in the environment disables it;
 * `TFJS_BLAS=/path/to/libopenblas.so` picks the file.
 */
export function openBlas(options?: OpenBlasOptions): OpenBlasResult {
  const request = libraryRequest(
    "openBlas",
    "TFJS_BLAS",
    options,
    OPENBLAS_CANDIDATES,
  );
  if ("reason" in request) return { ok: false, reason: request.reason };
  const { threads, paths } = request;
  const found = load(paths);
  if ("error" in found) return { ok: false, reason: found.error };
  const s: BlasSymbols = found.lib.symbols;
  s.openblas_set_num_threads(threads);
  const configPtr = s.openblas_get_config();
  const config = configPtr
    ? new Deno.UnsafePointerView(configPtr).getCString()
    : "OpenBLAS";
  const gemm: Blas["gemm"] = (
    transA,
    transB,
    m,
    n,
    k,
    a,
    lda,
    b,
    ldb,
    beta,
    c,
    ldc,
  ) =>
    s.cblas_sgemm(
      ROW_MAJOR,
      transA ? TRANS : NO_TRANS,
      transB ? TRANS : NO_TRANS,
      m,
      n,
      k,
      1,
      a,
      lda,
      b,
      ldb,
      beta,
      c,
      ldc,
    );
  return {
    ok: true,
    blas: {
      path: found.path,
      config,
      get threads() {
        return s.openblas_get_num_threads();
      },
      sgemm(transA, transB, m, n, k, a, b, c, beta = 0) {
        gemm(
          transA,
          transB,
          m,
          n,
          k,
          a,
          transA ? m : k,
          b,
          transB ? k : n,
          beta,
          c,
          n,
        );
      },
      gemm,
      start(transA, transB, m, n, k, a, b, c, beta = 0) {
        this.sgemm(transA, transB, m, n, k, a, b, c, beta);
        return DONE;
      },
      finish() {},
    },
  };
}

/** The ticket of a product computed before `start` returned. */
const DONE: ProductTicket = { first: 0, count: 0 };

let active: Blas | null = null;

/** The OpenBLAS the wasm matMul kernels call, or null when they do not. */
export function activeBlas(): Blas | null {
  return active;
}

/** Whether the product of `a` and `b` runs on OpenBLAS (in use, float32). */
export function blasHandles(a: tf.TensorInfo, b: tf.TensorInfo): boolean {
  return active !== null && a.dtype === "float32" && b.dtype === "float32";
}

/**
 * BatchMatMul on OpenBLAS into `out`, for inputs `blasHandles` accepts and
 * a non-empty product (`g` from `productGeometry`). Batch dimensions
 * broadcast as in tfjs's own kernels (batch index modulo each side's batch
 * size); transposes are sgemm's flags, so nothing is copied.
 */
export function blasBatchMatMul(
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  out: tf.TensorInfo,
  g: ProductGeometry,
  backend: WasmBackendLike,
): void {
  const { m, n, k, batchA, batchB, batch, transposeA, transposeB } = g;
  // Views only after the caller's last allocation: a growing heap detaches them.
  const av = backend.typedArrayFromHeap(a) as Float32Array;
  const bv = backend.typedArrayFromHeap(b) as Float32Array;
  const ov = backend.typedArrayFromHeap(out) as Float32Array;
  for (let i = 0; i < batch; i++) {
    const ai = (i % batchA) * m * k;
    const bi = (i % batchB) * k * n;
    active!.sgemm(
      transposeA,
      transposeB,
      m,
      n,
      k,
      batch === 1 ? av : av.subarray(ai, ai + m * k),
      batch === 1 ? bv : bv.subarray(bi, bi + k * n),
      batch === 1 ? ov : ov.subarray(i * m * n, (i + 1) * m * n),
    );
  }
}

/**
 * Makes the wasm matMul kernels (kernels/fast_kernels.ts) call `blas`,
 * or stop calling it with null. Takes effect at once, for every later
 * matMul.
 */
export function useBlas(blas: Blas | null): void {
  active = blas;
}
