/**
 * Argument checks shared by every module: each failure is an `ArgumentError`
 * that names the argument and says what was expected, so a student sees
 * "kmeans: k must be a positive integer, got 0" instead of NaN or a crash
 * deep inside tfjs.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
// The performance package (initBackend, adam) defines the class, so one
// `instanceof ArgumentError` covers its errors and the course's.
import { ArgumentError } from "@course/tfjs-fast/errors";

export { ArgumentError };

function describe(value: unknown): string {
  if (value instanceof tf.Tensor) {
    return `a ${value.dtype} tensor of shape [${value.shape.join(", ")}]`;
  }
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === "string") return JSON.stringify(value);
  return String(value);
}

/** Throws unless `value` is an integer in [min, max]. */
export function checkInteger(
  where: string,
  name: string,
  value: unknown,
  { min = -Infinity, max = Infinity }: { min?: number; max?: number } = {},
): number {
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < min ||
    value > max
  ) {
    const range = max === Infinity
      ? (min === 1 ? "a positive integer" : `an integer >= ${min}`)
      : `an integer in [${min}, ${max}]`;
    throw new ArgumentError(
      where,
      `${name} must be ${range}, got ${describe(value)}`,
    );
  }
  return value;
}

/** Throws unless `value` is a finite number in the given range (exclusive bounds optional). */
export function checkNumber(
  where: string,
  name: string,
  value: unknown,
  { min = -Infinity, max = Infinity, minExclusive = false }: {
    min?: number;
    max?: number;
    minExclusive?: boolean;
  } = {},
): number {
  const ok = typeof value === "number" && Number.isFinite(value) &&
    (minExclusive ? value > min : value >= min) && value <= max;
  if (!ok) {
    const lo = min === -Infinity ? "" : `${minExclusive ? ">" : ">="} ${min}`;
    const hi = max === Infinity ? "" : `<= ${max}`;
    const range = [lo, hi].filter(Boolean).join(" and ");
    throw new ArgumentError(
      where,
      `${name} must be a finite number${range ? " " + range : ""}, got ${
        describe(value)
      }`,
    );
  }
  return value as number;
}

/** Throws unless `value` is one of `choices`. */
export function checkChoice<T extends string>(
  where: string,
  name: string,
  value: unknown,
  choices: readonly T[],
): T {
  if (!choices.includes(value as T)) {
    throw new ArgumentError(
      where,
      `${name} must be one of ${
        choices.map((c) => JSON.stringify(c)).join(", ")
      }, got ${describe(value)}`,
    );
  }
  return value as T;
}

/**
 * Throws unless `value` is a tensor whose rank and sizes match `shape`
 * (`null` in `shape` matches any size; `shape` undefined skips the check).
 */
export function checkTensor(
  where: string,
  name: string,
  value: unknown,
  { shape, rank, dtype, minRank }: {
    shape?: (number | null)[];
    rank?: number;
    minRank?: number;
    dtype?: tf.DataType | tf.DataType[];
  } = {},
): tf.Tensor {
  if (!(value instanceof tf.Tensor)) {
    throw new ArgumentError(
      where,
      `${name} must be a tf.Tensor, got ${describe(value)}`,
    );
  }
  if (value.isDisposed) {
    throw new ArgumentError(where, `${name} has already been disposed`);
  }
  const wantRank = shape ? shape.length : rank;
  if (wantRank !== undefined && value.rank !== wantRank) {
    const want = shape
      ? `shape [${shape.map((s) => s ?? "*").join(", ")}]`
      : `rank ${wantRank}`;
    throw new ArgumentError(
      where,
      `${name} must have ${want}, got ${describe(value)}`,
    );
  }
  if (minRank !== undefined && value.rank < minRank) {
    throw new ArgumentError(
      where,
      `${name} must have rank >= ${minRank}, got ${describe(value)}`,
    );
  }
  if (shape && shape.some((s, i) => s !== null && s !== value.shape[i])) {
    throw new ArgumentError(
      where,
      `${name} must have shape [${
        shape.map((s) => s ?? "*").join(", ")
      }], got ${describe(value)}`,
    );
  }
  if (
    dtype === undefined &&
    (value.dtype === "string" || value.dtype === "complex64")
  ) {
    // No course function computes on strings or complex numbers: without
    // this, tfjs fails deep inside an op with a message naming no argument.
    throw new ArgumentError(
      where,
      `${name} must hold real numbers, got ${describe(value)}`,
    );
  }
  if (dtype !== undefined) {
    const ok = Array.isArray(dtype) ? dtype : [dtype];
    if (!ok.includes(value.dtype)) {
      throw new ArgumentError(
        where,
        `${name} must have dtype ${ok.join(" or ")}, got ${describe(value)}`,
      );
    }
  }
  return value;
}

/** Throws if a tensor holds NaN or +-Infinity (reads the values synchronously). */
export function checkFinite(
  where: string,
  name: string,
  value: tf.Tensor,
): tf.Tensor {
  const values = value.dataSync();
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new ArgumentError(
        where,
        `${name} must be finite, but element ${i} is ${values[i]}`,
      );
    }
  }
  return value;
}

/**
 * Accepts a `tf.Tensor2D` or a rectangular `number[][]` and returns a float32
 * [n, d] tensor (a new one for arrays: the caller disposes it only when
 * `created` is true). Ragged rows, non-numbers and NaN are rejected.
 */
