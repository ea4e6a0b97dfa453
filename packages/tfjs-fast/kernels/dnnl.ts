/**
 * An optional convolution path through a system oneDNN 2.x (Intel's deep
 * learning primitives, what PyTorch's CPU convolutions run on), called with
 * Deno's FFI on the wasm backend's heap.
 *
 * im2col + sgemm (kernels/conv_kernels.ts) writes every patch out to memory
 * before multiplying; oneDNN's direct convolutions (x64 JIT, on blocked
 * layouts such as nChw16c) never build the patch matrix. Measured on the
 * 2-core machine of the course (AVX-512, 2 threads), a 5x5 32->32 layer at
 * 14x14, batch 32, forward and both gradients: 6.4-6.7 ms through tfjs on
 * oneDNN against 9.2-9.4 on im2col + OpenBLAS, PyTorch 4.8-5.3 in the same
 * runs; slower on small stride-2 layers (docs/performance.md, "Convolutions
 * on oneDNN").
 *
 * Each pass reorders its plain inputs (NHWC images, HWIO filters: tfjs's
 * layouts) into the blocked layouts oneDNN chose for the geometry, runs, and
 * reorders its result back into the tensor tfjs allocated.
 *
 * The threads are this package's, not OpenMP's, and the bits do not depend
 * on their count. Every primitive is made for one thread; a large pass is
 * cut by the batch into parts, one-thread passes that the main thread and
 * helper threads compute at once (kernels/dnnl_lanes.ts: the main thread
 * takes the parts no helper has claimed, so a descheduled helper costs
 * nothing; a primitive made for two threads split its work statically and
 * waited for it). The forward and input-gradient passes give each image the
 * same bits in any batch, so they take a part per thread. The filter
 * gradient sums over the batch, so its cut depends on the geometry only
 * (`partSizes`): two parts, the second added to the first. Checked bit for
 * bit on 1-3 threads (tests/dnnl.test.ts). The bits differ from the im2col
 * path's, and from one CPU family to another (the JIT picks AVX2 or
 * AVX-512 code).
 *
 * It is used when Deno may use FFI and `libdnnl.so.2` loads (Debian:
 * `libdnnl2`, which PyTorch's package pulls in). `TFJS_DNNL=0` turns it
 * off; a path in `TFJS_DNNL` names the library to load.
 *
 * @module
 */
import { libraryRequest, openFirst } from "./ffi_library.ts";
import {
  type Execution,
  type Executor,
  type Lanes,
  startLanes,
} from "./dnnl_lanes.ts";
import { MAX_PARTS } from "./dnnl_claims.ts";

