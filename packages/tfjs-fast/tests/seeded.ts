/**
 * Seeded test data for the package's tests: tfjs's own seeded normal
 * generator, which draws in JavaScript, so a seed gives the same numbers on
 * every backend.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Standard normal numbers of `shape`, the same for the same `seed`. */
export function randomNormal(
  shape: number[],
  { seed }: { seed: number },
): tf.Tensor {
  return tf.randomNormal(shape, 0, 1, "float32", seed);
}
