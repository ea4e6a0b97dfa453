/**
 * Opening an optional system library with Deno's FFI (OpenBLAS, oneDNN):
 * the first of its candidate files that loads, or why none did, in words
 * the backend line can show.
 *
 * @module
 */

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
