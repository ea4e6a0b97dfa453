/**
 * Starts tfjs-backend-wasm's threaded SIMD build under Deno.
 *
 * tfjs turns threads off whenever it thinks it runs in Node, and Deno looks
 * like Node. Forcing them on fails in four places, each handled here:
 *
 * 1. The pthread workers are created from a blob URL, which
 *    `node:worker_threads` rejects (ERR_WORKER_PATH). While the backend
 *    starts, the global `Worker` (which the module replaces with
 *    worker_threads' `Worker`) is pinned to a subclass that loads
 *    kernels/wasm_thread_worker.js instead and sends it the module's
 *    source as text, since the module arrives as a Blob.
 * 2. tfjs's worker script assigns the getter-only `location` and the module
 *    source refers to bundler variables (`require$$0`, `commonjsGlobal`):
 *    the project's worker script provides those instead.
 * 3. The C++ side caps the thread pool at half of `os.cpus()` (one thread on
 *    a 2-core machine) whatever `setThreadsCount` says: `os.cpus()` reports
 *    enough cores while the module starts.
 * 4. A running pthread worker is `ref()`-ed and keeps the process alive
 *    after the script ends: the subclass ignores `ref()`, so a script exits
 *    when its own work is done (the threads die with it).
 *
 * Everything patched is restored once the backend is up or has failed.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { setThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import os from "node:os";
import { Worker as NodeWorker } from "node:worker_threads";

/** The outcome of `startThreadedWasm`. */
export type ThreadedStart =
  | { ok: true; threads: number }
  | { ok: false; reason: string };

const workerPath = new URL("./wasm_thread_worker.js", import.meta.url);

/**
 * Initialises the `wasm` backend with the threaded SIMD build and
 * `threads` threads (>= 2). Never throws: on any failure it returns the
 * reason, and the caller falls back to the single-threaded build. Must run
 * before the wasm backend was first initialised in this process.
 */
export async function startThreadedWasm(
  threads: number,
  { timeoutMs = 30000 }: { timeoutMs?: number } = {},
): Promise<ThreadedStart> {
  if (workerPath.protocol !== "file:") {
    return { ok: false, reason: "the worker script is not a local file" };
  }
  try {
    const read = Deno.permissions.querySync({
      name: "read",
      path: workerPath,
    });
    if (read.state !== "granted") {
      return { ok: false, reason: "no read permission for the worker script" };
    }
  } catch {
    // No permissions API: just try.
  }
  let failure: (reason: string) => void = () => {};
  const failed = new Promise<string>((resolve) => (failure = resolve));
  let source: Promise<string> | null = null;

  class ThreadWorker extends NodeWorker {
    constructor(_url: unknown, options?: unknown) {
      super(workerPath, options as ConstructorParameters<typeof NodeWorker>[1]);
      this.unref();
      // A worker that cannot start would otherwise throw from an event
      // handler and take the process down: fail the start instead.
      super.on("error", (e: Error) => failure(`worker error: ${e.message}`));
    }
    override ref(): void {
      // Never keep the process alive (see point 4 above).
    }
    override on(
      event: string | symbol,
      // deno-lint-ignore no-explicit-any
      listener: (...args: any[]) => void,
    ): this {
      if (event === "error") return this; // handled in the constructor
      return super.on(event, listener);
    }
    override postMessage(message: unknown, transfer?: unknown): void {
      const m = message as { cmd?: string; urlOrBlob?: unknown };
      if (m?.cmd === "load" && m.urlOrBlob instanceof Blob) {
        source ??= m.urlOrBlob.text();
        source.then(
          (text) =>
            super.postMessage(
              { ...m, urlOrBlob: undefined, source: text },
              transfer as never,
            ),
          (e) => failure(`cannot read the module source: ${e}`),
        );
        return;
      }
      super.postMessage(message, transfer as never);
    }
  }

  const workerDescriptor = Object.getOwnPropertyDescriptor(
    globalThis,
    "Worker",
  );
  const cpus = os.cpus;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    Object.defineProperty(globalThis, "Worker", {
      configurable: true,
      get: () => ThreadWorker,
      set: () => {},
    });
    // Only the length is read; the real os.cpus() would need --allow-sys.
    (os as { cpus: typeof os.cpus }).cpus = () =>
      Array.from({ length: 2 * threads }, () => ({
        model: "",
        speed: 0,
        times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 },
      }));
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
    setThreadsCount(threads);
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(
        () => resolve(`no answer from the workers in ${timeoutMs} ms`),
        timeoutMs,
      );
    });
    const result = await Promise.race([
      tf.setBackend("wasm").then((ok) =>
        ok ? null : "the threaded build failed to initialise"
      ),
      failed,
      timeout,
    ]);
    if (result !== null) return { ok: false, reason: result };
    const { getThreadsCount } = await import("@tensorflow/tfjs-backend-wasm");
    const actual = getThreadsCount();
    return { ok: true, threads: actual };
  } catch (e) {
    return { ok: false, reason: (e as Error).message ?? String(e) };
  } finally {
    clearTimeout(timer);
    (os as { cpus: typeof os.cpus }).cpus = cpus;
    if (workerDescriptor) {
      Object.defineProperty(globalThis, "Worker", workerDescriptor);
    } else {
      delete (globalThis as { Worker?: unknown }).Worker;
    }
    // From now on a worker error can only be reported.
    failure = (reason) => console.error(`tfjs wasm thread: ${reason}`);
  }
}
