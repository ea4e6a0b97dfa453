/**
 * More threads for OpenBLAS's products with the bits of one thread.
 *
 * OpenBLAS's own threads change the last bits of some products (its
 * threaded build takes other code paths), so a seeded run would print other
 * numbers on an idle machine than on a busy one. Here every product stays
 * a one-thread `cblas_sgemm`: a large one is cut into blocks of rows (or
 * columns) of C where this OpenBLAS build gives them the whole call's bits
 * (found when the helpers start, `findCutRule`; kernels/blas_split_plan.ts
 * says why), and helper threads (node:worker_threads, each with
 * the same library) take blocks while the main thread takes the others.
 * A helper that is slow to wake costs nothing: the main thread claims every
 * block nobody has claimed, then waits only for blocks being computed.
 *
 * Products can also be started and finished later (`start`, `finish`), so
 * that the helpers compute one while the main thread prepares the next
 * (a convolution's im2col, kernels/conv_kernels.ts).
 *
 * The kernels are synchronous, so the threads meet in a SharedArrayBuffer
 * (a ring of calls, kernels/blas_split_plan.ts) with `Atomics.wait`/
 * `notify`, not messages.
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import type { Blas, ProductTicket } from "./blas_kernels.ts";
import {
  ALIGNMENTS,
  CALL_FIELDS,
  chunkCall,
  type ChunkPlan,
  type CutRule,
  MIN_CHUNK_MNK,
  planChunks,
  queueLayout,
  queueViews,
  RING,
} from "./blas_split_plan.ts";
import { CLAIM, finishCalls } from "./claim_queue.ts";

/** A `Blas` whose large products run on several threads. */
export interface SplitBlas extends Blas {
  /**
   * Finishes the products started and not yet finished, then stops the
   * helper threads; later products run on the main thread.
   */
  stop(): void;
  /** Where this build's products are cut (`findCutRule`). */
  readonly rule: CutRule;
}

/** The result of `startSplitBlas`: the threaded `Blas`, or why not. */
export type SplitBlasResult = { ok: true; blas: SplitBlas } | {
  ok: false;
  reason: string;
};

/** How long the main thread waits for a helper's block before it gives up. */
const BLOCK_TIMEOUT_MS = 60_000;

/** One posted call: `Blas.gemm`'s arguments. */
interface GemmCall {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  a: Float32Array;
  lda: number;
  b: Float32Array;
  ldb: number;
  beta: number;
  c: Float32Array;
  ldc: number;
}

function address(view: Float32Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(view)));
}

/**
 * Finds where `blas`'s products can be cut (`findCutRule`), starts
 * `threads - 1` helper threads (threads 2 to 8), checks on a few products
 * that the split gives the whole call's bits, and returns a `Blas` that
 * splits every product large enough. Does not throw when no cut keeps the
 * bits, a helper cannot start or the check fails: the result says why.
 */
