/**
 * A helper thread of kernels/blas_split.ts: it waits for a product, claims
 * blocks of it and computes each with a one-thread `cblas_sgemm` on the
 * addresses the main thread wrote (the wasm heap, which does not move
 * while a product runs: the main thread waits for every block).
 *
 * @module
 */
import { parentPort, workerData } from "node:worker_threads";
import { NO_TRANS, ROW_MAJOR, TRANS } from "./blas_kernels.ts";
import {
  ADDRESS_BYTE_OFFSET,
  BETA_BYTE_OFFSET,
  chunkCall,
  CLAIM_BITS,
  SLOT,
} from "./blas_split_plan.ts";

const { control, path } = workerData as {
  control: SharedArrayBuffer;
  path: string;
};
const ctl = new Int32Array(control, 0, ADDRESS_BYTE_OFFSET / 4);
const addresses = new BigInt64Array(control, ADDRESS_BYTE_OFFSET, 3);
const beta = new Float32Array(control, BETA_BYTE_OFFSET, 1);

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

function at(slot: number, floats: number): Deno.PointerValue {
  return Deno.UnsafePointer.create(addresses[slot] + BigInt(floats * 4));
}

/** Computes block `index` of the current job. */
function runBlock(index: number): void {
  const transA = ctl[SLOT.transA] === 1, transB = ctl[SLOT.transB] === 1;
  const m = ctl[SLOT.m], n = ctl[SLOT.n], k = ctl[SLOT.k];
  const plan = {
    byRows: ctl[SLOT.byRows] === 1,
    step: ctl[SLOT.step],
    chunks: ctl[SLOT.chunks],
  };
  const call = chunkCall(plan, index, transA, transB, m, n, k);
  sgemm(
    ROW_MAJOR,
    transA ? TRANS : NO_TRANS,
    transB ? TRANS : NO_TRANS,
    call.m,
    call.n,
    k,
    1,
    at(0, call.aOffset),
    call.lda,
    at(1, call.bOffset),
    call.ldb,
    beta[0],
    at(2, call.cOffset),
    call.ldc,
  );
}

parentPort!.postMessage({ ready: true });
let seen = Atomics.load(ctl, SLOT.claim);
for (;;) {
  Atomics.wait(ctl, SLOT.claim, seen);
  if (Atomics.load(ctl, SLOT.stop) === 1) break;
  for (;;) {
    const word = Atomics.load(ctl, SLOT.claim);
    const index = word % CLAIM_BITS;
    // The job's parameters were written before its claim word: read after it.
    if (index >= ctl[SLOT.chunks]) {
      seen = word;
      break;
    }
    // Fails when another thread took this block or a new job began.
    if (Atomics.compareExchange(ctl, SLOT.claim, word, word + 1) !== word) {
      continue;
    }
    runBlock(index);
    Atomics.add(ctl, SLOT.done, 1);
    Atomics.notify(ctl, SLOT.done);
  }
}
