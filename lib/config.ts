/**
 * Settings from the environment. Quick mode: every notebook shrinks its
 * data and epochs when the environment variable `QUICK` is set (`QUICK=1`),
 * so the whole course runs in minutes for CI; full mode (the default) gives
 * the real results. (The backend's `TFJS_BACKEND`, `TFJS_WASM_THREADS` and
 * `TFJS_BLAS` are read by packages/tfjs-fast, with its own reader.)
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

/** True when the environment asks for quick mode (`QUICK=1`, `true` or `yes`). */
export function isQuick(): boolean {
  const value = envVar("QUICK");
  return value !== undefined &&
    ["1", "true", "yes"].includes(value.toLowerCase());
}

/** Picks `quickValue` in quick mode and `fullValue` otherwise: `const epochs = byMode(20, 2)`. */
export function byMode<T>(fullValue: T, quickValue: T): T {
  return isQuick() ? quickValue : fullValue;
}
