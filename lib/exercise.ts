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

/**
 * A wrong answer; the message says what was expected and what came out. Its
 * stack names no line of this file (the check's machinery is not the
 * student's business); `frames` are kept for errors thrown by the student's
 * own code.
 */
export class ExerciseError extends Error {
  /** Creates the error. */
  constructor(message: string, frames: string[] = []) {
    super(message);
    this.name = "ExerciseError";
    this.stack = [`${this.name}: ${message}`, ...frames].join("\n");
  }
}

/** The stack frames of `e` that are the student's (not this file, tfjs or Deno's internals). */
function studentFrames(e: unknown): string[] {
  const stack = e instanceof Error ? e.stack ?? "" : "";
  return stack.split("\n").filter((line) =>
    /^\s+at /.test(line) && !line.includes("/lib/exercise.ts") &&
    !line.includes("node_modules") && !line.includes("ext:")
  );
}

/** Which input of a tf.grad/tf.grads call got no gradient (recorded while a check runs). */
interface MissingGradient {
  index: number;
  count: number;
  shape: number[];
}

type Gradients = (
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  dy?: tf.Tensor,
  allowNoGradients?: boolean,
) => { value: tf.Tensor; grads: (tf.Tensor | null)[] };

/**
 * Runs `fn` while watching the engine's gradient computations: tfjs says
 * only "Cannot compute gradient of y=f(x) with respect to x"; this records
 * which input of the tf.grad/tf.grads call it was about.
 */
async function watchingGradients<T>(
  fn: () => Promise<T>,
): Promise<
  { ok: true; result: T; missing: MissingGradient | null } | {
    ok: false;
    error: unknown;
    missing: MissingGradient | null;
  }
> {
  const engine = tf.engine() as unknown as { gradients: Gradients };
  const original = engine.gradients;
  let missing: MissingGradient | null = null;
  engine.gradients = function (this: unknown, f, xs, dy, allowNoGradients) {
    let out;
    try {
      out = original.call(this, f, xs, dy, allowNoGradients);
    } catch (e) {
      // No path from any input: the first one is as good a name as any.
      if (xs.length > 0) missing = { index: -1, count: xs.length, shape: [] };
      throw e;
    }
    const index = out.grads.findIndex((g) => g == null);
    if (index >= 0 && !allowNoGradients) {
      missing = { index, count: xs.length, shape: xs[index].shape };
    }
    return out;
  };
  try {
    return { ok: true, result: await fn(), missing };
  } catch (error) {
    return { ok: false, error, missing };
  } finally {
    engine.gradients = original;
  }
}

const ORDINALS = ["first", "second", "third", "fourth", "fifth"];

function describeMissing(m: MissingGradient | null): string {
  if (!m) return "the input";
  if (m.index < 0) {
    return m.count === 1 ? "the input" : `any of the ${m.count} inputs`;
  }
  const shape = `(shape [${m.shape.join(", ")}])`;
  if (m.count === 1) return `the input ${shape}`;
  const nth = ORDINALS[m.index] ?? `#${m.index + 1}`;
  return `the ${nth} of the ${m.count} inputs ${shape}`;
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
  let outcome;
  try {
    outcome = await watchingGradients(async () => await tests());
  } finally {
    tf.engine().endScope();
  }
  if (!outcome.ok) {
    throw explain(id, outcome.error, outcome.missing);
  }
  console.log(`✅ Exercise ${id}: correct`);
}

function explain(
  id: string,
  e: unknown,
  missing: MissingGradient | null,
): ExerciseError {
  const message = e instanceof Error ? e.message : String(e);
  if (/not implemented/i.test(message)) {
    return new ExerciseError(
      `❌ Exercise ${id}: not implemented yet (fill in the cell above)`,
    );
  }
  if (e instanceof ExerciseError) {
    return new ExerciseError(`❌ Exercise ${id}: ${message}`);
  }
  if (/Cannot compute gradient of y=f\(x\) with respect to x/.test(message)) {
    return new ExerciseError(
      `❌ Exercise ${id}: no gradient reaches ${describeMissing(missing)}. ` +
        "The value may be right, but the result is not computed from that " +
        "input by operations tfjs can differentiate: a copy of another tensor " +
        "(e.g. q.clone()), a constant, or numbers read out with dataSync() and " +
        "put back carry no gradient to it.",
      studentFrames(e),
    );
  }
  if (e instanceof ReferenceError) {
    return new ExerciseError(
      `❌ Exercise ${id}: ${message}: run the first cell (the imports) first, ` +
        "then the cells above this one (after a kernel restart nothing is defined yet)",
      studentFrames(e),
    );
  }
  const name = e instanceof Error ? e.name : "Error";
  return new ExerciseError(
    `❌ Exercise ${id}: your code threw ${name}: ${message}`,
    studentFrames(e),
  );
}
