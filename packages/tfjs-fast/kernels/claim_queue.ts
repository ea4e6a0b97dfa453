/**
 * How a main thread and its helper threads share calls through Int32
 * counters in a SharedArrayBuffer (kernels/blas_split.ts for OpenBLAS's
 * products, kernels/dnnl_lanes.ts for oneDNN's parts). The main thread
 * writes a call's fields, then raises `posted`; any thread takes the next
 * call by raising `claimed` with a compare-and-swap; a helper raises `done`
 * after each call. The main thread computes any call nobody has claimed,
 * so it never waits for a helper that has not started one.
 *
 * Counters count calls since the start and wrap as int32: compare them by
 * their difference, never by size.
 *
 * @module
 */

/** Indices of the counters. */
export const CLAIM = {
  /** Calls posted; helpers wait for it to change. */
  posted: 0,
  /** Calls claimed by some thread. */
  claimed: 1,
  /** Calls helpers finished; the main thread waits for it to change. */
  done: 2,
  /** 1 tells the helpers to return. */
  stop: 3,
} as const;

/**
 * Claims the next call posted before `posted` that no thread has claimed:
 * its id, or null when there is none. `posted` may be stale: a helper
 * reads it, and other threads may claim past it before the helper claims.
 */
export function claimNext(counters: Int32Array, posted: number): number | null {
  for (;;) {
    const next = Atomics.load(counters, CLAIM.claimed);
    // At or past `posted`, not `=== posted`: a stale `posted` behind
    // `claimed` would otherwise claim a call not posted yet, whose slot
    // still holds an earlier call's operands.
    if (((posted - next) | 0) <= 0) return null;
    // Fails when another thread took this call first.
    if (
      Atomics.compareExchange(counters, CLAIM.claimed, next, (next + 1) | 0) ===
        next
    ) return next;
  }
}

/**
 * A helper's loop: waits for posted calls, claims them one at a time and
 * runs each (which marks it finished), until told to stop.
 */
export function serveCalls(
  counters: Int32Array,
  run: (id: number) => void,
): void {
  for (;;) {
    const posted = Atomics.load(counters, CLAIM.posted);
    if (Atomics.load(counters, CLAIM.stop) === 1) return;
    const id = claimNext(counters, posted);
    if (id === null) {
      Atomics.wait(counters, CLAIM.posted, posted);
      continue;
    }
    // The call's fields were written before the count that announced it.
    run(id);
    Atomics.add(counters, CLAIM.done, 1);
    Atomics.notify(counters, CLAIM.done);
  }
}

/**
 * The main thread's wait until `isFinished()`: meanwhile it runs here any
 * call posted before `posted()` that no thread has claimed (later ones too:
 * left to a helper, a later call may be the one it waits for next). False
 * when no helper finished a call within `timeoutMs`.
 */
export function finishCalls(
  counters: Int32Array,
  isFinished: () => boolean,
  posted: () => number,
  runHere: (id: number) => void,
  timeoutMs: number,
): boolean {
  while (!isFinished()) {
    const id = claimNext(counters, posted());
    if (id !== null) {
      runHere(id);
      continue;
    }
    const done = Atomics.load(counters, CLAIM.done);
    if (isFinished()) return true;
    if (Atomics.wait(counters, CLAIM.done, done, timeoutMs) === "timed-out") {
      return false;
    }
  }
  return true;
}
