/**
 * A few seeded training steps of convolutions and dense layers whose
 * products are large enough to be cut over threads; prints the backend
 * line and a hash of the losses and weights. blas_split.test.ts runs it
 * with TFJS_WASM_THREADS=1 and 2 and compares the hashes.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { describeBackend, initBackend } from "../backend.ts";
import { randomNormal } from "./seeded.ts";

await initBackend({ quiet: true });
const x = randomNormal([32, 28, 28, 1], { seed: 1 });
const weights = [
  tf.variable(tf.mul(randomNormal([4, 4, 1, 32], { seed: 2 }), 0.1)),
  tf.variable(tf.mul(randomNormal([5, 5, 32, 32], { seed: 3 }), 0.05)),
  tf.variable(tf.mul(randomNormal([14 * 14 * 32, 256], { seed: 4 }), 0.01)),
  tf.variable(tf.mul(randomNormal([256, 784], { seed: 5 }), 0.05)),
];
const [w1, w2, d1, d2] = weights;
const optimizer = tf.train.adam(1e-3);
let hash = 0x811c9dc5;
const mix = (values: Float32Array) => {
  for (const b of new Uint32Array(values.slice().buffer)) {
    hash = Math.imul(hash ^ b, 16777619) >>> 0;
  }
};
for (let step = 0; step < 3; step++) {
  const loss = optimizer.minimize(() => {
    const h = tf.relu(
      tf.conv2d(x as tf.Tensor4D, w1 as tf.Tensor4D, 2, "same"),
    );
    const h2 = tf.relu(tf.conv2d(h, w2 as tf.Tensor4D, 1, "same"));
    const z = tf.relu(tf.matMul(h2.reshape([32, -1]), d1));
    const y = tf.matMul(z, d2).reshape([32, 28, 28, 1]);
    return tf.mean(tf.square(tf.sub(y, x)));
  }, true)!;
  mix(loss.dataSync() as Float32Array);
  loss.dispose();
}
for (const w of weights) mix(w.dataSync() as Float32Array);
console.log(describeBackend());
console.log(`hash ${hash.toString(16)}`);
