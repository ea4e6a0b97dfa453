/**
 * The pthread worker of tfjs-backend-wasm's threaded SIMD build, for Deno.
 *
 * tfjs ships this script as a blob-URL string written for Node's
 * `worker_threads`; under Deno it fails three ways: a blob URL is not a
 * worker path (ERR_WORKER_PATH), `location` is a getter-only global, and the
 * main module's source it evaluates refers to bundler variables
 * (`require$$0`, `require$$1`, `commonjsGlobal`) that only exist in the
 * bundle's closure. This file is the same message protocol (emscripten's
 * worker.js: load, run, cancel, processProxyingQueue) with those globals
 * provided. kernels/wasm_threads.ts starts it and sends the module
 * source as text in the "load" message.
 *
 * @module
 */
import { parentPort } from "node:worker_threads";
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

let Module = {};
Object.assign(globalThis, {
  self: globalThis,
  require: createRequire(import.meta.url),
  require$$0: fs,
  require$$1: path,
  commonjsGlobal: globalThis,
  postMessage: (msg) => parentPort.postMessage(msg),
  // Its presence tells the module it runs in a worker (which decides where
  // it looks for files); the source itself arrives in the "load" message.
  importScripts: () => {
    throw new Error("wasm thread worker: importScripts is not supported");
  },
  __dirname: path.dirname(new URL(import.meta.url).pathname),
});
let initializedJS = false;
let pendingQueues = [];
const printErr = (...args) => fs.writeSync(2, args.join(" ") + "\n");

Module.instantiateWasm = (info, receiveInstance) => {
  const instance = new WebAssembly.Instance(Module.wasmModule, info);
  receiveInstance(instance);
  Module.wasmModule = null;
  return instance.exports;
};
// Called by the module factory once this thread's instance is ready.
globalThis.startWorker = (instance) => {
  Module = instance;
  globalThis.postMessage({ cmd: "loaded" });
};

function onmessage(data) {
  try {
    if (data.cmd === "load") {
      Module.wasmModule = data.wasmModule;
      for (const handler of data.handlers) {
        Module[handler] = (...args) =>
          globalThis.postMessage({ cmd: "callHandler", handler, args });
      }
      Module.wasmMemory = data.wasmMemory;
      Module.buffer = Module.wasmMemory.buffer;
      Module.ENVIRONMENT_IS_PTHREAD = true;
      // Global-scope evaluation defines `WasmBackendModuleThreadedSimd`.
      (0, eval)(data.source);
      globalThis.WasmBackendModuleThreadedSimd(Module);
    } else if (data.cmd === "run") {
      Module.__emscripten_thread_init(data.pthread_ptr, 0, 0, 1);
      Module.establishStackSpace();
      Module.PThread.receiveObjectTransfer(data);
      Module.PThread.threadInitTLS();
      if (!initializedJS) {
        for (const q of pendingQueues) Module.executeNotifiedProxyingQueue(q);
        pendingQueues = [];
        initializedJS = true;
      }
      try {
        Module.invokeEntryPoint(data.start_routine, data.arg);
      } catch (ex) {
        if (ex === "unwind") return;
        if (!(ex instanceof Module.ExitStatus)) throw ex;
        if (!Module.keepRuntimeAlive()) {
          Module.__emscripten_thread_exit(ex.status);
        }
      }
    } else if (data.cmd === "cancel") {
      if (Module._pthread_self()) Module.__emscripten_thread_exit(-1);
    } else if (data.cmd === "processProxyingQueue") {
      if (initializedJS) Module.executeNotifiedProxyingQueue(data.queue);
      else pendingQueues.push(data.queue);
    } else if (data.cmd) {
      printErr(`wasm thread worker: unknown command ${data.cmd}`);
    }
  } catch (ex) {
    printErr(`wasm thread worker: ${ex?.stack ?? ex}`);
    Module.__emscripten_thread_crashed?.();
    throw ex;
  }
}
parentPort.on("message", onmessage);
