/**
 * Quick mode: every notebook shrinks its data and epochs when the
 * environment variable `QUICK` is set (`QUICK=1`), so the whole course runs
 * in minutes for CI; full mode (the default) gives the real results.
 *
 * @module
 */

/** True when the environment asks for quick mode (`QUICK=1`, `true` or `yes`). */
export function isQuick(): boolean {
  let value: string | undefined;
  try {
    value = Deno.env.get("QUICK");
  } catch {
    return false; // no --allow-env: full mode
  }
  return value !== undefined &&
    ["1", "true", "yes"].includes(value.toLowerCase());
}

/** Picks `quickValue` in quick mode and `fullValue` otherwise: `const epochs = byMode(20, 2)`. */
export function byMode<T>(fullValue: T, quickValue: T): T {
  return isQuick() ? quickValue : fullValue;
}
