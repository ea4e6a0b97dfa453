/**
 * Chooses the tfjs compute backend. Every notebook, test and benchmark
 * starts with `await initBackend()`.
 *
 * tfjs's default `cpu` backend is plain JavaScript and far too slow to train
 * with (a small conv VQ-VAE step takes minutes); the wasm backend with SIMD
 * is hundreds of times faster, and its threaded build with 2 threads faster
 * still. The project registers the training kernels wasm lacks and faster
 * versions of its slow ones (kernels/), and starts the threaded build
 * under Deno (kernels/wasm_threads.ts), falling back to one thread when
 * that fails. When Deno may use FFI and an OpenBLAS library is installed,
 * float32 matMuls run on OpenBLAS instead (kernels/blas_kernels.ts),
 * with the threads going to OpenBLAS and wasm on one thread: the fastest
 * combination measured. When a oneDNN 2 library loads too, the convolutions
 * run on it (kernels/dnnl.ts). README.md has the measurements.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { cpus } from "node:os";
import process from "node:process";
import { type Blas, openBlas, useBlas } from "./kernels/blas_kernels.ts";
import { startSplitBlas } from "./kernels/blas_split.ts";
import { type Dnnl, openDnnl, useDnnl } from "./kernels/dnnl.ts";
import { registerWasmKernels } from "./kernels/wasm_kernels.ts";
import { useFusedAdam } from "./optim.ts";
import { useFastLayers } from "./layers.ts";
import { useFusedPowGradient, useFusedReductionGradients } from "./ops.ts";
import { startThreadedWasm } from "./kernels/wasm_threads.ts";
import { ArgumentError } from "./errors.ts";
import { envVar } from "./env.ts";
import { checkBoolean, checkOptionKeys } from "./options.ts";

/**
 * Backends the package can run on. `webgpu` runs only when asked for
 * (option or `TFJS_BACKEND=webgpu`), never by default, and with tfjs's own
 * WebGPU kernels, not the project's.
 */
export const BACKENDS = ["wasm", "cpu", "webgpu"] as const;
/** A backend name accepted by `initBackend`. */
export type BackendName = typeof BACKENDS[number];

/** Options for `initBackend`. */
export interface InitBackendOptions {
  /**
   * Force a backend; default: env `TFJS_BACKEND`, else `"wasm"`. `"webgpu"`
   * needs a WebGPU adapter (Deno has WebGPU); it is never the default, and
   * a software adapter (llvmpipe) is named as such in the backend line.
   * Under Deno a tensor computed on the GPU reads only with `await
   * data()`/`array()`: `dataSync()`/`arraySync()` throw
   * `WEBGPU_SYNC_READ_ERROR` (tfjs-webgpu needs an OffscreenCanvas 2D
   * context for them, which Deno lacks).
   */
  backend?: BackendName;
  /**
   * Threads (1 to 8): for the matMuls when OpenBLAS is loaded (each large
   * product cut into blocks of rows that one-thread sgemm calls compute on
   * that many threads: the same bits as 1 thread, kernels/blas_split.ts),
   * else for wasm (its threaded build gives the same bits too). Default: env
   * `TFJS_WASM_THREADS`; else 2 when other processes left at least 1.5 CPUs
   * free over 100 ms before the start (without --allow-sys: when the load
   * average leaves a core idle), else 1. Only the first wasm start of a
   * process uses it.
   */
  threads?: number;
  /**
   * Run float32 matMuls on a system OpenBLAS when one can be loaded
   * (default: true, unless env `TFJS_BLAS=0`). Only the first wasm start
   * of a process uses it.
   */
  blas?: boolean;
  /**
   * Run float32 convolutions (conv2d, conv2dTranspose and their gradients)
   * on a system oneDNN 2 when one can be loaded (default: true, unless env
   * `TFJS_DNNL=0`), on as many threads as the matMuls. Only the first wasm
   * start of a process uses it.
   */
  dnnl?: boolean;
  /** Do not print the one-line summary. */
  quiet?: boolean;
}

