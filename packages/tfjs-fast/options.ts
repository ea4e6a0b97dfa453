/**
 * Checks of the package's arguments: an options object's keys (a typo in a
 * key would otherwise be ignored without a word) and switches.
 *
 * @module
 */
import { ArgumentError } from "./errors.ts";

/** Throws an `ArgumentError` unless `value` is true or false. */
export function checkBoolean(
  where: string,
  name: string,
  value: unknown,
): void {
  if (typeof value !== "boolean") {
    throw new ArgumentError(
      where,
      `${name} must be true or false, got ${JSON.stringify(value)}`,
    );
  }
}

/** Edits (insertions, deletions, substitutions) between two strings. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      row.push(Math.min(previous[j] + 1, row[j - 1] + 1, substitution));
    }
    previous = row;
  }
  return previous[b.length];
}

/**
 * Returns `options` ({} when undefined) after checking that it is an object
 * whose keys are all `known`: an unknown key is an `ArgumentError` naming
 * the closest known one, e.g. `initBackend: unknown option "thread" (did you
 * mean "threads"?); known options: backend, threads, blas, dnnl, quiet`.
 */
export function checkOptionKeys<T extends object>(
  where: string,
  options: T | undefined,
  known: readonly (keyof T & string)[],
): T {
  if (options === undefined) return {} as T;
  if (
    options === null || typeof options !== "object" || Array.isArray(options)
  ) {
    throw new ArgumentError(
      where,
      `options must be an object like { ${
        known.slice(0, 2).join(", ")
      } }, got ${Array.isArray(options) ? "an array" : String(options)}`,
    );
  }
  for (const key of Object.keys(options)) {
    if ((known as readonly string[]).includes(key)) continue;
    const closest = [...known].sort((a, b) =>
      editDistance(key, a) - editDistance(key, b)
    )[0];
    const hint = closest !== undefined &&
        editDistance(key, closest) <= Math.max(2, key.length / 3)
      ? ` (did you mean ${JSON.stringify(closest)}?)`
      : "";
    throw new ArgumentError(
      where,
      `unknown option ${JSON.stringify(key)}${hint}; known options: ${
        known.join(", ")
      }`,
    );
  }
  return options;
}
