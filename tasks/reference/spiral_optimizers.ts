// Dev-only: fit the Chen et al. spiral as notebook 06 does (NeuralODE, every
// window of 10 observations, batches of 20 from batchSampler, trainStep) with
// a given optimizer and report the trajectory MSE.
// usage: deno run -A tasks/reference/spiral_optimizers.ts adam|rmsprop LR STEPS [SEED]
// (notebook 06 uses rmsprop 1e-3 2000 with seed 0: network seed 0, sampler
// seed 1; seed s uses network seed s and sampler seed 1 + s).
import * as tf from "@tensorflow/tfjs";
import {
  batchSampler,
  initBackend,
  NeuralODE,
  odeint,
  trainStep,
} from "../../lib/mod.ts";
import {
  odeintArray,
  trajectoryMSE,
  trajectoryWindows,
} from "../../lib/course/06_neural_ode/mod.ts";
await initBackend({ quiet: true });
const A = tf.tensor2d([[-0.1, 2], [-2, -0.1]]);
const spiralField = (_t: number, y: tf.Tensor) => tf.matMul(tf.pow(y, 3), A);
const nObs = 1000;
const tObs = Array.from({ length: nObs }, (_, i) => (i * 25) / (nObs - 1));
const y0 = tf.tensor2d([[2, 0]]);
const trueStates = tf.tidy(() =>
  odeint(spiralField, y0, tObs, { rtol: 1e-6, atol: 1e-8 }).reshape([nObs, 2])
);
const trueArr = trueStates.arraySync() as number[][];
const [name, lrS, stepsS, seedS] = Deno.args;
const lr = Number(lrS), steps = Number(stepsS), seed = Number(seedS ?? 0);
const model = new NeuralODE({
  sizes: [2, 50, 2],
  features: (y) => tf.pow(y, 3),
  windowTimes: tObs.slice(0, 10),
  seed,
});
const opt = name === "rmsprop" ? tf.train.rmsprop(lr) : tf.train.adam(lr);
const sampler = batchSampler(trajectoryWindows(trueStates, 10), 20, {
  seed: 1 + seed,
});
const t0 = performance.now();
for (let i = 0; i < steps; i++) {
  tf.tidy(() => trainStep(model, opt, sampler.next()));
}
const learned = odeintArray(model.field, y0, tObs, { method: "rk4" });
const mse = trajectoryMSE(learned, trueArr);
console.log(
  `${name} lr ${lr} steps ${steps} seed ${seed}: MSE ${mse.toExponential(3)} (${
    ((performance.now() - t0) / 1000).toFixed(0)
  } s)`,
);
