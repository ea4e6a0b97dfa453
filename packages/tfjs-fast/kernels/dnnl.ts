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
 * The bits do not depend on the thread count. A primitive's thread count is
 * fixed when it is made (OpenMP's at that moment) and decides how its work
 * is split. The forward and input-gradient passes give each output to one
 * thread, which sums it in the same order on any count (checked for 1-3
 * threads, tests/dnnl.test.ts); the filter gradient splits the sum over
 * the batch between threads, so it is always made for
 * `FILTER_GRADIENT_THREADS`, whatever the count asked for. They
 * differ from the im2col path's bits, and from one CPU family to another
 * (the JIT picks AVX2 or AVX-512 code).
 *
 * It is used when Deno may use FFI and `libdnnl.so.2` loads (Debian:
 * `libdnnl2`, which PyTorch's package pulls in). `TFJS_DNNL=0` turns it
 * off; a path in `TFJS_DNNL` names the library to load.
 *
 * @module
 */
import { libraryRequest, openFirst } from "./ffi_library.ts";

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
   * Threads of its forward and input-gradient passes (the filter gradient
   * runs on `FILTER_GRADIENT_THREADS`, for the bits); null when they cannot
   * be set.
   */
  readonly threads: number | null;
  /** Sets the threads of the passes made from now on, when it can. */
  setThreads(threads: number): void;
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
  const found = withBriefSpin(() => openFirst(paths, SYMBOLS, "oneDNN 2"));
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

/**
 * `load()` (the dlopen that brings in OpenMP) with OpenMP's idle threads
 * told to spin briefly, unless the user set a policy. libgomp's default
 * spins ~300,000 rounds (milliseconds) after each parallel region, and on a
 * shared machine a spinning thread takes the core that a descheduled one
 * needs: the VQ-VAE step took 246 ms against 43 for im2col at load 5. Not
 * spinning at all (OMP_WAIT_POLICY=PASSIVE) costs a wake-up of ~0.15 ms per
 * region, more than a small layer's pass (docs/performance.md). libgomp
 * reads the variable once, when it is loaded; it is removed again at once,
 * so that processes started later do not inherit it.
 */
function withBriefSpin<T>(load: () => T): T {
  let set = false;
  try {
    if (!Deno.env.get("OMP_WAIT_POLICY") && !Deno.env.get("GOMP_SPINCOUNT")) {
      Deno.env.set("GOMP_SPINCOUNT", String(SPIN_ROUNDS));
      set = true;
    }
  } catch { /* no --allow-env: OpenMP's default */ }
  try {
    return load();
  } finally {
    if (set) Deno.env.delete("GOMP_SPINCOUNT");
  }
}

/** Rounds an idle OpenMP thread spins before it sleeps: ~0.5 ms. */
const SPIN_ROUNDS = 10000;

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
  check(s.dnnl_stream_create(out, engine, 1), "stream_create");
  const stream = pointerIn(out);
  const omp = runtime === RUNTIME_OMP ? openOpenMp() : null;
  let threads = 1;
  // Between passes OpenMP stays on one thread, so that the reorders run
  // inline: each parallel region wakes the sleeping threads, and twelve
  // wake-ups per layer cost more than the small layers' passes.
  omp?.omp_set_num_threads(1);
  /**
   * `work()` with OpenMP on `n` threads: a primitive made in it keeps the
   * count, and one run in it uses its count.
   */
  const onThreads = <T>(n: number, work: () => T): T => {
    if (!omp || n === 1) return work();
    omp.omp_set_num_threads(n);
    try {
      return work();
    } finally {
      omp.omp_set_num_threads(1);
    }
  };
  const plans = new Plans(s, engine, onThreads);
  const planOf = (pass: ConvPass, g: ConvGeometry) =>
    plans.get(
      pass,
      g,
      pass === "backwardWeights" && omp ? FILTER_GRADIENT_THREADS : threads,
    );
  const dnnl: Dnnl = {
    path,
    version: `oneDNN ${major}.${minor}.${patch}`,
    get threads() {
      return omp ? threads : null;
    },
    setThreads(n) {
      if (omp) threads = n;
    },
    convolve(pass, g, a, b, result) {
      const plan = planOf(pass, g);
      if (plan === null) return false;
      plan.run(a, b, result, stream, onThreads);
      return true;
    },
    implementation(pass, g) {
      return planOf(pass, g)?.implementation ?? null;
    },
  };
  return { ok: true, dnnl };
}

function openOpenMp():
  | Deno.DynamicLibrary<typeof OMP_SYMBOLS>["symbols"]
  | null {
  for (const path of ["libgomp.so.1", "libiomp5.so", "libomp.so"]) {
    try {
      return Deno.dlopen(path, OMP_SYMBOLS).symbols;
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

/** The oneDNN objects of one pass of one geometry. */
class PassPlan {
  /** Memories to destroy with the plan. */
  readonly #owned: Pointer[] = [];
  /** Plain memories (tfjs's tensors: handles set per call): a, b, out. */
  readonly #plain: Pointer[] = [];
  /** Reorders into the primitive's layout of a and b, and out of it; null when the same. */
  readonly #reorders: ({ primitive: Pointer; args: BigUint64Array } | null)[] =
    [];
  readonly #primitive: Pointer;
  readonly #args: BigUint64Array;
  readonly #s: Lib;
  readonly implementation: string;

  constructor(
    readonly threads: number,
    s: Lib,
    engine: Pointer,
    pd: Pointer,
    roles: { arg: number; query: number; plain: Uint8Array }[],
  ) {
    this.#s = s;
    const out = new BigUint64Array(1);
    const impl = new BigUint64Array(1);
    check(s.dnnl_primitive_desc_query(pd, QUERY.implInfo, 0, impl), "query");
    this.implementation = new Deno.UnsafePointerView(pointerIn(impl)!)
      .getCString();
    check(s.dnnl_primitive_create(out, pd), "primitive_create");
    this.#primitive = pointerIn(out);
    const args: [number, Pointer][] = [];
    roles.forEach(({ arg, query, plain }, i) => {
      const plainMd = Deno.UnsafePointer.of(plain);
      check(s.dnnl_memory_create(out, plainMd, engine, 0n), "memory_create");
      const plainMemory = pointerIn(out);
      this.#own(plainMemory);
      this.#plain.push(plainMemory);
      const chosen = s.dnnl_primitive_desc_query_md(pd, query, 0);
      let used = plainMemory;
      let reorder = null;
      if (s.dnnl_memory_desc_equal(chosen, plainMd) === 0) {
        check(
          s.dnnl_memory_create(out, chosen, engine, ALLOCATE),
          "memory_create",
        );
        used = pointerIn(out);
        this.#own(used);
        const isOutput = i === roles.length - 1;
        const [from, to] = isOutput ? [chosen, plainMd] : [plainMd, chosen];
        check(
          s.dnnl_reorder_primitive_desc_create(
            out,
            from,
            engine,
            to,
            engine,
            null,
          ),
          "reorder_primitive_desc_create",
        );
        const reorderPd = pointerIn(out);
        try {
          check(s.dnnl_primitive_create(out, reorderPd), "primitive_create");
        } finally {
          s.dnnl_primitive_desc_destroy(reorderPd);
        }
        const [src, dst] = isOutput ? [used, plainMemory] : [plainMemory, used];
        reorder = {
          primitive: pointerIn(out),
          args: execArgs([[ARG.from, src], [ARG.to, dst]]),
        };
      }
      this.#reorders.push(reorder);
      args.push([arg, used]);
    });
    this.#args = execArgs(args);
  }

  #own(memory: Pointer): void {
    this.#owned.push(memory);
  }

  /** a and b reordered in, the pass, the result reordered out. */
  run(
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    stream: Pointer,
    onThreads: <T>(threads: number, work: () => T) => T,
  ) {
    const s = this.#s;
    [a, b, out].forEach((view, i) =>
      check(
        s.dnnl_memory_set_data_handle(this.#plain[i], view),
        "set_data_handle",
      )
    );
    const execute = (primitive: Pointer, args: BigUint64Array) =>
      check(
        s.dnnl_primitive_execute(primitive, stream, args.length / 2, args),
        "primitive_execute",
      );
    for (const r of this.#reorders.slice(0, 2)) {
      if (r) execute(r.primitive, r.args);
    }
    onThreads(this.threads, () => execute(this.#primitive, this.#args));
    const back = this.#reorders[2];
    if (back) execute(back.primitive, back.args);
    check(s.dnnl_stream_wait(stream), "stream_wait");
  }

  destroy(): void {
    const s = this.#s;
    s.dnnl_primitive_destroy(this.#primitive);
    for (const r of this.#reorders) {
      if (r) s.dnnl_primitive_destroy(r.primitive);
    }
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

const planKey = (g: ConvGeometry, threads: number) =>
  [
    threads,
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
 * Plans by geometry and thread count, the least recently used dropped past
 * `MAX_PLANS`.
 */
class Plans {
  readonly #byGeometry = new Map<string, Map<ConvPass, PassPlan | null>>();
  constructor(
    readonly s: Lib,
    readonly engine: Pointer,
    readonly onThreads: <T>(threads: number, work: () => T) => T,
  ) {}

  get(pass: ConvPass, g: ConvGeometry, threads: number): PassPlan | null {
    const key = planKey(g, threads);
    let passes = this.#byGeometry.get(key);
    if (passes) {
      this.#byGeometry.delete(key); // to the back: most recently used
    } else {
      passes = new Map();
      if (this.#byGeometry.size >= MAX_PLANS) this.#evictOldest();
    }
    this.#byGeometry.set(key, passes);
    if (!passes.has(pass)) {
      passes.set(
        pass,
        this.onThreads(threads, () => this.#make(pass, g, threads)),
      );
    }
    return passes.get(pass)!;
  }

  #evictOldest(): void {
    const [key, passes] = this.#byGeometry.entries().next().value!;
    for (const plan of passes.values()) plan?.destroy();
    this.#byGeometry.delete(key);
  }

  /** The plan of `pass`, or null when oneDNN has only a slow one (or none). */
  #make(pass: ConvPass, g: ConvGeometry, threads: number): PassPlan | null {
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
      const plan = new PassPlan(threads, s, this.engine, pd, roles);
      // The reference implementations are slower than im2col + sgemm.
      if (plan.implementation.startsWith("ref")) {
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
 * Threads of every filter-gradient pass: a fixed count, for the bits. One,
 * so that they are one thread's bits, as for every other kernel: a count of
 * two was faster on an idle machine, but made the pass wait for a
 * descheduled thread whenever the other core was busy.
 */
export const FILTER_GRADIENT_THREADS = 1;

/** Geometries whose plans are kept (a course uses a few dozen). */
const MAX_PLANS = 64;

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
