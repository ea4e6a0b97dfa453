/**
 * The package's one environment reader (`TFJS_BACKEND`, `TFJS_WASM_THREADS`,
 * `TFJS_BLAS`, `TFJS_DNNL`).
 *
 * @module
 */

/**
 * The environment variable `name`, or undefined when it is unset, empty, or
 * cannot be read (no --allow-env): callers then use their default.
 */
export function envVar(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}
