/**
 * A helper thread of kernels/blas_split.ts: it waits for calls in the
 * shared queue, claims them one at a time and computes each with a
 * one-thread `cblas_sgemm` on the addresses the main thread wrote (the
 * wasm heap, which does not move while a call is queued: the main thread
 * allocates nothing until it has finished the product).
 *
 * @module
 */
import { parentPort, workerData } from "node:worker_threads";
import { NO_TRANS, ROW_MAJOR, TRANS } from "./blas_kernels.ts";
import { CALL_FIELDS, queueViews, RING } from "./blas_split_plan.ts";
import { serveCalls } from "./claim_queue.ts";

const { control, path } = workerData as {
  control: SharedArrayBuffer;
  path: string;
};
const q = queueViews(control);
const counters = q.counters;

let lib;
try {
  // The same file as the main thread's: one library, one thread setting.
  lib = Deno.dlopen(
    path,
    {
      cblas_sgemm: {
        parameters: [
          "i32",
          "i32",
          "i32",
          "i32",
          "i32",
          "i32",
          "f32",
          "pointer",
          "i32",
          "pointer",
          "i32",
          "f32",
          "pointer",
          "i32",
        ],
        result: "void",
      },
    } as const,
  );
} catch (e) {
  parentPort!.postMessage({ error: e instanceof Error ? e.message : `${e}` });
  throw e;
}
const sgemm = lib.symbols.cblas_sgemm;

const pointer = (value: bigint): Deno.PointerValue =>
  Deno.UnsafePointer.create(value);

/** Computes call `id` of the queue. */
function runCall(id: number): void {
  const s = id & (RING - 1), f = s * CALL_FIELDS.length;
  const [transA, transB, m, n, k, lda, ldb, ldc] = q.fields.subarray(
    f,
    f + CALL_FIELDS.length,
  );
  sgemm(
    ROW_MAJOR,
    transA ? TRANS : NO_TRANS,
    transB ? TRANS : NO_TRANS,
    m,
    n,
    k,
    1,
    pointer(q.addresses[3 * s]),
    lda,
    pointer(q.addresses[3 * s + 1]),
    ldb,
    q.betas[s],
    pointer(q.addresses[3 * s + 2]),
    ldc,
  );
}

parentPort!.postMessage({ ready: true });
serveCalls(counters, (id) => {
  runCall(id);
  Atomics.store(q.finished, id & (RING - 1), (id + 1) | 0);
});
