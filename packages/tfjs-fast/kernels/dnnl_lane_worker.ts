/**
 * A helper thread of kernels/dnnl_lanes.ts: it waits for posted parts,
 * claims them one at a time and runs each part's oneDNN executions on the
 * addresses the main thread wrote (primitives, memories and the wasm heap,
 * none of which move or change while a part is posted).
 *
 * @module
 */
import { parentPort, workerData } from "node:worker_threads";
import { claimViews, MAX_PARTS, PART_FIELDS } from "./dnnl_claims.ts";
import { serveCalls } from "./claim_queue.ts";

const { control, path, ompPath } = workerData as {
  control: SharedArrayBuffer;
  path: string;
  ompPath: string;
};
const q = claimViews(control);
const counters = q.counters;

const DNNL_SYMBOLS = {
  dnnl_primitive_execute: {
    parameters: ["pointer", "pointer", "i32", "pointer"],
    result: "i32",
  },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
} as const;

let dnnl: Deno.DynamicLibrary<typeof DNNL_SYMBOLS>["symbols"] | null = null;
try {
  // The main thread's files: one library, already loaded.
  dnnl = Deno.dlopen(path, DNNL_SYMBOLS).symbols;
  const omp = Deno.dlopen(
    ompPath,
    {
      omp_set_num_threads: { parameters: ["i32"], result: "void" },
    } as const,
  ).symbols;
  // OpenMP's settings are per thread: this one's reorders run inline too.
  omp.omp_set_num_threads(1);
} catch (e) {
  // The main thread computes every part itself; this helper just ends.
  parentPort!.postMessage({ error: e instanceof Error ? e.message : `${e}` });
  dnnl = null;
}

const pointer = (value: bigint): Deno.PointerValue =>
  Deno.UnsafePointer.create(value);

/** Runs part `id`; its first failing status, or 0. */
function runPart(
  dnnl: Deno.DynamicLibrary<typeof DNNL_SYMBOLS>["symbols"],
  id: number,
): number {
  const f = (id & (MAX_PARTS - 1)) * PART_FIELDS;
  const count = Number(q.fields[f]);
  const stream = pointer(q.fields[f + 1]);
  for (let e = 0; e < count; e++) {
    const at = f + 2 + 3 * e;
    const status = dnnl.dnnl_primitive_execute(
      pointer(q.fields[at]),
      stream,
      Number(q.fields[at + 1]) / 2,
      pointer(q.fields[at + 2]),
    );
    if (status !== 0) return status;
  }
  return dnnl.dnnl_stream_wait(stream);
}

if (dnnl) {
  const lib = dnnl;
  parentPort!.postMessage({ ready: true });
  serveCalls(counters, (id) => {
    q.status[id & (MAX_PARTS - 1)] = runPart(lib, id);
    Atomics.store(q.finished, id & (MAX_PARTS - 1), (id + 1) | 0);
  });
}