const SYMBOLS = {
  dnnl_version: { parameters: [], result: "pointer" },
  dnnl_engine_create: { parameters: ["buffer", "i32", "usize"], result: "i32" },
  dnnl_stream_create: {
    parameters: ["buffer", "pointer", "u32"],
    result: "i32",
  },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
  dnnl_memory_desc_init_by_tag: {
    parameters: ["buffer", "i32", "buffer", "i32", "i32"],
    result: "i32",
  },
  dnnl_memory_desc_equal: {
    parameters: ["pointer", "pointer"],
    result: "i32",
  },
  dnnl_convolution_forward_desc_init: {
    parameters: [
      "buffer", // conv_desc
      "i32", // prop_kind
      "i32", // alg_kind
      "buffer", // src_desc
      "buffer", // weights_desc
      "pointer", // bias_desc (none)
      "buffer", // dst_desc
      "buffer", // strides
      "buffer", // padding_l
      "buffer", // padding_r
    ],
    result: "i32",
  },
  dnnl_convolution_backward_data_desc_init: {
    parameters: [
      "buffer", // conv_desc
      "i32", // alg_kind
      "buffer", // diff_src_desc
      "buffer", // weights_desc
      "buffer", // diff_dst_desc
      "buffer", // strides
      "buffer", // padding_l
      "buffer", // padding_r
    ],
    result: "i32",
  },
  dnnl_convolution_backward_weights_desc_init: {
    parameters: [
      "buffer", // conv_desc
      "i32", // alg_kind
      "buffer", // src_desc
      "buffer", // diff_weights_desc
      "pointer", // diff_bias_desc (none)
      "buffer", // diff_dst_desc
      "buffer", // strides
      "buffer", // padding_l
      "buffer", // padding_r
    ],
    result: "i32",
  },
  dnnl_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_reorder_primitive_desc_create: {
    parameters: [
      "buffer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  dnnl_primitive_desc_query: {
    parameters: ["pointer", "i32", "i32", "buffer"],
    result: "i32",
  },
  dnnl_primitive_desc_query_md: {
    parameters: ["pointer", "i32", "i32"],
    result: "pointer",
  },
  dnnl_primitive_desc_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_create: { parameters: ["buffer", "pointer"], result: "i32" },
  dnnl_primitive_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_execute: {
    parameters: ["pointer", "pointer", "i32", "buffer"],
    result: "i32",
  },
  dnnl_memory_create: {
    parameters: ["buffer", "pointer", "pointer", "usize"],
    result: "i32",
  },
  dnnl_memory_set_data_handle: {
    parameters: ["pointer", "buffer"],
    result: "i32",
  },
  dnnl_memory_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_post_ops_create: { parameters: ["buffer"], result: "i32" },
  dnnl_post_ops_append_sum: { parameters: ["pointer", "f32"], result: "i32" },
  dnnl_post_ops_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_attr_create: { parameters: ["buffer"], result: "i32" },
  dnnl_primitive_attr_set_post_ops: {
    parameters: ["pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_attr_destroy: { parameters: ["pointer"], result: "i32" },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
type Pointer = Deno.PointerValue;

const OMP_SYMBOLS = {
  omp_set_num_threads: { parameters: ["i32"], result: "void" },
} as const;

/** Where a oneDNN 2.x shared library is looked for, in order. */
export const DNNL_CANDIDATES: readonly string[] = [
  "libdnnl.so.2",
  "/usr/lib/x86_64-linux-gnu/libdnnl.so.2",
  "/usr/lib/aarch64-linux-gnu/libdnnl.so.2",
];

// oneDNN 2.x's enum values (dnnl_types.h).
const F32 = 3, TAG_ANY = 1, NHWC = 20, HWIO = 30, CPU = 1;
const FORWARD_TRAINING = 64, CONVOLUTION_DIRECT = 1;
const ARG = {
  src: 1,
  dst: 17,
  weights: 33,
  diffSrc: 129,
  diffDst: 145,
  diffWeights: 161,
  from: 1,
  to: 17,
};
const QUERY = {
  implInfo: 8,
  src: 129,
  diffSrc: 130,
  weights: 131,
  diffWeights: 132,
  dst: 133,
  diffDst: 134,
};
const RUNTIME_OMP = 2;
/** DNNL_MEMORY_ALLOCATE: the library allocates the buffer. */
const ALLOCATE = 0xffff_ffff_ffff_ffffn;
// sizeof(dnnl_memory_desc_t) is 696 and sizeof(dnnl_convolution_desc_t)
// 5976 in oneDNN 2.6; room to spare for other 2.x releases.
const MEMORY_DESC_BYTES = 2048;
const OP_DESC_BYTES = 16384;

/** A convolution's sizes, NHWC images and HWIO filters (tfjs's layouts). */
export interface ConvGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padBottom: number;
  padLeft: number;
  padRight: number;
}

/**
 * The three passes of a convolution layer, each from two tensors to one:
 * forward (x, w) -> y, backwardData (dy, w) -> dx, backwardWeights
 * (x, dy) -> dw.
 */
export type ConvPass = "forward" | "backwardData" | "backwardWeights";

/** An opened oneDNN. */
export interface Dnnl {
  /** The library file that was loaded. */
  path: string;
  /** "oneDNN 2.6.3". */
  version: string;
  /**
   * Threads its passes are shared between (this one and the helpers that
   * started); null when its own threads cannot be held at one.
   */
  readonly threads: number | null;
  /**
   * Shares the passes from now on between `threads` threads, when it can;
   * resolves once the helpers have started (or failed: `threads` then says
   * how many did).
   */
  setThreads(threads: number): Promise<void>;
  /** Resolves once the helpers of the last `setThreads` have started or failed. */
  readonly ready: Promise<void>;
  /** Parts of passes that helper threads have computed so far. */
  readonly partsOnHelpers: number;
  /**
   * Runs `pass` of the convolution `g` on float32 views of the wasm heap
   * (or any memory), writing `out`; false, with nothing written, when
   * oneDNN has no fast primitive for the geometry (the caller then uses
   * its own). Views must be made after the caller's last allocation.
   */
  convolve(
    pass: ConvPass,
    g: ConvGeometry,
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
  ): boolean;
  /** The implementation oneDNN chose for `pass` of `g` ("jit:avx512_core"), or null. */
  implementation(pass: ConvPass, g: ConvGeometry): string | null;
}

/** The result of `openDnnl`: the library, or why it is not used. */
export type OpenDnnlResult = { ok: true; dnnl: Dnnl } | {
  ok: false;
  reason: string;
};

/** Options for `openDnnl`. */
export interface OpenDnnlOptions {
  /** Threads for the convolutions (1 to 64; default 1). */
  threads?: number;
  /** Library files to try, in order (default: env `TFJS_DNNL` when it is a path, else `DNNL_CANDIDATES`). */
  paths?: readonly string[];
}

let opened: { lib: Lib; path: string; dnnl: Dnnl } | null = null;

/**
 * Opens oneDNN (once per process) and sets its thread count. Does not
 * throw when the library or the FFI permission is missing: the result then
 * says why. `TFJS_DNNL=0` in the environment disables the automatic choice.
 * The helper threads start in the background: await `dnnl.ready`.
 */
export function openDnnl(options?: OpenDnnlOptions): OpenDnnlResult {
  const request = libraryRequest(
    "openDnnl",
    "TFJS_DNNL",
    options,
    DNNL_CANDIDATES,
  );
  if ("reason" in request) return { ok: false, reason: request.reason };
  const { threads, paths } = request;
  if (opened) {
    if (options?.threads !== undefined) opened.dnnl.setThreads(threads);
    return { ok: true, dnnl: opened.dnnl };
  }
  const found = openFirst(paths, SYMBOLS, "oneDNN 2");
  if ("error" in found) return { ok: false, reason: found.error };
  const started = start(found.lib.symbols, found.path);
  if (!started.ok) {
    found.lib.close();
    return started;
  }
  opened = { lib: found.lib.symbols, path: found.path, dnnl: started.dnnl };
  started.dnnl.setThreads(threads);
  return started;
}

/** A status check for oneDNN calls that should not fail. */
function check(status: number, call: string): void {
  if (status !== 0) throw new Error(`oneDNN ${call} failed (status ${status})`);
}

/** The pointer a call wrote into `out`. */
const pointerIn = (out: BigUint64Array): Pointer =>
  Deno.UnsafePointer.create(out[0]);

function start(s: Lib, path: string): OpenDnnlResult {
  const info = new Deno.UnsafePointerView(s.dnnl_version()!);
  const major = info.getInt32(0), minor = info.getInt32(4);
  const patch = info.getInt32(8), runtime = info.getUint32(24);
  if (major !== 2) {
    return { ok: false, reason: `${path} is oneDNN ${major}, not 2` };
  }
  const out = new BigUint64Array(1);
  check(s.dnnl_engine_create(out, CPU, 0n), "engine_create");
  const engine = pointerIn(out);
  // A stream per part, so that parts on different threads share none.
  const streams = Array.from({ length: MAX_PARTS }, () => {
    check(s.dnnl_stream_create(out, engine, 1), "stream_create");
    return pointerIn(out);
  });
  const omp = runtime === RUNTIME_OMP ? openOpenMp() : null;
  // OpenMP stays on one thread: every primitive is made for one and runs
  // inline, and the threads come from cutting the batch (kernels/
  // dnnl_lanes.ts). A primitive made for two splits its work statically,
  // and waits for a thread the system has descheduled.
  omp?.symbols.omp_set_num_threads(1);
  const executor: Executor = {
    execute: (primitive, stream, args) =>
      check(
        s.dnnl_primitive_execute(primitive, stream, args.length / 2, args),
        "primitive_execute",
      ),
    wait: (stream) => check(s.dnnl_stream_wait(stream), "stream_wait"),
  };
  let lanes: Lanes = startLanes(executor, 1, path, "");
  const plans = new Plans(s, engine);
  const dnnl: Dnnl = {
    path,
    version: `oneDNN ${major}.${minor}.${patch}`,
    get threads() {
      return omp ? lanes.threads : null;
    },
    setThreads(n) {
      if (!omp) return Promise.resolve();
      lanes.stop();
      lanes = startLanes(executor, n, path, omp.path);
      return lanes.ready;
    },
    get ready() {
      return lanes.ready;
    },
    get partsOnHelpers() {
      return lanes.partsOnHelpers;
    },
    convolve(pass, g, a, b, result) {
      const sizes = partSizes(pass, g, lanes.threads);
      const partPlans = sizes.map((batch, lane) =>
        plans.get(pass, { ...g, batch }, lane)
      );
      if (partPlans.includes(null)) return false;
      const images = IMAGE_SIZES[pass](g);
      let next = 0;
      const parts = partPlans.map((plan, lane) => {
        const [from, to] = [next, next += sizes[lane]];
        const [pa, pb, pOut] = [a, b, result].map((view, i) =>
          images[i] === 0
            ? view
            : view.subarray(from * images[i], to * images[i])
        );
        plan!.bind(pa, pb, pOut);
        return { stream: streams[lane], executions: plan!.executions };
      });
      lanes.run(parts);
      // The filter gradients of the later parts are added in part order.
      const adds = partPlans.map((plan) => plan!.accumulate).filter((e) =>
        e !== null
      );
      for (const e of adds) executor.execute(e.primitive, streams[0], e.args);
      if (adds.length > 0) executor.wait(streams[0]);
      return true;
    },
    implementation(pass, g) {
      // The first part's plan: the one convolve() makes and uses.
      const batch = partSizes(pass, g, lanes.threads)[0];
      return plans.get(pass, { ...g, batch }, 0)?.implementation ?? null;
    },
  };
  return { ok: true, dnnl };
}

/**
 * Floats per image of a pass's a, b and result (0: the whole tensor, a
 * filter, in every part).
 */
const IMAGE_SIZES: Record<
  ConvPass,
  (g: ConvGeometry) => [number, number, number]
> = {
  forward: (g) => [xImage(g), 0, yImage(g)],
  backwardData: (g) => [yImage(g), 0, xImage(g)],
  backwardWeights: (g) => [xImage(g), yImage(g), 0],
};
const xImage = (g: ConvGeometry) => g.inHeight * g.inWidth * g.inChannels;
const yImage = (g: ConvGeometry) => g.outHeight * g.outWidth * g.outChannels;

/**
 * The batch sizes of the parts `pass` of `g` is cut into, first parts the
 * largest. The forward and input-gradient passes give each image's result
 * the same bits in any batch (checked, tests/dnnl.test.ts), so they take
 * one part per thread. The filter gradient sums over the batch, so its cut
 * depends on the geometry only: `FILTER_GRADIENT_PARTS` parts, added in
 * order. A part has at least `MIN_PART_MACS` multiply-adds.
 */
export function partSizes(
  pass: ConvPass,
  g: ConvGeometry,
  threads: number,
): number[] {
  const macs = g.batch * g.outHeight * g.outWidth * g.outChannels *
    g.inChannels * g.filterHeight * g.filterWidth;
  const wanted = pass === "backwardWeights" ? FILTER_GRADIENT_PARTS : threads;
  const count = Math.max(
    1,
    Math.min(wanted, MAX_PARTS, g.batch, Math.floor(macs / MIN_PART_MACS)),
  );
  const base = Math.floor(g.batch / count), extra = g.batch % count;
  return Array.from({ length: count }, (_, i) => base + (i < extra ? 1 : 0));
}

/**
 * Parts a filter gradient is cut into, whatever the thread count: two, so
 * that two threads share it with the bits of one.
 */
export const FILTER_GRADIENT_PARTS = 2;

/**
 * Fewest multiply-adds in a part: below it, a second part's reorders and
 * call cost more than they save (a 1x1 64->16 layer at 7x7, batch 64,
 * 3.2 M: 0.09 ms whole, 0.13 in two parts on two threads).
 */
export const MIN_PART_MACS = 4 * 1024 * 1024;

function openOpenMp():
  | {
    path: string;
    symbols: Deno.DynamicLibrary<typeof OMP_SYMBOLS>["symbols"];
  }
  | null {
  for (const path of ["libgomp.so.1", "libiomp5.so", "libomp.so"]) {
    try {
      return { path, symbols: Deno.dlopen(path, OMP_SYMBOLS).symbols };
    } catch { /* the next */ }
  }
  return null;
}

/** A oneDNN memory descriptor in a buffer of its own. */
function memoryDesc(s: Lib, dims: number[], tag: number): Uint8Array {
  const md = new Uint8Array(MEMORY_DESC_BYTES);
  const d = BigInt64Array.from(dims, BigInt);
  check(
    s.dnnl_memory_desc_init_by_tag(md, dims.length, d, F32, tag),
    "memory_desc_init_by_tag",
  );
  return md;
}

const dims2 = (a: number, b: number) => BigInt64Array.from([a, b], BigInt);

/** A reorder primitive from `from` to `to`, adding to `to` when `add`. */
function makeReorder(
  s: Lib,
  engine: Pointer,
  from: Pointer,
  to: Pointer,
  add: boolean,
): Pointer {
  const out = new BigUint64Array(1);
  let attr: Pointer = null, postOps: Pointer = null;
  try {
    if (add) {
      check(s.dnnl_post_ops_create(out), "post_ops_create");
      postOps = pointerIn(out);
      check(s.dnnl_post_ops_append_sum(postOps, 1), "post_ops_append_sum");
      check(s.dnnl_primitive_attr_create(out), "primitive_attr_create");
      attr = pointerIn(out);
      check(
        s.dnnl_primitive_attr_set_post_ops(attr, postOps),
        "primitive_attr_set_post_ops",
      );
    }
    check(
      s.dnnl_reorder_primitive_desc_create(out, from, engine, to, engine, attr),
      "reorder_primitive_desc_create",
    );
    const pd = pointerIn(out);
    try {
      check(s.dnnl_primitive_create(out, pd), "primitive_create");
    } finally {
      s.dnnl_primitive_desc_destroy(pd);
    }
    return pointerIn(out);
  } finally {
    if (attr) s.dnnl_primitive_attr_destroy(attr);
    if (postOps) s.dnnl_post_ops_destroy(postOps);
  }
}

/**
 * The oneDNN objects of one pass of one part: a geometry and a lane (each
 * lane its own memories, so that parts run at once).
 */
class PassPlan {
  /** Memories to destroy with the plan. */
  readonly #owned: Pointer[] = [];
  /** Plain memories (tfjs's tensors: handles set per call): a, b, out. */
  readonly #plain: Pointer[] = [];
  readonly #primitives: Pointer[] = [];
  readonly #s: Lib;
  /** Reorders in, the pass, and the reorder out unless it adds. */
  readonly executions: Execution[] = [];
  /**
   * The reorder that adds this part's result to the tensor (the later parts
   * of a filter gradient), run after every part; null when it writes it.
   */
  readonly accumulate: Execution | null = null;
  readonly implementation: string;

  constructor(
    s: Lib,
    engine: Pointer,
    pd: Pointer,
    roles: { arg: number; query: number; plain: Uint8Array }[],
    adds: boolean,
  ) {
    this.#s = s;
    const out = new BigUint64Array(1);
    const impl = new BigUint64Array(1);
    check(s.dnnl_primitive_desc_query(pd, QUERY.implInfo, 0, impl), "query");
    this.implementation = new Deno.UnsafePointerView(pointerIn(impl)!)
      .getCString();
    const memory = (md: Pointer, handle: bigint) => {
      check(s.dnnl_memory_create(out, md, engine, handle), "memory_create");
      this.#owned.push(pointerIn(out));
      return pointerIn(out);
    };
    const reorder = (
      [from, fromMd]: [Pointer, Pointer],
      [to, toMd]: [Pointer, Pointer],
      add: boolean,
    ) => {
      const primitive = makeReorder(s, engine, fromMd, toMd, add);
      this.#primitives.push(primitive);
      return { primitive, args: execArgs([[ARG.from, from], [ARG.to, to]]) };
    };
    check(s.dnnl_primitive_create(out, pd), "primitive_create");
    const primitive = pointerIn(out);
    this.#primitives.push(primitive);
    const args: [number, Pointer][] = [];
    let back: Execution | null = null;
    roles.forEach(({ arg, query, plain }, i) => {
      const plainMd = Deno.UnsafePointer.of(plain);
      const plainMemory = memory(plainMd, 0n);
      this.#plain.push(plainMemory);
      const chosen = s.dnnl_primitive_desc_query_md(pd, query, 0);
      const isOutput = i === roles.length - 1;
      // A part that adds its result needs it in a buffer of its own.
      if (
        s.dnnl_memory_desc_equal(chosen, plainMd) !== 0 && !(isOutput && adds)
      ) {
        args.push([arg, plainMemory]);
        return;
      }
      const used = memory(chosen, ALLOCATE);
      args.push([arg, used]);
      const [plainSide, usedSide]: [Pointer, Pointer][] = [
        [plainMemory, plainMd],
        [used, chosen],
      ];
      if (isOutput) back = reorder(usedSide, plainSide, adds);
      else this.executions.push(reorder(plainSide, usedSide, false));
    });
    this.executions.push({ primitive, args: execArgs(args) });
    if (adds) this.accumulate = back;
    else if (back) this.executions.push(back);
  }

  /** Points the plan's plain memories at a, b and out. */
  bind(a: Float32Array, b: Float32Array, out: Float32Array): void {
    [a, b, out].forEach((view, i) =>
      check(
        this.#s.dnnl_memory_set_data_handle(this.#plain[i], view),
        "set_data_handle",
      )
    );
  }

  destroy(): void {
    const s = this.#s;
    for (const p of this.#primitives) s.dnnl_primitive_destroy(p);
    for (const m of this.#owned) s.dnnl_memory_destroy(m);
  }
}

/** dnnl_exec_arg_t[]: {int arg; dnnl_memory_t memory} (16 bytes each). */
function execArgs(pairs: [number, Pointer][]): BigUint64Array {
  const args = new BigUint64Array(2 * pairs.length);
  pairs.forEach(([arg, memory], i) => {
    args[2 * i] = BigInt(arg);
    args[2 * i + 1] = BigInt(Deno.UnsafePointer.value(memory));
  });
  return args;
}

const planKey = (g: ConvGeometry, lane: number) =>
  [
    lane,
    g.batch,
    g.inHeight,
    g.inWidth,
    g.inChannels,
    g.outHeight,
    g.outWidth,
    g.outChannels,
    g.filterHeight,
    g.filterWidth,
    g.strideHeight,
    g.strideWidth,
    g.padTop,
    g.padBottom,
    g.padLeft,
    g.padRight,
  ].join(",");

/**
 * Plans by geometry and lane, the least recently used dropped past
 * `MAX_PLANS`.
 */
class Plans {
  readonly #byGeometry = new Map<string, Map<ConvPass, PassPlan | null>>();
  constructor(readonly s: Lib, readonly engine: Pointer) {}

  get(pass: ConvPass, g: ConvGeometry, lane: number): PassPlan | null {
    const key = planKey(g, lane);
    let passes = this.#byGeometry.get(key);
    if (passes) {
      this.#byGeometry.delete(key); // to the back: most recently used
    } else {
      passes = new Map();
      if (this.#byGeometry.size >= MAX_PLANS) this.#evictOldest();
    }
    this.#byGeometry.set(key, passes);
    if (!passes.has(pass)) {
      passes.set(pass, this.#make(pass, g, lane));
    }
    return passes.get(pass)!;
  }

  #evictOldest(): void {
    const [key, passes] = this.#byGeometry.entries().next().value!;
    for (const plan of passes.values()) plan?.destroy();
    this.#byGeometry.delete(key);
  }

  /** The plan of `pass`, or null when oneDNN has only a slow one (or none). */
  #make(pass: ConvPass, g: ConvGeometry, lane: number): PassPlan | null {
    const s = this.s;
    // oneDNN's logical order is always N C H W (O I H W for filters); the tag
    // says how they are laid out, TAG_ANY lets the primitive choose.
    const xDims = [g.batch, g.inChannels, g.inHeight, g.inWidth];
    const wDims = [g.outChannels, g.inChannels, g.filterHeight, g.filterWidth];
    const yDims = [g.batch, g.outChannels, g.outHeight, g.outWidth];
    const [x, w, y] = [
      memoryDesc(s, xDims, NHWC),
      memoryDesc(s, wDims, HWIO),
      memoryDesc(s, yDims, NHWC),
    ];
    const [ax, aw, ay] = [xDims, wDims, yDims].map((d) =>
      memoryDesc(s, d, TAG_ANY)
    );
    const strides = dims2(g.strideHeight, g.strideWidth);
    const padL = dims2(g.padTop, g.padLeft);
    const padR = dims2(g.padBottom, g.padRight);
    const out = new BigUint64Array(1);
    const created: Pointer[] = [];
    /** The primitive descriptor of the op `init` describes, or null. */
    const described = (
      init: (op: Uint8Array) => number,
      hint: Pointer,
    ): Pointer | null => {
      const op = new Uint8Array(OP_DESC_BYTES);
      if (
        init(op) !== 0 ||
        s.dnnl_primitive_desc_create(out, op, null, this.engine, hint) !== 0
      ) {
        return null;
      }
      created.push(pointerIn(out));
      return pointerIn(out);
    };
    // Each pass: its op, and its arguments (two in, one out) with the
    // plain layout of each.
    const passes = {
      forward: {
        init: (op: Uint8Array) =>
          s.dnnl_convolution_forward_desc_init(
            op,
            FORWARD_TRAINING,
            CONVOLUTION_DIRECT,
            ax,
            aw,
            null,
            ay,
            strides,
            padL,
            padR,
          ),
        roles: [
          { arg: ARG.src, query: QUERY.src, plain: x },
          { arg: ARG.weights, query: QUERY.weights, plain: w },
          { arg: ARG.dst, query: QUERY.dst, plain: y },
        ],
      },
      backwardData: {
        init: (op: Uint8Array) =>
          s.dnnl_convolution_backward_data_desc_init(
            op,
            CONVOLUTION_DIRECT,
            ax,
            aw,
            ay,
            strides,
            padL,
            padR,
          ),
        roles: [
          { arg: ARG.diffDst, query: QUERY.diffDst, plain: y },
          { arg: ARG.weights, query: QUERY.weights, plain: w },
          { arg: ARG.diffSrc, query: QUERY.diffSrc, plain: x },
        ],
      },
      backwardWeights: {
        init: (op: Uint8Array) =>
          s.dnnl_convolution_backward_weights_desc_init(
            op,
            CONVOLUTION_DIRECT,
            ax,
            aw,
            null,
            ay,
            strides,
            padL,
            padR,
          ),
        roles: [
          { arg: ARG.src, query: QUERY.src, plain: x },
          { arg: ARG.diffDst, query: QUERY.diffDst, plain: y },
          { arg: ARG.diffWeights, query: QUERY.diffWeights, plain: w },
        ],
      },
    };
    try {
      // The backward passes take the forward one as their hint.
      const forward = described(passes.forward.init, null);
      if (forward === null) return null;
      const pd = pass === "forward"
        ? forward
        : described(passes[pass].init, forward);
      const roles = passes[pass].roles;
      if (pd === null) return null;
      // A filter gradient's later parts add to the first part's result.
      const adds = pass === "backwardWeights" && lane > 0;
      const plan = new PassPlan(s, this.engine, pd, roles, adds);
      if (!isDirectKernel(plan.implementation)) {
        plan.destroy();
        return null;
      }
      return plan;
    } finally {
      for (const pd of created) s.dnnl_primitive_desc_destroy(pd);
    }
  }
}

/**
 * Whether oneDNN chose one of its direct JIT convolutions ("jit:avx2",
 * "jit_1x1:avx512_core"), the only implementations the package uses. The
 * reference code ("ref:any") is slower than im2col + sgemm; the gemm-based
 * one ("x64:gemm:jit", chosen for some passes when the CPU or
 * `DNNL_MAX_CPU_ISA` stops at AVX2 or below) is oneDNN's own im2col, fails
 * on the package's helper threads (status 2, invalid arguments), and was
 * never checked for the bits of one image in any batch.
 */
export function isDirectKernel(implementation: string): boolean {
  return /^jit(_1x1)?:/.test(implementation);
}

/**
 * Plans kept, each a geometry of a part and a lane (a course uses a few
 * dozen layers, each in one to three parts).
 */
export const MAX_PLANS = 128;

let active: Dnnl | null = null;

/** The oneDNN the convolution kernels call, or null when they do not. */
export function activeDnnl(): Dnnl | null {
  return active;
}

/**
 * Makes the convolution kernels (kernels/conv_kernels.ts) call `dnnl`, or
 * stop calling it with null. Takes effect at once.
 */
export function useDnnl(dnnl: Dnnl | null): void {
  active = dnnl;
}
