/**
 * More threads for OpenBLAS's products with the bits of one thread.
 *
 * OpenBLAS's own threads change the last bits of some products (its
 * threaded build takes other code paths), so a seeded run would print other
 * numbers on an idle machine than on a busy one. Here every product stays
 * a one-thread `cblas_sgemm`: a large one is cut into blocks of rows (or
 * columns) of C (kernels/blas_split_plan.ts says why a block's bits are
 * the whole call's), and helper threads (node:worker_threads, each with
 * the same library) take blocks while the main thread takes the others.
 * A helper that is slow to wake costs nothing: the main thread claims every
 * block nobody has claimed, then waits only for blocks being computed.
 *
 * The kernels are synchronous, so the threads meet in a SharedArrayBuffer
 * with `Atomics.wait`/`notify`, not messages.
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import type { Blas } from "./blas_kernels.ts";
import {
  ADDRESS_BYTE_OFFSET,
  BETA_BYTE_OFFSET,
  chunkCall,
  CLAIM_BITS,
  CONTROL_BYTES,
  planChunks,
  SLOT,
} from "./blas_split_plan.ts";

/** A `Blas` whose large products run on several threads. */
export interface SplitBlas extends Blas {
  /** Stops the helper threads; later products run on the main thread. */
  stop(): void;
}

/** The result of `startSplitBlas`: the threaded `Blas`, or why not. */
export type SplitBlasResult = { ok: true; blas: SplitBlas } | {
  ok: false;
  reason: string;
};

/** How long the main thread waits for a helper's block before it gives up. */
const BLOCK_TIMEOUT_MS = 60_000;
/** Job numbers wrap so that job * CLAIM_BITS stays an int32. */
const JOBS = 1 << 24;

function address(view: Float32Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(view)));
}

/**
 * Starts `threads - 1` helper threads for `blas` (threads 2 to 8), checks on
 * a few products that the split gives the whole call's bits, and returns a
 * `Blas` that splits every product large enough. Does not throw when a
 * helper cannot start or the check fails: the result says why.
 */
export async function startSplitBlas(
  blas: Blas,
  threads: number,
): Promise<SplitBlasResult> {
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  const ctl = new Int32Array(control, 0, ADDRESS_BYTE_OFFSET / 4);
  const addresses = new BigInt64Array(control, ADDRESS_BYTE_OFFSET, 3);
  const betaSlot = new Float32Array(control, BETA_BYTE_OFFSET, 1);
  const workers: Worker[] = [];
  const stopWorkers = () => {
    Atomics.store(ctl, SLOT.stop, 1);
    Atomics.add(ctl, SLOT.claim, CLAIM_BITS);
    Atomics.notify(ctl, SLOT.claim);
    for (const w of workers) w.terminate();
    workers.length = 0;
  };
  try {
    await Promise.all(
      Array.from(
        { length: threads - 1 },
        () => startHelper(blas.path, control),
      ),
    ).then((started) => workers.push(...started));
  } catch (e) {
    stopWorkers();
    return { ok: false, reason: e instanceof Error ? e.message : `${e}` };
  }
  let job = 0;
  let stopped = false;

  const splitProduct: Blas["sgemm"] = (
    transA,
    transB,
    m,
    n,
    k,
    a,
    b,
    c,
    beta = 0,
  ) => {
    const plan = stopped ? null : planChunks(m, n, k, threads);
    if (plan === null) {
      return blas.sgemm(transA, transB, m, n, k, a, b, c, beta);
    }
    ctl[SLOT.chunks] = plan.chunks;
    ctl[SLOT.byRows] = plan.byRows ? 1 : 0;
    ctl[SLOT.step] = plan.step;
    ctl[SLOT.transA] = transA ? 1 : 0;
    ctl[SLOT.transB] = transB ? 1 : 0;
    ctl[SLOT.m] = m;
    ctl[SLOT.n] = n;
    ctl[SLOT.k] = k;
    addresses[0] = address(a);
    addresses[1] = address(b);
    addresses[2] = address(c);
    betaSlot[0] = beta;
    job = (job + 1) % JOBS;
    Atomics.store(ctl, SLOT.done, 0);
    // Publishing the claim word publishes the parameters written above.
    Atomics.store(ctl, SLOT.claim, job * CLAIM_BITS);
    Atomics.notify(ctl, SLOT.claim);
    for (;;) {
      const index = Atomics.add(ctl, SLOT.claim, 1) % CLAIM_BITS;
      if (index >= plan.chunks) break;
      const block = chunkCall(plan, index, transA, transB, m, n, k);
      blas.gemm(
        transA,
        transB,
        block.m,
        block.n,
        k,
        a.subarray(block.aOffset),
        block.lda,
        b.subarray(block.bOffset),
        block.ldb,
        beta,
        c.subarray(block.cOffset),
        block.ldc,
      );
      Atomics.add(ctl, SLOT.done, 1);
    }
    for (;;) {
      const done = Atomics.load(ctl, SLOT.done);
      if (done >= plan.chunks) return;
      if (
        Atomics.wait(ctl, SLOT.done, done, BLOCK_TIMEOUT_MS) === "timed-out"
      ) {
        stopped = true;
        stopWorkers();
        throw new Error(
          `sgemm: a helper thread did not finish its block of a ${m} x ${n} x ${k} product in ${
            BLOCK_TIMEOUT_MS / 1000
          } s; the helpers are stopped`,
        );
      }
    }
  };

  const split: SplitBlas = {
    path: blas.path,
    config: blas.config,
    get threads() {
      return stopped ? 1 : threads;
    },
    sgemm: splitProduct,
    gemm: blas.gemm,
    stop() {
      if (stopped) return;
      stopped = true;
      stopWorkers();
    },
  };
  const mismatch = checkSplit(blas, split, threads);
  if (mismatch !== null) {
    split.stop();
    return { ok: false, reason: mismatch };
  }
  return { ok: true, blas: split };
}

