// Dev-only: the spread over seeds of notebook 06's spiral fit. Trains the
// neural ODE exactly as the notebook does (NeuralODE on every window of 10
// observations, batches of 20 from batchSampler, trainStep) for each seed in
// turn, in one process (the machine may be shared: one run at a time), and
// prints each seed's trajectory MSE over [0, 25] and the min, median, max.
// Seed s uses network seed s and sampler seed 1 + s (the notebook: s = 0).
//
// usage: deno run -A tasks/reference/spiral_seeds.ts [--recipe=after|before]
//          [--optimizer=rmsprop|adam] [--lr=1e-3] [--steps=2000]
//          [--seeds=0-7]
//   after  (default, the notebook): features y^3 / 8, RMSprop with the
//          learning rate decayed from lr to lr / 100 by cosineDecay
//   before (the literate redesign's): features y^3, constant learning rate
// TFJS_BLAS=0 runs the plain wasm matMul path instead of OpenBLAS.
import * as tf from "@tensorflow/tfjs";
import {
  adam,
  batchSampler,
  describeBackend,
  initBackend,
  NeuralODE,
  odeint,
  trainStep,
} from "../../lib/mod.ts";
import {
  cosineDecay,
  odeintArray,
  setLearningRate,
  trajectoryMSE,
  trajectoryWindows,
} from "../../lib/course/06_neural_ode/mod.ts";

const flags = Object.fromEntries(
  Deno.args.map((a) => a.replace(/^--/, "").split("=") as [string, string]),
);
const recipe = flags.recipe ?? "after";
const optimizerName = flags.optimizer ?? "rmsprop";
const lr = Number(flags.lr ?? 1e-3);
const steps = Number(flags.steps ?? 2000);
const [first, last] = (flags.seeds ?? "0-7").split("-").map(Number);
if (!["after", "before"].includes(recipe)) {
  throw new Error("--recipe: after or before");
}

await initBackend({ quiet: true });
console.log(
  `${describeBackend()}; recipe ${recipe}, ${optimizerName} lr ${lr}, ${steps} steps`,
);
const A = tf.tensor2d([[-0.1, 2], [-2, -0.1]]);
const spiralField = (_t: number, y: tf.Tensor) => tf.matMul(tf.pow(y, 3), A);
const nObs = 1000;
const tObs = Array.from({ length: nObs }, (_, i) => (i * 25) / (nObs - 1));
const y0 = tf.tensor2d([[2, 0]]);
const trueStates = tf.tidy(() =>
  odeint(spiralField, y0, tObs, { rtol: 1e-6, atol: 1e-8 }).reshape([nObs, 2])
);
const trueArr = trueStates.arraySync() as number[][];
const windows = trajectoryWindows(trueStates, 10);
const features = recipe === "after"
  ? (y: tf.Tensor) => tf.mul(tf.pow(y, 3), 1 / 8)
  : (y: tf.Tensor) => tf.pow(y, 3);
const rate = recipe === "after"
  ? cosineDecay({ from: lr, to: lr / 100, steps })
  : () => lr;

const results: number[] = [];
for (let seed = first; seed <= (last ?? first); seed++) {
  const model = new NeuralODE({
    sizes: [2, 50, 2],
    features,
    windowTimes: tObs.slice(0, 10),
    seed,
  });
  const optimizer = optimizerName === "adam" ? adam(lr) : tf.train.rmsprop(lr);
  const sampler = batchSampler(windows, 20, { seed: 1 + seed });
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    setLearningRate(optimizer, rate(i));
    tf.tidy(() => trainStep(model, optimizer, sampler.next()));
  }
  const learned = odeintArray(model.field, y0, tObs, { method: "rk4" });
  const mse = trajectoryMSE(learned, trueArr);
  results.push(mse);
  console.log(
    `seed ${seed}: trajectory MSE ${mse.toFixed(4)} (${
      ((performance.now() - t0) / 1000).toFixed(0)
    } s)`,
  );
  model.dispose();
  optimizer.dispose();
}
const sorted = [...results].sort((a, b) => a - b);
const mid = sorted.length / 2;
const median = sorted.length % 2
  ? sorted[Math.floor(mid)]
  : (sorted[mid - 1] + sorted[mid]) / 2;
console.log(
  `seeds ${first}-${last ?? first}: min ${sorted[0].toFixed(4)}, median ${
    median.toFixed(4)
  }, max ${sorted[sorted.length - 1].toFixed(4)}`,
);