let announced = "";
let adamPatched = false;
/** How the wasm backend was started (threads and why), once it was. */
let wasmStart: { threads: number; why: string } | null = null;
/** OpenBLAS, when the matMuls run on it, and why it is or is not used. */
let blasStart: { blas: Blas | null; why: string; offByUser: boolean } | null =
  null;
/** oneDNN, when the convolutions run on it, and why it is or is not used. */
let dnnlStart: { dnnl: Dnnl | null; why: string; offByUser: boolean } | null =
  null;

/** The backend asked for by the option or `TFJS_BACKEND`, validated. */
function backendAsked(option: string | undefined): BackendName {
  const given = option ?? envVar("TFJS_BACKEND") ?? "wasm";
  if (!(BACKENDS as readonly string[]).includes(given)) {
    throw new ArgumentError(
      "initBackend",
      `${
        option !== undefined ? "backend" : "TFJS_BACKEND (environment)"
      } must be one of ${
        BACKENDS.map((b) => JSON.stringify(b)).join(", ")
      }, got ${JSON.stringify(given)}`,
    );
  }
  return given as BackendName;
}

/** A thread count and why it was chosen. */
type ThreadChoice = { threads: number; why: string };

/**
 * The thread count asked for by the option or `TFJS_WASM_THREADS`,
 * validated; null when neither is given.
 */
function threadsAsked(option: number | undefined): ThreadChoice | null {
  const fromEnv = envVar("TFJS_WASM_THREADS");
  const given = option ?? (fromEnv !== undefined ? Number(fromEnv) : undefined);
  if (given !== undefined) {
    if (!Number.isInteger(given) || given < 1 || given > 8) {
      throw new ArgumentError(
        "initBackend",
        `${
          option !== undefined ? "threads" : "TFJS_WASM_THREADS (environment)"
        } must be an integer from 1 to 8, got ${
          option !== undefined ? given : JSON.stringify(fromEnv)
        }`,
      );
    }
    return {
      threads: given,
      why: option !== undefined ? "asked for" : "TFJS_WASM_THREADS",
    };
  }
  return null;
}

/**
 * The default thread count: 2 when a core is free, else 1. Safe because
 * both paths give the same bits on any count (wasm's threaded kernels, and
 * OpenBLAS products cut into one-thread blocks).
 */
async function defaultThreads(): Promise<ThreadChoice> {
  const cores = navigator.hardwareConcurrency ?? 1;
  if (cores < 2) return { threads: 1, why: "1 CPU" };
  // A second thread only pays when a core is idle: on a busy machine it was
  // measured slower (README.md). Results are the same either way.
  const idle = await idleCpus();
  if (idle !== null) {
    const state = `${idle.toFixed(1)} of ${cores} CPUs free`;
    return idle >= 1.5 ? { threads: 2, why: `default, ${state}` } : {
      threads: 1,
      why: `${state}; TFJS_WASM_THREADS=2 forces 2`,
    };
  }
  // No CPU times (no --allow-sys): the load average, which also counts
  // this course's own previous work.
  let load: number | null = null;
  try {
    load = Deno.loadavg()[0];
  } catch {
    // no --allow-sys: assume a spare core
  }
  if (load !== null && cores - load < 1) {
    return {
      threads: 1,
      why: `load ${load.toFixed(1)} on ${cores} CPUs, no idle core; ` +
        "TFJS_WASM_THREADS=2 forces 2",
    };
  }
  return {
    threads: 2,
    why: load === null ? "default" : `default, load ${load.toFixed(1)}`,
  };
}

/**
 * How many CPUs other processes left free over the next ~100 ms (idle or
 * used by this one: `os.cpus()` times, which need --allow-sys, less this
 * process's CPU time), or null when that cannot be read. Sampled now, unlike
 * the load average, which still counts the previous notebook of the same
 * course run.
 */
