// Dev-only: fit the Chen et al. spiral with a given optimizer and report the trajectory MSE.
// usage: deno run -A tasks/reference/spiral_optimizers.ts adam|rmsprop LR STEPS [SEED]
// (notebook 06 uses rmsprop 1e-3 2000; adam 1e-2 plateaus early).
import * as tf from "@tensorflow/tfjs";
import {
  initBackend,
  mlp,
  neuralVectorField,
  odeint,
  odeintArray,
  randomSegments,
  rngFrom,
  trajectoryMSE,
} from "../../lib/mod.ts";
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
const net = mlp([2, 50, 2], { activation: "tanh", seed });
const f = neuralVectorField(net, { features: (y) => tf.pow(y, 3) });
const opt = name === "rmsprop" ? tf.train.rmsprop(lr) : tf.train.adam(lr);
const segRng = rngFrom(1 + seed);
const segTimes = tObs.slice(0, 10);
const t0 = performance.now();
for (let i = 0; i < steps; i++) {
  tf.tidy(() => {
    const target = randomSegments(trueStates, {
      length: 10,
      batch: 20,
      seed: segRng,
    });
    opt.minimize(() =>
      tf.mean(
        tf.abs(
          tf.sub(
            odeint(f, tf.gather(target, 0), segTimes, { method: "rk4" }),
            target,
          ),
        ),
      ) as tf.Scalar
    );
  });
}
const mse = trajectoryMSE(odeintArray(f, y0, tObs, { method: "rk4" }), trueArr);
console.log(
  `${name} lr ${lr} steps ${steps} seed ${seed}: MSE ${mse.toExponential(3)} (${
    ((performance.now() - t0) / 1000).toFixed(0)
  } s)`,
);
