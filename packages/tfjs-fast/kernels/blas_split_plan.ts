/**
 * How one sgemm is cut into blocks of rows (or columns) of C that separate
 * one-thread sgemm calls compute with the same bits as the whole call.
 *
 * Why the cut keeps the bits: OpenBLAS's blocked sgemm sums each element of
 * C over k in blocks whose sizes depend on k only, and tiles C's rows and
 * columns from the start in multiples of its register tile, with the odd
 * tile at the end. A block that starts at a multiple of `CHUNK_ALIGN` and
 * keeps the whole of k computes every element in that same order. Small
 * products take other code (the "direct" and small-matrix kernels of some
 * cores, under `MIN_CHUNK_MNK`), so the whole product and every block must
 * stay above it. `tests/blas_split.test.ts` and the check the helpers run
 * when they start hold an OpenBLAS build to this.
 *
 * @module
 */

/** Fewest multiply-adds (m n k) in one block: OpenBLAS's direct sgemm stops here. */
export const MIN_CHUNK_MNK = 28 * 512 * 512;
/** Blocks start at multiples of this many rows or columns. */
export const CHUNK_ALIGN = 64;
/** At most this many blocks per product. */
export const MAX_CHUNKS = 32;

/** A product cut into `chunks` blocks of `step` rows or columns of C. */
export interface ChunkPlan {
  byRows: boolean;
  step: number;
  chunks: number;
}

/**
 * The cut for an m x n x k product shared by `threads` threads, or null when
 * it is too small to cut: every block at least `MIN_CHUNK_MNK` multiply-adds
 * and `CHUNK_ALIGN` rows (or columns) but the last.
 */
export function planChunks(
  m: number,
  n: number,
  k: number,
  threads: number,
): ChunkPlan | null {
  const byRows = m >= n;
  const length = byRows ? m : n;
  const perLine = (byRows ? n : m) * k;
  for (let chunks = Math.min(threads, MAX_CHUNKS); chunks >= 2; chunks--) {
    const step = Math.ceil(length / chunks / CHUNK_ALIGN) * CHUNK_ALIGN;
    const used = Math.ceil(length / step);
    const last = length - (used - 1) * step;
    if (used >= 2 && last * perLine >= MIN_CHUNK_MNK) {
      return { byRows, step, chunks: used };
    }
  }
  return null;
}

/**
 * One block's sgemm: its size, where its operands start (in floats) and the
 * leading dimensions, which stay the whole product's.
 */
export interface ChunkCall {
  m: number;
  n: number;
  aOffset: number;
  bOffset: number;
  cOffset: number;
  lda: number;
  ldb: number;
  ldc: number;
}

/**
 * Block `index` of `plan` for the row-major product C (m x n) = op(A) op(B),
 * op(A) m x k, op(B) k x n.
 */
export function chunkCall(
  plan: ChunkPlan,
  index: number,
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
): ChunkCall {
  const start = index * plan.step;
  const leading = { lda: transA ? m : k, ldb: transB ? k : n, ldc: n };
  if (plan.byRows) {
    return {
      m: Math.min(plan.step, m - start),
      n,
      aOffset: transA ? start : start * k,
      bOffset: 0,
      cOffset: start * n,
      ...leading,
    };
  }
  return {
    m,
    n: Math.min(plan.step, n - start),
    aOffset: 0,
    bOffset: transB ? start * k : start,
    cOffset: start,
    ...leading,
  };
}

/**
 * The queue the main thread and the helpers share (one SharedArrayBuffer):
 * a few Int32 counters (kernels/claim_queue.ts), then a ring of `RING`
 * calls, each its parameters (Int32), its operand addresses (BigInt64) and
 * its beta (Float32), and the number each call writes when it is done.
 *
 * Calls the ring holds: at most this many posted and not finished. */
export const RING = 128;
/** Int32 parameters per call, in this order. */
export const CALL_FIELDS = [
  "transA",
  "transB",
  "m",
  "n",
  "k",
  "lda",
  "ldb",
  "ldc",
] as const;

/** Where each part of the queue starts in the shared buffer (bytes). */
export function queueLayout(): {
  counters: number;
  fields: number;
  addresses: number;
  betas: number;
  finished: number;
  bytes: number;
} {
  const counters = 0;
  const fields = 64;
  const addresses = fields + 4 * RING * CALL_FIELDS.length;
  const betas = addresses + 8 * RING * 3;
  const finished = betas + 4 * RING;
  return {
    counters,
    fields,
    addresses,
    betas,
    finished,
    bytes: finished + 4 * RING,
  };
}

/** The typed views of the queue's buffer that both sides use. */
export interface QueueViews {
  counters: Int32Array;
  fields: Int32Array;
  addresses: BigInt64Array;
  betas: Float32Array;
  /** finished[i % RING] = i + 1 once call i is done. */
  finished: Int32Array;
}

/**
 * The queue's parts over `buffer` (of `queueLayout().bytes`), the same on
 * the main thread and in every helper.
 */
export function queueViews(buffer: SharedArrayBuffer): QueueViews {
  const at = queueLayout();
  return {
    counters: new Int32Array(buffer, at.counters, 16),
    fields: new Int32Array(buffer, at.fields, RING * CALL_FIELDS.length),
    addresses: new BigInt64Array(buffer, at.addresses, RING * 3),
    betas: new Float32Array(buffer, at.betas, RING),
    finished: new Int32Array(buffer, at.finished, RING),
  };
}
