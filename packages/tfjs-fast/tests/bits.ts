/**
 * What the kernel tests compare: a tensor's float32 bits, and the kernels a
 * computation runs.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** The bits of a float32 tensor, NaN as one pattern. */
export function bits(t: tf.Tensor): number[] {
  const v = Float32Array.from(t.dataSync());
  return Array.from(new Uint32Array(v.buffer)).map((b, i) =>
    Number.isNaN(v[i]) ? -1 : b
  );
}

/** The kernels `fn` runs (tf.profile), by name, with their counts. */
export async function kernelCounts(
  fn: () => void,
): Promise<Record<string, number>> {
  const profile = await tf.profile(fn);
  const counts: Record<string, number> = {};
  for (const k of profile.kernels) counts[k.name] = (counts[k.name] ?? 0) + 1;
  return counts;
}
