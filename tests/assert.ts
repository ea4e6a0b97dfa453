/**
 * The one assertion module every test imports. It wraps Deno's built-in
 * `node:assert/strict` (jsr:@std/assert is not reachable on this machine) and
 * adds tensor-aware helpers; switching to `@std/assert` later is a change to
 * this file only.
 *
 * @module
 */
import nodeAssert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";

/** Asserts that `condition` is truthy. */
export function assert(
  condition: unknown,
  message?: string,
): asserts condition {
  nodeAssert.ok(condition, message);
}

/** Deep, strict equality. */
export function assertEquals<T>(
  actual: T,
  expected: T,
  message?: string,
): void {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

/** Deep, strict inequality. */
export function assertNotEquals<T>(
  actual: T,
  expected: T,
  message?: string,
): void {
  nodeAssert.notDeepStrictEqual(actual, expected, message);
}

function checkCaught(
  caught: unknown,
  ErrorClass: abstract new (...args: never[]) => Error,
  includes: string[],
  what: string,
): Error {
  assert(
    caught !== undefined,
    `expected ${ErrorClass.name} to be ${what}, nothing was`,
  );
  assert(
    caught instanceof ErrorClass,
    `expected ${ErrorClass.name}, got ${(caught as Error)?.name}: ${
      (caught as Error)?.message
    }`,
  );
  for (const part of includes) {
    assert(
      (caught as Error).message.includes(part),
      `expected the message to include ${JSON.stringify(part)}, got ${
        JSON.stringify((caught as Error).message)
      }`,
    );
  }
  return caught as Error;
}

/**
 * Asserts that `fn` throws an error of class `ErrorClass` (default Error)
 * whose message includes every string in `includes`.
 */
export function assertThrows(
  fn: () => unknown,
  ErrorClass: abstract new (...args: never[]) => Error = Error,
  ...includes: string[]
): Error {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  return checkCaught(caught, ErrorClass, includes, "thrown");
}

/** Like `assertThrows` for an async function. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  ErrorClass: abstract new (...args: never[]) => Error = Error,
  ...includes: string[]
): Promise<Error> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  return checkCaught(caught, ErrorClass, includes, "rejected");
}

type Numeric =
  | number
  | ArrayLike<number>
  | number[][]
  | number[][][]
  | tf.Tensor;

function flatten(x: Numeric): { values: number[]; shape: number[] } {
  if (x instanceof tf.Tensor) {
    return { values: Array.from(x.dataSync()), shape: x.shape };
  }
  if (typeof x === "number") return { values: [x], shape: [] };
  const shape: number[] = [];
  let probe: unknown = x;
  while (
    probe !== null && typeof probe === "object" && "length" in (probe as object)
  ) {
    shape.push((probe as ArrayLike<unknown>).length);
    probe = (probe as ArrayLike<unknown>)[0];
  }
  const values: number[] = [];
  const walk = (v: unknown) => {
    if (typeof v === "number") values.push(v);
    else for (const e of Array.from(v as ArrayLike<unknown>)) walk(e);
  };
  walk(x);
  return { values, shape };
}

/**
 * Asserts elementwise |actual - expected| <= atol + rtol * |expected| for
 * numbers, arrays, nested arrays or tensors (shapes must agree; a scalar
 * `expected` is broadcast). NaN never matches.
 */
export function assertAllClose(
  actual: Numeric,
  expected: Numeric,
  { rtol = 1e-5, atol = 1e-6, message = "" }: {
    rtol?: number;
    atol?: number;
    message?: string;
  } = {},
): void {
  const a = flatten(actual);
  const e = flatten(expected);
  const broadcast = e.values.length === 1 && a.values.length !== 1;
  if (!broadcast) {
    assertEquals(a.values.length, e.values.length, `${message} size mismatch`);
    if (actual instanceof tf.Tensor && expected instanceof tf.Tensor) {
      assertEquals(a.shape, e.shape, `${message} shape mismatch`);
    }
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < a.values.length; i++) {
    const want = broadcast ? e.values[0] : e.values[i];
    const got = a.values[i];
    const excess = Math.abs(got - want) - (atol + rtol * Math.abs(want));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    const want = broadcast ? e.values[0] : e.values[worst];
    throw new nodeAssert.AssertionError({
      message: `${
        message ? message + ": " : ""
      }values differ at flat index ${worst}: got ${
        a.values[worst]
      }, expected ${want} (rtol ${rtol}, atol ${atol})`,
    });
  }
}

/**
 * Central finite-difference gradient of a scalar function of one tensor,
 * computed in float64 in JavaScript from repeated float32 evaluations.
 */
export function numericGradient(
  f: (x: tf.Tensor) => tf.Scalar,
  x: tf.Tensor,
  eps = 1e-2,
): Float64Array {
  const base = Float64Array.from(x.dataSync());
  const grad = new Float64Array(base.length);
  for (let i = 0; i < base.length; i++) {
    const at = (delta: number) =>
      tf.tidy(() => {
        const shifted = base.slice();
        shifted[i] += delta;
        return f(tf.tensor(Float32Array.from(shifted), x.shape)).dataSync()[0];
      });
    grad[i] = (at(eps) - at(-eps)) / (2 * eps);
  }
  return grad;
}

/**
 * Checks tfjs autodiff of a scalar function against central finite
 * differences at `x`. Use small smooth problems: float32 limits the accuracy.
 */
export function assertGradientMatches(
  f: (x: tf.Tensor) => tf.Scalar,
  x: tf.Tensor,
  { eps = 1e-2, rtol = 1e-2, atol = 1e-3 }: {
    eps?: number;
    rtol?: number;
    atol?: number;
  } = {},
): void {
  const analytic = tf.tidy(() => tf.grad(f)(x));
  try {
    assertAllClose(analytic, Array.from(numericGradient(f, x, eps)), {
      rtol,
      atol,
      message: "autodiff vs finite differences",
    });
  } finally {
    analytic.dispose();
  }
}

/**
 * Runs `fn` and asserts that the number of live tensors afterwards equals the
 * number before, plus `allowed` (tensors `fn` is meant to return).
 */
export async function assertNoTensorLeak<T>(
  fn: () => T | Promise<T>,
  { allowed = 0 }: { allowed?: number } = {},
): Promise<T> {
  const before = tf.memory().numTensors;
  const result = await fn();
  const after = tf.memory().numTensors;
  assertEquals(
    after - before,
    allowed,
    `tensor leak: ${before} live before, ${after} after`,
  );
  return result;
}
