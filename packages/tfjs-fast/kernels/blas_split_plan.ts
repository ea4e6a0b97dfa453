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
 * The control block the main thread and the helpers share: Int32 slots,
 * then the three operand addresses (BigInt64) and beta (Float32).
 */
export const SLOT = {
  /** job * 64 + the next block to claim; helpers wait for it to change. */
  claim: 0,
  /** Blocks finished in the current job. */
  done: 1,
  /** 1 tells the helpers to return. */
  stop: 2,
  chunks: 3,
  byRows: 4,
  step: 5,
  transA: 6,
  transB: 7,
  m: 8,
  n: 9,
  k: 10,
  /** Helpers that started and passed their own check. */
  ready: 11,
} as const;
/** Int32 slots, then 3 addresses at byte 64 and beta at byte 88. */
export const CONTROL_BYTES = 96;
export const ADDRESS_BYTE_OFFSET = 64;
export const BETA_BYTE_OFFSET = 88;
/** Low bits of the claim word: the block index. */
export const CLAIM_BITS = 64;