export async function startSplitBlas(
  blas: Blas,
  threads: number,
): Promise<SplitBlasResult> {
  const rule = findCutRule(blas);
  if (rule.rows === null && rule.columns === null) {
    return {
      ok: false,
      reason:
        "no cut of this OpenBLAS build's products into blocks of rows or columns gives the whole call's bits",
    };
  }
  const shared = new SharedArrayBuffer(queueLayout().bytes);
  const q = queueViews(shared);
  const counters = q.counters;
  const workers: Worker[] = [];
  const stopWorkers = () => {
    Atomics.store(counters, CLAIM.stop, 1);
    Atomics.notify(counters, CLAIM.posted);
    for (const w of workers) w.terminate();
    workers.length = 0;
  };
  try {
    await Promise.all(
      Array.from(
        { length: threads - 1 },
        () => startHelper(blas.path, shared),
      ),
    ).then((started) => workers.push(...started));
  } catch (e) {
    stopWorkers();
    return { ok: false, reason: e instanceof Error ? e.message : `${e}` };
  }
  let stopped = false;
  // Calls are numbered from 0 (int32, wrapping); `posted` counts them all.
  let posted = 0;
  let postedEver = 0;
  const calls: (GemmCall | null)[] = new Array(RING).fill(null);
  const slot = (id: number) => id & (RING - 1);
  // A call RING or more behind the last one was finished before its slot
  // was written again.
  const isFinished = (id: number) =>
    ((posted - id) | 0) > RING ||
    Atomics.load(q.finished, slot(id)) === ((id + 1) | 0);

  const run = (id: number) => {
    const c = calls[slot(id)]!;
    blas.gemm(
      c.transA,
      c.transB,
      c.m,
      c.n,
      c.k,
      c.a,
      c.lda,
      c.b,
      c.ldb,
      c.beta,
      c.c,
      c.ldc,
    );
    calls[slot(id)] = null;
    Atomics.store(q.finished, slot(id), (id + 1) | 0);
    Atomics.add(counters, CLAIM.done, 1);
  };

  /**
   * Returns once call `id` is done; until then computes here any call no
   * thread has claimed, later ones too (left to a helper, a later call may
   * be the one the main thread waits for next).
   */
  const finishCall = (id: number) => {
    if (
      !finishCalls(
        counters,
        () => isFinished(id),
        () => posted,
        run,
        BLOCK_TIMEOUT_MS,
      )
    ) {
      stopped = true;
      stopWorkers();
      const c = calls[slot(id)];
      throw new Error(
        `sgemm: a helper thread did not finish its block of a ${c?.m} x ${c?.n} x ${c?.k} product in ${
          BLOCK_TIMEOUT_MS / 1000
        } s; the helpers are stopped`,
      );
    }
  };

  const post = (call: GemmCall): number => {
    const id = posted;
    // The slot's last call must be done before the slot is written again.
    if (postedEver >= RING) finishCall((id - RING) | 0);
    const s = slot(id), f = s * CALL_FIELDS.length;
    calls[s] = call;
    q.fields.set([
      call.transA ? 1 : 0,
      call.transB ? 1 : 0,
      call.m,
      call.n,
      call.k,
      call.lda,
      call.ldb,
      call.ldc,
    ], f);
    q.addresses[3 * s] = address(call.a);
    q.addresses[3 * s + 1] = address(call.b);
    q.addresses[3 * s + 2] = address(call.c);
    q.betas[s] = call.beta;
    posted = (id + 1) | 0;
    postedEver++;
    // Publishing the count publishes the call written above.
    Atomics.store(counters, CLAIM.posted, posted);
    Atomics.notify(counters, CLAIM.posted);
    return id;
  };

  const start: Blas["start"] = (
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
    if (stopped) {
      blas.sgemm(transA, transB, m, n, k, a, b, c, beta);
      return { first: 0, count: 0 };
    }
    // A product too small to cut is still one call a helper can take.
    const plan = planChunks(m, n, k, threads, rule) ??
      { byRows: true, step: m, chunks: 1 };
    const first = posted;
    for (let i = 0; i < plan.chunks; i++) {
      const block = chunkCall(plan, i, transA, transB, m, n, k);
      post({
        transA,
        transB,
        m: block.m,
        n: block.n,
        k,
        a: a.subarray(block.aOffset),
        lda: block.lda,
        b: b.subarray(block.bOffset),
        ldb: block.ldb,
        beta,
        c: c.subarray(block.cOffset),
        ldc: block.ldc,
      });
    }
    return { first, count: plan.chunks };
  };

  const finish = (ticket: ProductTicket) => {
    for (let i = 0; i < ticket.count; i++) {
      if (stopped) break;
      finishCall((ticket.first + i) | 0);
    }
  };

  const split: SplitBlas = {
    rule,
    path: blas.path,
    config: blas.config,
    get threads() {
      return stopped ? 1 : threads;
    },
    sgemm(transA, transB, m, n, k, a, b, c, beta = 0) {
      if (stopped || planChunks(m, n, k, threads, rule) === null) {
        return blas.sgemm(transA, transB, m, n, k, a, b, c, beta);
      }
      finish(start(transA, transB, m, n, k, a, b, c, beta));
    },
    gemm: blas.gemm,
    start,
    finish,
    stop() {
      if (stopped) return;
      // Calls still queued or running are finished first: a helper stopped
      // mid-call would leave its block half written.
      for (let i = Math.min(postedEver, RING); i >= 1; i--) {
        finishCall((posted - i) | 0);
      }
      stopped = true;
      stopWorkers();
    },
  };
  const mismatch = checkSplit(blas, split, threads, rule);
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
function checkSplit(
  blas: Blas,
  split: Blas,
  threads: number,
  rule: CutRule,
): string | null {
  const shapes = [[1000, 37, 500], [33, 1000, 600], [384, 128, 300]];
  const random = randomValues(1);
  for (const [m, n, k] of shapes) {
    if (planChunks(m, n, k, threads, rule) === null) continue;
    const a = random(m * k), b = random(k * n), c0 = random(m * n);
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const beta of [0, 1]) {
          const whole = c0.slice(), parts = c0.slice();
          blas.sgemm(transA, transB, m, n, k, a, b, whole, beta);
          split.sgemm(transA, transB, m, n, k, a, b, parts, beta);
          if (!sameBits(whole, parts)) {
            return `a ${m} x ${n} x ${k} product (transA ${transA}, transB ${transB}, beta ${beta}) cut into blocks differs from the whole call in this OpenBLAS build`;
          }
        }
      }
    }
  }
  return null;
}

