/**
 * Chooses the tfjs compute backend. Every notebook, test and benchmark
 * starts with `await initBackend()`.
 *
 * tfjs's default `cpu` backend is plain JavaScript and far too slow to train
 * with (a small conv VQ-VAE step takes minutes); the wasm backend with SIMD
 * is hundreds of times faster. The project registers the training kernels
 * wasm lacks (lib/kernels/wasm_kernels.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { registerWasmKernels } from "./kernels/wasm_kernels.ts";
import { checkChoice } from "./validate.ts";

/** Backends the package can run on. */
export const BACKENDS = ["wasm", "cpu"] as const;
/** A backend name accepted by `initBackend`. */
export type BackendName = typeof BACKENDS[number];

/** Options for `initBackend`. */
export interface InitBackendOptions {
  /** Force a backend; default: env `TFJS_BACKEND`, else `"wasm"`. */
  backend?: BackendName;
  /** Do not print the one-line summary. */
  quiet?: boolean;
}

let announced = "";

function envBackend(): string | undefined {
  try {
    return Deno.env.get("TFJS_BACKEND") || undefined;
  } catch {
    return undefined; // no --allow-env: use the default
  }
}

/** A one-line description of the active backend (name, SIMD, threads). */
export function describeBackend(): string {
  const name = tf.getBackend();
  if (name !== "wasm") return `${name}`;
  const simd = tf.env().getBool("WASM_HAS_SIMD_SUPPORT");
  const threads = tf.env().getBool("WASM_HAS_MULTITHREAD_SUPPORT");
  return `wasm (${simd ? "SIMD" : "no SIMD"}, ${
    threads ? "multi-threaded" : "1 thread"
  })`;
}

/**
 * Selects and initialises the backend, registers the project's kernels,
 * prints one line saying which backend was chosen (once per process) and
 * returns its name. Loads the .wasm files from the installed npm package:
 * no network.
 */
export async function initBackend(
  options: InitBackendOptions = {},
): Promise<BackendName> {
  const wanted = checkChoice(
    "initBackend",
    options.backend !== undefined ? "backend" : "TFJS_BACKEND (environment)",
    options.backend ?? envBackend() ?? "wasm",
    BACKENDS,
  );
  if (wanted === "wasm") registerWasmKernels();
  // The cpu backend greets Node users with a tfjs-node advert on first use;
  // Deno looks like Node to tfjs, and tests compare against cpu, so mute it.
  const cpu = tf.findBackend("cpu") as { firstUse?: boolean } | null;
  if (cpu) cpu.firstUse = false;
  if (tf.getBackend() !== wanted) {
    const ok = await tf.setBackend(wanted);
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
