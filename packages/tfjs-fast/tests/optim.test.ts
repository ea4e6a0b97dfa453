import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend.ts";
import {
  adam,
  fusedAdamInUse,
  FusedAdamOptimizer,
  useFusedAdam,
} from "../optim.ts";
import { ArgumentError } from "../errors.ts";
import { randomNormal } from "./seeded.ts";
import {
  assert,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "../../../tests/assert.ts";

await initBackend({ quiet: true });

/** Trains a tiny regression for `steps` with `opt`; returns the weights. */
function train(
  opt: tf.Optimizer,
  steps: number,
  tag: string,
): Float32Array[] {
  const w = tf.variable(randomNormal([5, 3], { seed: 1 }), true, `w_${tag}`);
  const b = tf.variable(tf.zeros([3]), true, `b_${tag}`);
  const x = randomNormal([16, 5], { seed: 2 });
  const y = randomNormal([16, 3], { seed: 3 });
  for (let i = 0; i < steps; i++) {
    tf.tidy(() => {
      opt.minimize(
        () => tf.losses.meanSquaredError(y, tf.add(tf.matMul(x, w), b)),
        false,
        [w, b],
      );
    });
  }
  const out = [w.dataSync().slice(), b.dataSync().slice()] as Float32Array[];
  tf.dispose([w, b, x, y]);
  opt.dispose();
  return out;
}

/** `fn` with tfjs's own Adam code in tf.AdamOptimizer (the patch off). */
function withTfjsAdam<T>(fn: () => T): T {
  useFusedAdam(false);
  try {
    return fn();
  } finally {
    useFusedAdam(true);
  }
}

/** The kernels one training step of `opt` runs (names). */
async function stepKernels(opt: tf.Optimizer): Promise<string[]> {
  const w = tf.variable(tf.ones([4]), true, `w_kernels_${Math.random()}`);
  const profile = await tf.profile(() => {
    opt.minimize(() => tf.sum(tf.square(w)), false, [w]);
  });
  w.dispose();
  return profile.kernels.map((k) => k.name);
}

for (const [lr, beta1, beta2] of [[1e-2, 0.9, 0.999], [2e-4, 0.5, 0.999]]) {
  Deno.test(`adam and the patched tf.train.adam give the bits of tfjs's own Adam (lr ${lr}, beta1 ${beta1})`, () => {
    const ours = train(adam(lr, beta1, beta2), 50, `ours${lr}`);
    const patched = train(tf.train.adam(lr, beta1, beta2), 50, `patched${lr}`);
    const theirs = withTfjsAdam(() =>
      train(tf.train.adam(lr, beta1, beta2), 50, `tfjs${lr}`)
    );
    for (let i = 0; i < ours.length; i++) {
      assertEquals(Array.from(ours[i]), Array.from(theirs[i]), `weight ${i}`);
      assertEquals(
        Array.from(patched[i]),
        Array.from(theirs[i]),
        `weight ${i}`,
      );
    }
  });
}

Deno.test("after initBackend tf.train.adam runs the fused kernel; useFusedAdam(false) restores tfjs's", async () => {
  assert(fusedAdamInUse());
  const fused = await stepKernels(tf.train.adam(0.1));
  assert(fused.includes("ProjectFusedAdam"), fused.join(" "));
  assertEquals(fused.filter((k) => k === "Sqrt").length, 0);
  const own = withTfjsAdam(() => fusedAdamInUse());
  assertEquals(own, false);
  useFusedAdam(false);
  try {
    const tfjs = await stepKernels(tf.train.adam(0.1));
    assert(!tfjs.includes("ProjectFusedAdam"), tfjs.join(" "));
    assert(tfjs.includes("Sqrt"), tfjs.join(" "));
    // adam() fuses even with the patch off.
    assert((await stepKernels(adam(0.1))).includes("ProjectFusedAdam"));
  } finally {
    useFusedAdam(true);
  }
  // A later initBackend keeps the patch (and does not apply it twice).
  await initBackend({ quiet: true });
  assert(fusedAdamInUse());
});

Deno.test("a tfjs-layers model compiled with optimizer 'adam' trains to tfjs's bits, fused", async () => {
  const fit = async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({
          inputShape: [5],
          units: 8,
          activation: "relu",
          kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
        }),
        tf.layers.dense({
          units: 2,
          kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
        }),
      ],
    });
    model.compile({ optimizer: "adam", loss: "meanSquaredError" });
    const x = randomNormal([32, 5], { seed: 3 });
    const y = randomNormal([32, 2], { seed: 4 });
    await model.fit(x, y, {
      epochs: 3,
      batchSize: 8,
      shuffle: false,
      verbose: 0,
    });
    const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
    (model.optimizer as tf.Optimizer).dispose();
    model.dispose();
    tf.dispose([x, y]);
    return weights;
  };
  const patched = await fit();
  useFusedAdam(false);
  let theirs: number[][];
  try {
    theirs = await fit();
  } finally {
    useFusedAdam(true);
  }
  assertEquals(patched, theirs);
});