/**
 * C = op(A) op(B) (row-major, beta 0) as `plan`'s blocks, one one-thread
 * call each on this thread, in order: what the helpers would compute,
 * without them.
 */
export function gemmInBlocks(
  blas: Blas,
  plan: ChunkPlan,
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
): void {
  for (let i = 0; i < plan.chunks; i++) {
    const block = chunkCall(plan, i, transA, transB, m, n, k);
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
      0,
      c.subarray(block.cOffset),
      block.ldc,
    );
  }
}

/**
 * Where this build's products can be cut with the whole call's bits: for
 * rows and for columns of C, the smallest of `ALIGNMENTS` at which cut
 * products are exact, or null when none is. Each alignment is probed on
 * the main thread with one-thread calls: a product cut into three blocks
 * (at `align` and `2 align`, the last `align + 5` long, each above
 * `MIN_CHUNK_MNK`), against the whole call, with the uncut side 37 and
 * 300 long. A cut at a multiple of `align` that is not where the kernel
 * starts a group of rows or columns changes the code that computes the
 * elements after it, and so their bits.
 */
export function findCutRule(blas: Blas): CutRule {
  // One set of operands for every probe: each one's A and B are shorter
  // than MIN_CHUNK_MNK / ALIGNMENTS[0] + 1024 (k is at most that over the
  // uncut side, 3 align + 5 is at most 3.7 align).
  const longest = Math.ceil(MIN_CHUNK_MNK / ALIGNMENTS[0]) + 1024;
  const values = randomValues(7)(2 * longest);
  const exactAt = (byRows: boolean, align: number) =>
    [37, 300].every((width) => {
      const length = 3 * align + 5;
      const k = Math.ceil(MIN_CHUNK_MNK / (align * width));
      const m = byRows ? length : width, n = byRows ? width : length;
      if (m * k > longest || k * n > longest) {
        throw new Error(`findCutRule: a ${m} x ${n} x ${k} probe is too long`);
      }
      const a = values.subarray(0, m * k);
      const b = values.subarray(longest, longest + k * n);
      const whole = new Float32Array(m * n), parts = new Float32Array(m * n);
      blas.gemm(false, false, m, n, k, a, k, b, n, 0, whole, n);
      // Blocks of align, align and (the last, to the end) align + 5.
      const plan = { byRows, step: align, chunks: 3 };
      gemmInBlocks(blas, plan, false, false, m, n, k, a, b, parts);
      return sameBits(whole, parts);
    });
  const smallest = (byRows: boolean) =>
    ALIGNMENTS.find((align) => exactAt(byRows, align)) ?? null;
  return { rows: smallest(true), columns: smallest(false) };
}

/** Deterministic values in [-1, 1) from a linear congruential sequence. */
function randomValues(seed: number): (length: number) => Float32Array {
  return (length) => {
    const v = new Float32Array(length);
    for (let i = 0; i < length; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      v[i] = seed / 2 ** 31 - 1;
    }
    return v;
  };
}

function sameBits(x: Float32Array, y: Float32Array): boolean {
  const a = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const b = new Uint32Array(y.buffer, y.byteOffset, y.length);
  return a.every((bits, i) => bits === b[i]);
}
