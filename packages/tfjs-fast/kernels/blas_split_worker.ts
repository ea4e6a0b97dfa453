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
import { CALL_FIELDS, QUEUE, queueViews, RING } from "./blas_split_plan.ts";

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
for (;;) {
  const next = Atomics.load(counters, QUEUE.claimed);
  const posted = Atomics.load(counters, QUEUE.posted);
  if (Atomics.load(counters, QUEUE.stop) === 1) break;
  if (next === posted) {
    Atomics.wait(counters, QUEUE.posted, posted);
    continue;
  }
  // Fails when another thread took this call first.
  if (
    Atomics.compareExchange(counters, QUEUE.claimed, next, (next + 1) | 0) !==
      next
  ) continue;
  // The call's fields were written before the count that announced it.
  runCall(next);
  Atomics.store(q.finished, next & (RING - 1), (next + 1) | 0);
  Atomics.add(counters, QUEUE.done, 1);
  Atomics.notify(counters, QUEUE.done);
}