Deno.test("adam on cpu takes tfjs's path and agrees with wasm", async () => {
  const wasm = train(adam(1e-2), 20, "wasm");
  await tf.setBackend("cpu");
  try {
    const cpu = train(adam(1e-2), 20, "cpu");
    for (let i = 0; i < cpu.length; i++) {
      for (let j = 0; j < cpu[i].length; j++) {
        assert(Math.abs(cpu[i][j] - wasm[i][j]) < 1e-5, `weight ${i}[${j}]`);
      }
    }
  } finally {
    await tf.setBackend("wasm");
  }
});

Deno.test("adam's state saves and restores like tfjs's Adam", async () => {
  const w = tf.variable(tf.ones([4]), true, "w_state");
  const opt = adam(0.1);
  const step = () =>
    tf.tidy(() => {
      opt.minimize(() => tf.sum(tf.square(w)), false, [w]);
    });
  step();
  step();
  const weights = await opt.getWeights();
  assertEquals(weights.map((n) => n.name), ["iter", "w_state/m", "w_state/v"]);
  const copy = adam(0.1);
  await copy.setWeights(weights);
  assertEquals(copy.iterations, 2);
  assertEquals(FusedAdamOptimizer.className, "Adam");
  tf.dispose([w]);
  opt.dispose();
  copy.dispose();
});

Deno.test("adam does not leak tensors over training steps", async () => {
  const w = tf.variable(randomNormal([32, 8], { seed: 4 }), true, "w_leak");
  const opt = adam(1e-3);
  const step = () =>
    tf.tidy(() => {
      opt.minimize(() => tf.sum(tf.square(w)), false, [w]);
    });
  step(); // creates the moments
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 100; i++) step();
  });
  w.dispose();
  opt.dispose();
});

Deno.test("adam rejects bad hyperparameters naming them", () => {
  assertThrows(() => adam(0), ArgumentError, "learningRate");
  assertThrows(() => adam(Number.NaN), ArgumentError, "learningRate");
  assertThrows(() => adam(1e-3, 1), ArgumentError, "beta1", "[0, 1)");
  assertThrows(() => adam(1e-3, 0.9, -0.1), ArgumentError, "beta2");
  assertThrows(() => adam(1e-3, 0.9, 0.999, 0), ArgumentError, "epsilon");
});

Deno.test("adam runs one fused kernel per variable on wasm", async () => {
  const vars = [
    tf.variable(randomNormal([6, 4], { seed: 5 }), true, "w_fused"),
    tf.variable(randomNormal([4], { seed: 6 }), true, "b_fused"),
  ];
  const opt = adam(1e-2);
  const grads = {
    w_fused: tf.onesLike(vars[0]),
    b_fused: tf.onesLike(vars[1]),
  };
  const info = await tf.profile(() => opt.applyGradients(grads));
  const names = info.kernels.map((k) => k.name);
  assertEquals(names.filter((n) => n === "ProjectFusedAdam").length, 2);
  assert(!names.includes("Sqrt"), names.join(","));
  tf.dispose([...vars, ...Object.values(grads)]);
  opt.dispose();
});