/** Starts one helper and resolves once it has opened the library. */
function startHelper(
  path: string,
  control: SharedArrayBuffer,
): Promise<Worker> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(
      new URL("./blas_split_worker.ts", import.meta.url),
      { workerData: { control, path } },
    );
    // The helper waits in Atomics.wait forever: it must not keep the
    // process alive after the script's own work ends.
    worker.unref();
    const timer = setTimeout(() => {
      worker.terminate();
      reject(new Error("a helper thread did not start within 30 s"));
    }, 30_000);
    worker.once("message", (message: { ready?: boolean; error?: string }) => {
      clearTimeout(timer);
      if (message.ready) resolve(worker);
      else {
        worker.terminate();
        reject(new Error(`a helper thread failed: ${message.error}`));
      }
    });
    worker.once("error", (e: Error) => {
      clearTimeout(timer);
      reject(new Error(`a helper thread failed: ${e.message}`));
    });
  });
}

/**
 * Products the split must reproduce bit for bit: every transpose, both
 * cuts, odd sizes at the ends, beta 0 and 1. Null when all match.
 */
function checkSplit(blas: Blas, split: Blas, threads: number): string | null {
  const shapes = [[1000, 37, 500], [33, 1000, 600], [384, 128, 300]];
  let seed = 1;
  const random = (length: number) => {
    const v = new Float32Array(length);
    for (let i = 0; i < length; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      v[i] = seed / 2 ** 31 - 1;
    }
    return v;
  };
  for (const [m, n, k] of shapes) {
    if (planChunks(m, n, k, threads) === null) continue;
    const a = random(m * k), b = random(k * n), c0 = random(m * n);
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const beta of [0, 1]) {
          const whole = c0.slice(), parts = c0.slice();
          blas.sgemm(transA, transB, m, n, k, a, b, whole, beta);
          split.sgemm(transA, transB, m, n, k, a, b, parts, beta);
          const w = new Uint32Array(whole.buffer);
          const p = new Uint32Array(parts.buffer);
          if (w.some((bits, i) => bits !== p[i])) {
            return `a ${m} x ${n} x ${k} product (transA ${transA}, transB ${transB}, beta ${beta}) cut into blocks differs from the whole call in this OpenBLAS build`;
          }
        }
      }
    }
  }
  return null;
}
