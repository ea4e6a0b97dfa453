/**
 * Opening an optional system library with Deno's FFI (OpenBLAS, oneDNN):
 * the first of its candidate files that loads, or why none did, in words
 * the backend line can show.
 *
 * @module
 */
import { ArgumentError } from "../errors.ts";
import { envVar } from "../env.ts";
import { checkOptionKeys } from "../options.ts";

/** What the caller of `openBlas`/`openDnnl` may ask for. */
export interface LibraryOptions {
  /** Threads (1 to 64; default 1). */
  threads?: number;
  /** Library files to try, in order. */
  paths?: readonly string[];
}

/**
 * What `fn` (`"openBlas"`) was asked to open: its validated thread count
 * and the files to try (the caller's, else the one the environment
 * variable `envName` names, else `candidates`); or why nothing is opened
 * (`envName=0`, which turns off the automatic choice only; no FFI here).
 *
 * @throws ArgumentError for an unknown option, a thread count outside 1-64
 * or an empty list of paths
 */
export function libraryRequest(
  fn: string,
  envName: string,
  options: LibraryOptions | undefined,
  candidates: readonly string[],
): { threads: number; paths: readonly string[] } | { reason: string } {
  options = checkOptionKeys(fn, options, ["threads", "paths"]);
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
    throw new ArgumentError(
      fn,
      `threads must be an integer from 1 to 64, got ${threads}`,
    );
  }
  if (options.paths !== undefined && options.paths.length === 0) {
    throw new ArgumentError(fn, "paths must name at least one file");
  }
  if (typeof Deno === "undefined" || typeof Deno.dlopen !== "function") {
    return { reason: "no Deno FFI in this runtime" };
  }
  // The environment switch applies to the automatic choice only: paths
  // given by the caller are an explicit request.
  const choice = options.paths ? undefined : envVar(envName);
  if (choice !== undefined && /^(0|off|false|no)$/i.test(choice)) {
    return { reason: `${envName}=0` };
  }
  const fromEnv = choice !== undefined && !/^(1|on|true|yes)$/i.test(choice);
  return {
    threads,
    paths: options.paths ?? (fromEnv ? [choice] : candidates),
  };
}

/** The library that was opened and its file, or why none could be. */
export type OpenedLibrary<S extends Deno.ForeignLibraryInterface> = {
  lib: Deno.DynamicLibrary<S>;
  path: string;
} | { error: string };

/**
 * Opens the first of `paths` that loads with `symbols`. `name` ("OpenBLAS")
 * is for the message when none does. Never throws.
 */
export function openFirst<S extends Deno.ForeignLibraryInterface>(
  paths: readonly string[],
  symbols: S,
  name: string,
): OpenedLibrary<S> {
  let last = "";
  for (const path of paths) {
    try {
      return { lib: Deno.dlopen(path, symbols), path };
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      // No permission is the same for every path: say it once.
      if (e instanceof Deno.errors.NotCapable || /--allow-ffi/.test(message)) {
        return { error: "no FFI permission (run with --allow-ffi)" };
      }
      const first = message.split("\n")[0].replace(
        /^(Could not open library: )+/,
        "",
      );
      last = first.includes(path) ? first : `${path}: ${first}`;
    }
  }
  return {
    error: paths.length === 1
      ? `cannot load ${last}`
      : `no ${name} library found (last tried ${last})`,
  };
}
