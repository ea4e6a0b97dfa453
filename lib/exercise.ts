/**
 * Check cells for exercises. A check cell runs a few tests against the
 * student's code and says in plain words what is right or wrong; it throws
 * (so the autograder scores it zero) when something is wrong.
 *
 * ```ts
 * await checkExercise("kmeans-assign", () => {
 *   expectClose(assign(points, centroids), [0, 1, 1], "assignments of three points");
 * });
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** A wrong answer; the message says what was expected and what came out. */
export class ExerciseError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ExerciseError";
  }
}

type Numeric = number | ArrayLike<number> | number[][] | tf.Tensor;

function flat(x: Numeric): number[] {
  if (x instanceof tf.Tensor) return Array.from(x.dataSync());
  if (typeof x === "number") return [x];
  const out: number[] = [];
  const walk = (v: unknown) => {
    if (typeof v === "number") out.push(v);
    else for (const e of Array.from(v as ArrayLike<unknown>)) walk(e);
  };
  walk(x);
  return out;
}

function show(values: number[]): string {
  const head = values.slice(0, 6).map((v) => Number(v.toPrecision(5))).join(
    ", ",
  );
  return values.length === 1
    ? head
    : `[${head}${values.length > 6 ? ", ..." : ""}]`;
}

/** Throws `ExerciseError` with `message` unless `condition` holds. */
export function expect(condition: unknown, message: string): asserts condition {
  if (!condition) throw new ExerciseError(message);
}

/**
 * Throws `ExerciseError` unless `actual` and `expected` (numbers, arrays or
 * tensors) have the same size and agree within atol + rtol * |expected|.
 */
export function expectClose(
  actual: Numeric,
  expected: Numeric,
  what: string,
  { rtol = 1e-4, atol = 1e-5 }: { rtol?: number; atol?: number } = {},
): void {
  if (actual === undefined || actual === null) {
    throw new ExerciseError(
      `${what}: your code returned ${actual}; return a value`,
    );
  }
  if (actual instanceof tf.Tensor && expected instanceof tf.Tensor) {
    const same = actual.shape.length === expected.shape.length &&
      actual.shape.every((s, i) => s === expected.shape[i]);
    expect(
      same,
      `${what}: expected shape [${expected.shape}], got [${actual.shape}]`,
    );
  }
  const a = flat(actual);
  const e = flat(expected);
  expect(
    a.length === e.length,
    `${what}: expected ${e.length} values, got ${a.length}`,
  );
  for (let i = 0; i < a.length; i++) {
    if (!(Math.abs(a[i] - e[i]) <= atol + rtol * Math.abs(e[i]))) {
      throw new ExerciseError(
        `${what}: expected ${show(e)}, got ${
          show(a)
        } (first difference at index ${i}: ` +
          `${a[i]} vs ${e[i]})`,
      );
    }
  }
}

/**
 * Runs the tests of exercise `id`. Prints "Exercise <id>: correct" when they
 * pass. When they fail it throws an `ExerciseError` that says what is wrong,
 * or that the exercise is not implemented yet.
 */
export async function checkExercise(
  id: string,
  tests: () => void | Promise<void>,
): Promise<void> {
  // A scope frees the tensors the tests create, even when they are async.
  tf.engine().startScope();
  try {
    await tests();
  } catch (e) {
    throw explain(id, e);
  } finally {
    tf.engine().endScope();
  }
  console.log(`✅ Exercise ${id}: correct`);
}

function explain(id: string, e: unknown): ExerciseError {
  const message = e instanceof Error ? e.message : String(e);
  if (/not implemented/i.test(message)) {
    return new ExerciseError(
      `❌ Exercise ${id}: not implemented yet (fill in the cell above)`,
    );
  }
  if (e instanceof ExerciseError) {
    return new ExerciseError(`❌ Exercise ${id}: ${message}`);
  }
  const name = e instanceof Error ? e.name : "Error";
  return new ExerciseError(
    `❌ Exercise ${id}: your code threw ${name}: ${message}`,
  );
}