async function idleCpus(ms = 100): Promise<number | null> {
  const sample = () => {
    let idle = 0;
    let total = 0;
    const list = cpus();
    for (const { times } of list) {
      idle += times.idle;
      total += times.user + times.nice + times.sys + times.idle + times.irq;
    }
    const own = process.cpuUsage();
    return {
      idle,
      total,
      n: list.length,
      ownMs: (own.user + own.system) / 1000,
      at: performance.now(),
    };
  };
  try {
    const before = sample();
    await new Promise((resolve) => setTimeout(resolve, ms));
    const after = sample();
    const total = after.total - before.total;
    const elapsed = after.at - before.at;
    if (!(total > 0) || !(elapsed > 0)) return null;
    const busy = after.n * (1 - (after.idle - before.idle) / total);
    // This process's own threads (V8 compiling the modules it just loaded)
    // are not a reason to use fewer of them.
    const own = (after.ownMs - before.ownMs) / elapsed;
    return Math.min(after.n, after.n - Math.max(0, busy - own));
  } catch {
    return null;
  }
}

/** The WebGPU adapter initBackend started, once it did. */
let gpuStart:
  | { description: string; software: boolean; syncReads: boolean }
  | null = null;

/**
 * Software rasterisers that WebGPU implementations offer when there is no
 * GPU (Mesa's llvmpipe/lavapipe, SwiftShader, Windows' WARP).
 */
const SOFTWARE_ADAPTER =
  /llvmpipe|lavapipe|swiftshader|softpipe|\bwarp\b|software|basic render/i;

/**
 * Starts tfjs-backend-webgpu on the adapter navigator.gpu offers, or throws
 * saying why it cannot (no WebGPU in this runtime, no adapter, a failing
 * device). A software adapter is used only because it was asked for, and
 * the backend line says so.
 */
