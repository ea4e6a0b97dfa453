/**
 * The shared memory of kernels/dnnl_lanes.ts: the counters the threads
 * claim parts with (kernels/claim_queue.ts), and each posted part's
 * executions as addresses. The
 * same views on the main thread and in every helper.
 *
 * @module
 */

/** Parts in flight at once (a power of two): the most lanes. */
export const MAX_PARTS = 8;
/** Executions in one part: reorders of two inputs, the pass, a reorder out. */
export const MAX_EXECUTIONS = 4;
/**
 * BigUint64 fields per part: the count of executions, the stream, then for
 * each execution its primitive, its number of (arg, memory) pairs and the
 * address of those pairs.
 */
export const PART_FIELDS = 2 + 3 * MAX_EXECUTIONS;

const COUNTERS_BYTES = 64;
const FIELDS_BYTES = 8 * MAX_PARTS * PART_FIELDS;
const FLAGS_BYTES = 4 * MAX_PARTS;

/** Bytes of the shared buffer. */
export const claimBytes = COUNTERS_BYTES + FIELDS_BYTES + 2 * FLAGS_BYTES;

/** The typed views of the shared buffer. */
export interface ClaimViews {
  counters: Int32Array;
  fields: BigUint64Array;
  /** finished[id % MAX_PARTS] = id + 1 once part id is done. */
  finished: Int32Array;
  /** A helper's first failing oneDNN status for the part, or 0. */
  status: Int32Array;
}

/** The views over `buffer` (of `claimBytes`). */
export function claimViews(buffer: SharedArrayBuffer): ClaimViews {
  const fields = COUNTERS_BYTES, finished = fields + FIELDS_BYTES;
  return {
    counters: new Int32Array(buffer, 0, COUNTERS_BYTES / 4),
    fields: new BigUint64Array(buffer, fields, MAX_PARTS * PART_FIELDS),
    finished: new Int32Array(buffer, finished, MAX_PARTS),
    status: new Int32Array(buffer, finished + FLAGS_BYTES, MAX_PARTS),
  };
}