export function toMatrix(
  where: string,
  name: string,
  data: tf.Tensor2D | number[][] | unknown,
  { finite = true }: { finite?: boolean } = {},
): { matrix: tf.Tensor2D; created: boolean } {
  if (data instanceof tf.Tensor) {
    checkTensor(where, name, data, { rank: 2 });
    if (finite) checkFinite(where, name, data);
    const matrix = data.dtype === "float32"
      ? data as tf.Tensor2D
      : data.toFloat() as tf.Tensor2D;
    return { matrix, created: matrix !== data };
  }
  if (!Array.isArray(data) || data.length === 0) {
    throw new ArgumentError(
      where,
      `${name} must be a non-empty number[][] or a rank-2 tf.Tensor, got ${
        describe(data)
      }`,
    );
  }
  const width = Array.isArray(data[0]) ? data[0].length : -1;
  const flat = new Float32Array(data.length * Math.max(width, 0));
  for (let i = 0; i < data.length; i++) {
    const row = data[i];
    if (!Array.isArray(row) || row.length !== width || width === 0) {
      throw new ArgumentError(
        where,
        `${name} must be a rectangular number[][]: row 0 has ${width} entries, row ${i} has ${
          Array.isArray(row) ? row.length : describe(row)
        }`,
      );
    }
    for (let j = 0; j < width; j++) {
      const v = row[j];
      if (typeof v !== "number" || (finite && !Number.isFinite(v))) {
        throw new ArgumentError(
          where,
          `${name}[${i}][${j}] must be a finite number, got ${v}`,
        );
      }
      flat[i * width + j] = v;
    }
  }
  return { matrix: tf.tensor2d(flat, [data.length, width]), created: true };
}

/** Edit distance between two short strings (for "did you mean" hints). */
function editDistance(a: string, b: string, ignoreCase = true): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        row[j] + 1,
        next[j - 1] + 1,
        row[j - 1] +
          (ignoreCase
            ? (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1)
            : (a[i - 1] === b[j - 1] ? 0 : 1)),
      );
    }
    row = next;
  }
  return row[b.length];
}

/**
 * Throws unless `options` is undefined or a plain object whose keys are all
 * in `known`; an unknown key (a typo) names the closest known key. Returns
 * the options, `{}` for undefined.
 *
 * ```ts
 * checkOptions("odeint", { stp: 0.1 }, ["method", "step"]);
 * // ArgumentError: odeint: unknown option "stp" (did you mean "step"?) ...
 * ```
 */
export function checkOptions<T extends object>(
  where: string,
  options: T | undefined,
  known: readonly string[],
  name = "options",
): T {
  if (options === undefined) return {} as T;
  if (
    options === null || typeof options !== "object" || Array.isArray(options) ||
    options instanceof tf.Tensor
  ) {
    throw new ArgumentError(
      where,
      `${name} must be an object like { ${
        known.slice(0, 2).join(", ")
      } }, got ${describe(options)}`,
    );
  }
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    // Ties (case aside) go to the closer spelling: "label" -> "labels", not "xLabel".
    const closest = [...known].sort((a, b) =>
      editDistance(key, a) - editDistance(key, b) ||
      editDistance(key, a, false) - editDistance(key, b, false)
    )[0];
    const hint = closest !== undefined &&
        editDistance(key, closest) <= Math.max(2, key.length / 3)
      ? ` (did you mean ${JSON.stringify(closest)}?)`
      : "";
    throw new ArgumentError(
      where,
      `unknown option ${
        JSON.stringify(key)
      } in ${name}${hint}; known options: ${known.join(", ") || "none"}`,
    );
  }
  return options;
}

/** Throws unless `value` is a boolean (so "no" or 0 cannot mean true or false by accident). */
export function checkBoolean(
  where: string,
  name: string,
  value: unknown,
): boolean {
  if (typeof value !== "boolean") {
    throw new ArgumentError(
      where,
      `${name} must be true or false, got ${describe(value)}`,
    );
  }
  return value;
}

/**
 * Throws unless `x` fits the input of `model` (every axis after the batch
 * axis, where the model fixes it), so a wrong-shaped batch is an
 * ArgumentError naming `where` and `name` instead of a tfjs layer error.
 */
export function checkFitsModel(
  where: string,
  name: string,
  x: tf.Tensor,
  model: tf.LayersModel,
): void {
  const want = model.inputs?.[0]?.shape;
  if (!want) return;
  const fits = want.length === x.rank &&
    want.every((s, i) => i === 0 || s === null || s === x.shape[i]);
  if (!fits) {
    throw new ArgumentError(
      where,
      `${name} must have shape [${
        want.map((s) => s ?? "*").join(", ")
      }] (the input of ${model.name}), got ${describe(x)}`,
    );
  }
}

/**
 * The most values one call may create at once: 2^28 (1 GiB of float32).
 * A larger request (a count of 1e12, a shape [1e6, 1e6]) is a mistake, and
 * without this check it is a raw RangeError from an allocation, or a hang.
 */
export const MAX_VALUES = 2 ** 28;

/** Throws unless `values` (what `what` would create, e.g. "n * 784") is at most MAX_VALUES. */
export function checkSize(where: string, what: string, values: number): void {
  if (!(values <= MAX_VALUES)) {
    throw new ArgumentError(
      where,
      `${what} = ${values} values is more than one call may create (${MAX_VALUES}, 1 GiB of float32); ask for fewer`,
    );
  }
}