async function startWebGpu(): Promise<void> {
  const gpu = (navigator as { gpu?: GPU }).gpu;
  if (!gpu) {
    throw new Error(
      "initBackend: webgpu: this runtime has no WebGPU (navigator.gpu is missing)",
    );
  }
  const adapter = await gpu.requestAdapter({
    powerPreference: "high-performance",
  });
  if (!adapter) {
    throw new Error(
      "initBackend: webgpu: navigator.gpu.requestAdapter() found no adapter " +
        "(no GPU, and no software fallback)",
    );
  }
  const info =
    (adapter as { info?: GPUAdapterInfo & { isFallbackAdapter?: boolean } })
      .info;
  const description =
    [info?.description, info?.vendor && `vendor ${info.vendor}`]
      .filter(Boolean).join(", ") || "unnamed adapter";
  const software = Boolean(
    info?.isFallbackAdapter ||
      (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ||
      SOFTWARE_ADAPTER.test(description),
  );
  // Imported only now: on import it registers a backend of higher priority
  // than wasm, which would otherwise be tfjs's default.
  await import("@tensorflow/tfjs-backend-webgpu");
  if (!(await tf.setBackend("webgpu"))) {
    throw new Error(
      `initBackend: webgpu: the backend failed to start on ${description}`,
    );
  }
  const syncReads = hasCanvas2d();
  if (!syncReads) guardSyncReads(tf.backend() as unknown as WebGpuReader);
  gpuStart = { description, software, syncReads };
}

/**
 * The error a synchronous read of GPU data gives where tfjs-backend-webgpu
 * cannot do one (Deno: no OffscreenCanvas 2D context).
 */
export const WEBGPU_SYNC_READ_ERROR =
  "webgpu: dataSync(), arraySync() and bufferSync() cannot read a tensor computed on the GPU " +
  "here: tfjs-backend-webgpu 4.22 reads synchronously through an OffscreenCanvas " +
  "2D context, which this runtime (Deno) does not have, and WebGPU itself " +
  "only reads asynchronously (GPUBuffer.mapAsync); use await tensor.data() " +
  "or await tensor.array(), or the wasm backend";

/** Whether OffscreenCanvas has a 2D context (tfjs-webgpu's synchronous read needs one). */
function hasCanvas2d(): boolean {
  try {
    return typeof OffscreenCanvas !== "undefined" &&
      new OffscreenCanvas(1, 1).getContext("2d") !== null;
  } catch {
    return false;
  }
}

/** Backends whose readSync `guardSyncReads` wrapped already. */
const guarded = new WeakSet<object>();

/** The part of tfjs-backend-webgpu's backend that `guardSyncReads` wraps. */
interface WebGpuReader {
  readSync(dataId: object): unknown;
  tensorMap: {
    get(dataId: object): { values?: unknown; dtype?: string } | undefined;
  };
}

/**
 * tfjs-backend-webgpu's `readSync` fails deep inside with "Cannot read
 * properties of null (reading 'clearRect')" when the 2D context is missing:
 * values still held on the CPU (a tensor not yet uploaded, strings, the
 * parts of a complex tensor) are read as before, a read of GPU data throws
 * WEBGPU_SYNC_READ_ERROR instead.
 */
function guardSyncReads(backend: WebGpuReader): void {
  if (guarded.has(backend)) return;
  guarded.add(backend);
  const readSync = backend.readSync.bind(backend);
  backend.readSync = (dataId: object) => {
    const data = backend.tensorMap.get(dataId);
    if (
      data === undefined || data.values != null || data.dtype === "string" ||
      data.dtype === "complex64"
    ) {
      return readSync(dataId);
    }
    throw new Error(WEBGPU_SYNC_READ_ERROR);
  };
}

/** A one-line description of the active backend (name, SIMD, threads). */
export function describeBackend(): string {
  const name = tf.getBackend();
  if (name === "webgpu" && gpuStart) {
    return `webgpu (${gpuStart.description}${
      gpuStart.software
        ? "; a software adapter, no GPU: slower than wasm, used because asked for"
        : ""
    }${
      gpuStart.syncReads
        ? ""
        : "; no dataSync/arraySync here, only await data()/array()"
    })`;
  }
  if (name !== "wasm") return `${name}`;
  const simd = tf.env().getBool("WASM_HAS_SIMD_SUPPORT");
  const threads = wasmStart?.threads ?? 1;
  const why = wasmStart?.why ? `: ${wasmStart.why}` : "";
  const plural = (n: number) => n > 1 ? `${n} threads` : "1 thread";
  const blas = blasStart?.blas;
  const dnnl = dnnlStart?.dnnl;
  const conv = dnnl
    ? ` + conv on ${dnnl.version} (${
      (dnnl.threads ?? 1) > 1
        ? `${dnnl.threads} threads, the bits of 1`
        : "1 thread"
    })`
    : dnnlStart && !dnnlStart.offByUser
    ? `; oneDNN not used: ${dnnlStart.why}`
    : "";
  if (blas) {
    const version = blas.config.match(/OpenBLAS [\d.]+/)?.[0] ?? "OpenBLAS";
    return `wasm (${
      simd ? "SIMD" : "no SIMD"
    }, 1 thread) + matMul on ${version} (${
      blas.threads > 1 ? `${blas.threads} threads, the bits of 1` : "1 thread"
    }: ${blasStart!.why})${conv}`;
  }
  // Say why OpenBLAS is off unless the user turned it off.
  const off = blasStart && !blasStart.offByUser
    ? `; OpenBLAS not used: ${blasStart.why}`
    : "";
  return `wasm (${simd ? "SIMD" : "no SIMD"}, ${
    plural(threads)
  }${why}${off})${conv}`;
}

async function startWasm(threads: number, why: string): Promise<boolean> {
  if (threads > 1) {
    const started = await startThreadedWasm(threads);
    if (started.ok) {
      wasmStart = {
        threads: started.threads,
        why: started.threads === threads
          ? why
          : `${why} ${threads}, the build gave ${started.threads}`,
      };
      return true;
    }
    // Back to the single-threaded build for this and every later start.
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
    wasmStart = { threads: 1, why: `threads failed: ${started.reason}` };
  } else {
    wasmStart = { threads: 1, why };
  }
  return await tf.setBackend("wasm");
}

/**
 * Selects and initialises the backend, registers the project's kernels,
 * prints one line saying which backend was chosen and with how many threads
 * and why (once per process unless it changes) and returns its name. Loads
 * the .wasm files from the installed npm package: no network.
 */
export async function initBackend(
  options?: InitBackendOptions,
): Promise<BackendName> {
  options = checkOptionKeys("initBackend", options, [
    "backend",
    "threads",
    "blas",
    "dnnl",
    "quiet",
  ]);
  for (const key of ["blas", "dnnl"] as const) {
    if (options[key] !== undefined) {
      checkBoolean("initBackend", key, options[key]);
    }
  }
  const wanted = backendAsked(options.backend);
  // Validated on every call; used only by the first wasm start.
  const asked = threadsAsked(options.threads);
  const firstWasmStart = wanted === "wasm" && wasmStart === null;
  if (wanted === "wasm") registerWasmKernels();
  // Every tf.AdamOptimizer (tf.train.adam, layers' "adam") takes the fused
  // update on wasm: the same bits, one kernel per variable instead of ~12.
  // Once, so that a later useFusedAdam(false) stays.
  if (!adamPatched) {
    useFusedAdam(true);
    // Pow's gradient (a scalar exponent) as one kernel on wasm, same bits.
    useFusedPowGradient(true);
    // A full sum's or mean's gradient as one fill, not dy times JS ones.
    useFusedReductionGradients(true);
    // tf.layers.dense's and conv2d's gradients compute only the parts asked for.
    useFastLayers(true);
  }
  adamPatched = true;
  // The default samples the CPUs for 100 ms: once, and only when needed.
  let chosen: ThreadChoice | undefined;
  const choose = async () => chosen ??= asked ?? await defaultThreads();
  if (firstWasmStart && blasStart === null) {
    const blasWanted = options.blas ?? true;
    // OpenBLAS's own threads would change the last bits of some products;
    // more threads come from cutting the products instead.
    const opened = blasWanted ? openBlas({ threads: 1 }) : null;
    if (opened?.ok) {
      const choice = await choose();
      let blas: Blas = opened.blas;
      let why = choice.why;
      if (choice.threads > 1) {
        const split = await startSplitBlas(opened.blas, choice.threads);
        if (split.ok) blas = split.blas;
        else why = `${why} ${choice.threads}, which failed: ${split.reason}`;
      }
      useBlas(blas);
      blasStart = { blas, why, offByUser: false };
    } else {
      blasStart = {
        blas: null,
        why: opened ? opened.reason : "blas: false",
        offByUser: !opened || opened.reason === "TFJS_BLAS=0",
      };
    }
  }
  if (firstWasmStart && dnnlStart === null) {
    // Its convolutions give the same bits on any thread count.
    const opened = options.dnnl ?? true
      ? openDnnl({ threads: (await choose()).threads })
      : null;
    if (opened?.ok) {
      await opened.dnnl.ready;
      useDnnl(opened.dnnl);
      dnnlStart = { dnnl: opened.dnnl, why: "", offByUser: false };
    } else {
      dnnlStart = {
        dnnl: null,
        why: opened ? opened.reason : "dnnl: false",
        offByUser: !opened || opened.reason === "TFJS_DNNL=0",
      };
    }
  }
  // OpenBLAS takes the threads (a threaded wasm build beside it was measured
  // slower, README.md).
  const threads: ThreadChoice | null = !firstWasmStart
    ? null
    : blasStart?.blas
    ? { threads: 1, why: "OpenBLAS has the threads" }
    : await choose();
  // The cpu backend greets Node users with a tfjs-node advert on first use;
  // Deno looks like Node to tfjs, and tests compare against cpu, so mute it.
  const cpu = tf.findBackend("cpu") as { firstUse?: boolean } | null;
  if (cpu) cpu.firstUse = false;
  if (wanted === "webgpu" && tf.getBackend() !== "webgpu") {
    await startWebGpu();
  } else if (tf.getBackend() !== wanted) {
    const ok = threads
      ? await startWasm(threads.threads, threads.why)
      : await tf.setBackend(wanted);
    if (!ok) {
      throw new Error(
        `initBackend: the ${wanted} backend failed to initialise`,
      );
    }
  }
  await tf.ready();
  const line = `tfjs ${tf.version.tfjs} backend: ${describeBackend()}`;
  if (!options.quiet && line !== announced) console.log(line);
  announced = line;
  return wanted;
}
