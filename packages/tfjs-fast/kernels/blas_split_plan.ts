/**
 * How one sgemm is cut into blocks of rows (or columns) of C that separate
 * one-thread sgemm calls compute with the same bits as the whole call.
 *
 * Why a cut can keep the bits: OpenBLAS's blocked sgemm sums each element
 * of C over k in blocks whose sizes depend on k only, so an element's bits
 * depend only on which code of the kernel computes it. Kernels take C's
 * rows and columns in groups from the start of each call (the Haswell
 * kernel: groups of 12 rows of row-major C, and its columns in a pattern
 * that restarts with every call), with other code for the odd group at
 * the end. A block that starts where the whole call starts a group, and
 * keeps the whole of k, is computed by the same code element for element.
 * Where the groups start is the kernel's, and OpenBLAS's DYNAMIC_ARCH
 * build picks the kernel for the CPU it runs on, so the alignment is not
 * a constant: `startSplitBlas` finds it when it starts (a `CutRule`, each
 * direction tried at `ALIGNMENTS`), and a direction no alignment keeps
 * exact is never cut. Small products take other code (the "direct" and
 * small-matrix kernels of some cores, under `MIN_CHUNK_MNK`), so the whole
 * product and every block stay above it. `tests/blas_split.test.ts` and
 * the check run when the helpers start hold an OpenBLAS build to this.
 *
 * @module
 */

/** Fewest multiply-adds (m n k) in one block: OpenBLAS's direct sgemm stops here. */
export const MIN_CHUNK_MNK = 28 * 512 * 512;
/**
 * The alignments tried for each direction, smallest first: multiples of
 * the register tiles of OpenBLAS's x86 kernels (4, 8, 12, 16, 24 and 32).
 */
export const ALIGNMENTS = [8, 12, 16, 24, 32, 48, 64, 96, 192] as const;
/** At most this many blocks per product. */
export const MAX_CHUNKS = 32;

/**
 * Where blocks may start in this OpenBLAS build: at multiples of `rows`
 * rows, or of `columns` columns, of C; null where no alignment keeps the
 * whole call's bits (that direction is never cut).
 */
export interface CutRule {
  rows: number | null;
  columns: number | null;
}

/**
 * A product cut into `chunks` blocks of rows or columns of C: `step` long
 * each, the last one to the end.
 */
export interface ChunkPlan {
  byRows: boolean;
  step: number;
  chunks: number;
}

/**
 * The cut for an m x n x k product shared by `threads` threads, or null when
 * it is too small to cut: every block at least `MIN_CHUNK_MNK` multiply-adds,
 * starting at a multiple of the rule's alignment, as even as the alignment
 * allows. C's longer side is cut when the rule allows it, the other side
 * otherwise.
 */
export function planChunks(
  m: number,
  n: number,
  k: number,
  threads: number,
  rule: CutRule,
): ChunkPlan | null {
  for (const byRows of m >= n ? [true, false] : [false, true]) {
    const align = byRows ? rule.rows : rule.columns;
    if (align === null) continue;
    const length = byRows ? m : n;
    const perLine = (byRows ? n : m) * k;
    for (let chunks = Math.min(threads, MAX_CHUNKS); chunks >= 2; chunks--) {
      // The aligned steps either side of an even cut; the smaller of a
      // plan's blocks decides (the last block takes what is left).
      const even = length / chunks / align;
      let best: ChunkPlan | null = null, bestSmallest = 0;
      for (const step of [Math.floor(even) * align, Math.ceil(even) * align]) {
        const last = length - (chunks - 1) * step;
        const smallest = Math.min(step, last);
        if (
          step > 0 && smallest * perLine >= MIN_CHUNK_MNK &&
          smallest > bestSmallest
        ) {
          best = { byRows, step, chunks };
          bestSmallest = smallest;
        }
      }
      if (best !== null) return best;
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
  const last = index === plan.chunks - 1;
  const leading = { lda: transA ? m : k, ldb: transB ? k : n, ldc: n };
  if (plan.byRows) {
    return {
      m: last ? m - start : plan.step,
      n,
      aOffset: transA ? start : start * k,
      bOffset: 0,
      cOffset: start * n,
      ...leading,
    };
  }
  return {
    m,
    n: last ? n - start : plan.step,
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
