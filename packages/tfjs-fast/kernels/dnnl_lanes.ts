/**
 * Threads for oneDNN's convolutions that keep one thread's bits, the way
 * kernels/blas_split.ts does for OpenBLAS's products.
 *
 * A convolution's batch is cut into parts (kernels/dnnl.ts says how many);
 * each part is a short list of one-thread oneDNN executions (reorders in,
 * the pass, a reorder out) with its own primitives, memories and stream.
 * The main thread posts the parts after the first, computes the first, then
 * claims every part no helper has claimed and waits only for parts being
 * computed. Which thread computes a part does not change its bits, and a
 * helper that is descheduled costs nothing: OpenMP's static split, which
 * this replaces, waited for it.
 *
 * The helpers are node:worker_threads running kernels/dnnl_lane_worker.ts;
 * they call the same library on the addresses the main thread wrote into a
 * SharedArrayBuffer, with `Atomics.wait`/`notify` (the kernels are
 * synchronous, so there are no messages).
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import { CLAIM, finishCalls } from "./claim_queue.ts";
import {
  claimBytes,
  claimViews,
  MAX_EXECUTIONS,
  MAX_PARTS,
  PART_FIELDS,
} from "./dnnl_claims.ts";

type Pointer = Deno.PointerValue;

/** One oneDNN execution: a primitive and its `dnnl_exec_arg_t` array. */
export interface Execution {
  primitive: Pointer;
  /** {int arg; dnnl_memory_t memory} pairs, kept alive by the caller. */
  args: BigUint64Array;
}

/** A part of a pass: its executions, in order, on its own stream. */
export interface Part {
  stream: Pointer;
  executions: readonly Execution[];
}

/** The threads that compute a convolution's parts. */
export interface Lanes {
  /** This thread and the helpers that started. */
  readonly threads: number;
  /** Parts the helpers have computed so far. */
  readonly partsOnHelpers: number;
  /** Resolves once every helper has started or failed. */
  readonly ready: Promise<void>;
  /** Computes every part, on this thread and the helpers, and returns when all are done. */
  run(parts: readonly Part[]): void;
  /** Stops the helpers; later parts run on this thread. */
  stop(): void;
}

/** The FFI calls the main thread computes its parts with. */
export interface Executor {
  execute(primitive: Pointer, stream: Pointer, args: BigUint64Array): void;
  wait(stream: Pointer): void;
}

/** How long the main thread waits for a helper's part before it gives up. */
const PART_TIMEOUT_MS = 60_000;

const address = (p: Pointer | BigUint64Array): bigint =>
  BigInt(
    Deno.UnsafePointer.value(
      p instanceof BigUint64Array ? Deno.UnsafePointer.of(p) : p,
    ),
  );

/**
 * Lanes of `threads` threads (at most `MAX_PARTS`): this one and the
 * helpers, which open `path` (oneDNN) and `ompPath` (to hold OpenMP at one
 * thread). The helpers start in the background (`ready`); until then this
 * thread computes every part.
 */
export function startLanes(
  executor: Executor,
  threads: number,
  path: string,
  ompPath: string,
): Lanes {
  const control = new SharedArrayBuffer(claimBytes);
  const q = claimViews(control);
  const counters = q.counters;
  const workers: Worker[] = [];
  let helpers = 0;
  // A pass has at most MAX_PARTS parts: more threads would idle.
  const helperCount = Math.min(threads, MAX_PARTS) - 1;
  let stopped = helperCount === 0;
  const stopWorkers = () => {
    stopped = true;
    Atomics.store(counters, CLAIM.stop, 1);
    Atomics.notify(counters, CLAIM.posted);
    for (const w of workers) w.terminate();
    workers.length = 0;
    helpers = 0;
  };
  const ready = Promise.all(
    Array.from({ length: helperCount }, () => {
      const worker = new Worker(
        new URL("./dnnl_lane_worker.ts", import.meta.url),
        { workerData: { control, path, ompPath } },
      );
      workers.push(worker);
      return new Promise<void>((resolve) => {
        // Once started, the helper waits in Atomics.wait forever: then it
        // must not keep the process alive after the script's own work ends.
        const started = () => (worker.unref(), resolve());
        worker.once("message", (m: { ready?: boolean }) => {
          if (m.ready && !stopped) helpers++;
          started();
        });
        worker.once("error", started);
      });
    }),
  ).then(() => {});
  let posted = 0;
  /** The parts posted and not yet finished, by slot. */
  const pending: (Part | null)[] = new Array(MAX_PARTS).fill(null);
  const slot = (id: number) => id & (MAX_PARTS - 1);
  const runHere = (id: number) => {
    runDirect(pending[slot(id)]!);
    Atomics.store(q.finished, slot(id), (id + 1) | 0);
  };

  const finish = (id: number) => {
    const finished = finishCalls(
      counters,
      () => Atomics.load(q.finished, slot(id)) === ((id + 1) | 0),
      () => posted,
      runHere,
      PART_TIMEOUT_MS,
    );
    if (!finished) {
      stopWorkers();
      throw new Error(
        `oneDNN: a helper thread did not finish its part of a convolution in ${
          PART_TIMEOUT_MS / 1000
        } s; the helpers are stopped`,
      );
    }
    const status = Atomics.load(q.status, slot(id));
    if (status !== 0) {
      throw new Error(
        `oneDNN primitive_execute failed on a helper thread (status ${status})`,
      );
    }
  };

  const runDirect = (part: Part) => {
    for (const e of part.executions) {
      executor.execute(e.primitive, part.stream, e.args);
    }
    executor.wait(part.stream);
  };

  return {
    get threads() {
      return stopped ? 1 : 1 + helpers;
    },
    get partsOnHelpers() {
      return Atomics.load(counters, CLAIM.done);
    },
    ready,
    run(parts) {
      if (parts.length > MAX_PARTS) {
        throw new Error(
          `oneDNN: at most ${MAX_PARTS} parts, got ${parts.length}`,
        );
      }
      if (stopped || parts.length === 1) {
        for (const part of parts) runDirect(part);
        return;
      }
      const first = posted;
      parts.slice(1).forEach((part, i) => {
        const s = slot((first + i) | 0), f = s * PART_FIELDS;
        if (part.executions.length > MAX_EXECUTIONS) {
          throw new Error(
            `oneDNN: at most ${MAX_EXECUTIONS} executions in a part`,
          );
        }
        pending[s] = part;
        q.fields[f] = BigInt(part.executions.length);
        q.fields[f + 1] = address(part.stream);
        part.executions.forEach((e, j) => {
          const at = f + 2 + 3 * j;
          q.fields[at] = address(e.primitive);
          q.fields[at + 1] = BigInt(e.args.length);
          q.fields[at + 2] = address(e.args);
        });
        q.status[s] = 0;
      });
      posted = (first + parts.length - 1) | 0;
      // Publishing the count publishes the parts written above.
      Atomics.store(counters, CLAIM.posted, posted);
      Atomics.notify(counters, CLAIM.posted);
      try {
        runDirect(parts[0]);
      } finally {
        // Even when this thread's part failed: the helpers' parts write
        // into the caller's tensors, so they are done before it returns.
        try {
          for (let i = 0; i < parts.length - 1; i++) finish((first + i) | 0);
        } finally {
          pending.fill(null);
        }
      }
    },
    stop() {
      if (!stopped) stopWorkers();
    },
  };
}
