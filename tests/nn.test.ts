import { withTestDir } from "./temp.ts";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import type { Activation } from "../lib/nn.ts";
import {
  convDecoder28,
  convEncoder28,
  countParameters,
  fastMlpApply,
  loadTensors,
  mlp,
  modelWeights,
  saveTensors,
  setModelWeights,
  trainableVariables,
  upsample7to28Layers,
} from "../lib/nn.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertNotEquals,
  assertRejects,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

Deno.test("mlp has the requested shapes, parameter count and seeded weights", () => {
  const a = mlp([3, 5, 2], { seed: 1 });
  const b = mlp([3, 5, 2], { seed: 1 });
  const c = mlp([3, 5, 2], { seed: 2 });
  assertEquals(countParameters(a), 3 * 5 + 5 + 5 * 2 + 2);
  const x = tf.ones([4, 3]);
  const ya = a.predict(x) as tf.Tensor;
  assertEquals(ya.shape, [4, 2]);
  assertAllClose(
    a.weights[0].read(),
    b.weights[0].read(),
  );
  assertNotEquals(
    Array.from(a.weights[0].read().dataSync()),
    Array.from(c.weights[0].read().dataSync()),
  );
  tf.dispose([x, ya]);
  [a, b, c].forEach((m) => m.dispose());
});

Deno.test("mlp rejects bad sizes with a clear error", () => {
  assertThrows(() => mlp([3]), ArgumentError, "sizes");
  assertThrows(() => mlp([3, 0, 2]), ArgumentError, "sizes[1]");
});

Deno.test("saveTensors/loadTensors round trip, refuse to overwrite, detect truncation", () =>
  withTestDir(async (dir) => {
    const t = {
      codebook: tf.tensor2d([[1, 2], [3, 4]]),
      step: tf.scalar(7, "int32"),
    };
    await saveTensors(`${dir}/m`, t, { config: { k: 2 } });
    const { tensors, config } = await loadTensors(`${dir}/m`);
    assertEquals(config, { k: 2 });
    assertAllClose(tensors.codebook, t.codebook);
    assertEquals(tensors.step.dtype, "int32");
    await assertRejects(
      () => saveTensors(`${dir}/m`, t),
      ArgumentError,
      "already exists",
    );
    await saveTensors(`${dir}/m`, t, { overwrite: true });
    await Deno.writeFile(`${dir}/m.bin`, new Uint8Array(3));
    await assertRejects(
      () => loadTensors(`${dir}/m`),
      ArgumentError,
      "truncated",
    );
    tf.dispose([...Object.values(t), ...Object.values(tensors)]);
  }));

Deno.test("a model's weights survive save and load into a fresh model", () =>
  withTestDir(async (dir) => {
    const a = mlp([2, 4, 1], { seed: 3 });
    const b = mlp([2, 4, 1], { seed: 9 });
    await saveTensors(`${dir}/w`, modelWeights(a));
    const { tensors } = await loadTensors(`${dir}/w`);
    setModelWeights(b, tensors);
    const x = tf.tensor2d([[0.5, -1]]);
    const ya = a.predict(x) as tf.Tensor;
    const yb = b.predict(x) as tf.Tensor;
    assertAllClose(yb, ya);
    assertThrows(
      () => setModelWeights(mlp([2, 3, 1], { name: "other" }), tensors),
      ArgumentError,
    );
    tf.dispose([x, ya, yb, ...Object.values(tensors)]);
    a.dispose();
    b.dispose();
  }));

Deno.test("conv encoder/decoder map 28x28x1 <-> 7x7xd and train on wasm", () => {
  const enc = convEncoder28({ outChannels: 8, seed: 1 });
  const dec = convDecoder28({ inChannels: 8, seed: 1 });
  const x = tf.randomUniform([4, 28, 28, 1], 0, 1, "float32", 1);
  const opt = tf.train.adam(1e-3);
  const loss = () =>
    tf.losses.meanSquaredError(
      x,
      dec.apply(enc.apply(x)) as tf.Tensor,
    ) as tf.Scalar;
  const h = enc.predict(x) as tf.Tensor;
  assertEquals(h.shape, [4, 7, 7, 8]);
  const first = tf.tidy(() => loss().dataSync()[0]);
  for (let i = 0; i < 20; i++) tf.tidy(() => void opt.minimize(loss));
  const last = tf.tidy(() => loss().dataSync()[0]);
  assertEquals(last < first, true, `loss should fall: ${first} -> ${last}`);
  assertThrows(
    () => convEncoder28({ outChannels: 0 }),
    ArgumentError,
    "outChannels",
  );
  tf.dispose([x, h]);
  opt.dispose();
  enc.dispose();
  dec.dispose();
});

// ---------------------------------------------------------------------------
// fastMlpApply

const FAST_CASES: { activation: Activation; output: Activation }[] = [
  { activation: "tanh", output: "linear" },
  { activation: "relu", output: "sigmoid" },
  { activation: "leakyRelu", output: "tanh" },
  { activation: "sigmoid", output: "relu" },
  { activation: "linear", output: "leakyRelu" },
  { activation: "elu", output: "elu" },
];

for (const { activation, output } of FAST_CASES) {
  Deno.test(`fastMlpApply matches model.apply and its gradients (${activation} -> ${output})`, async () => {
    const net = mlp([3, 6, 5, 2], {
      activation,
      outputActivation: output,
      seed: 4,
    });
    const fast = fastMlpApply(net);
    assert(fast !== null, "an mlp() model must be accepted");
    const vars = trainableVariables(net);
    for (const batch of [1, 7]) {
      await assertNoTensorLeak(() =>
        tf.tidy(() => {
          const x = tf.randomNormal([batch, 3], 0, 1.5, "float32", batch);
          // Weights on both sides of 0 for the relu-like activations.
          const w = tf.randomNormal([batch, 2], 0, 1, "float32", 7);
          assertAllClose(fast(x), net.apply(x) as tf.Tensor, {
            rtol: 0,
            atol: 1e-6,
          });
          const loss = (apply: (x: tf.Tensor) => tf.Tensor) =>
            tf.grads((x: tf.Tensor, ...ws: tf.Tensor[]) => {
              void ws;
              return tf.sum(tf.mul(apply(x), w)) as tf.Scalar;
            })([x, ...vars]);
          const want = loss((x) => net.apply(x) as tf.Tensor);
          const got = loss(fast);
          got.forEach((g, i) =>
            assertAllClose(g, want[i], {
              rtol: 1e-5,
              atol: 1e-5,
              message: `gradient ${i} (batch ${batch})`,
            })
          );
        })
      );
    }
    net.dispose();
  });
}

Deno.test("fastMlpApply: weight gradients reach the model's own variables", async () => {
  const net = mlp([2, 8, 1], { activation: "tanh", seed: 3 });
  const fast = fastMlpApply(net)!;
  const x = tf.tensor2d([[0.5, -1], [1, 2], [-0.3, 0.1]]);
  const y = tf.tensor2d([[1], [-1], [0.5]]);
  const before = net.getWeights().map((w) => Array.from(w.dataSync()));
  const opt = tf.train.adam(1e-2);
  const loss = () =>
    tf.tidy(() => tf.mean(tf.square(tf.sub(fast(x), y))).dataSync()[0]);
  const first = loss();
  const step = () =>
    tf.tidy(() => {
      opt.minimize(() => tf.mean(tf.square(tf.sub(fast(x), y))) as tf.Scalar);
    });
  step(); // creates Adam's moment variables
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 50; i++) step();
  });
  const after = net.getWeights().map((w) => Array.from(w.dataSync()));
  after.forEach((w, i) => assertNotEquals(w, before[i]));
  assert(loss() < first / 2, `loss ${first} -> ${loss()}`);
  tf.dispose([x, y]);
  opt.dispose();
  net.dispose();
});

Deno.test("fastMlpApply returns null for models it cannot run, falls back for other inputs", async () => {
  const dropout = tf.sequential({
    layers: [
      tf.layers.dense({ units: 3, inputShape: [2] }),
      tf.layers.dropout({ rate: 0.5 }),
    ],
  });
  const ownActivation = tf.sequential({
    layers: [
      tf.layers.dense({ units: 3, inputShape: [2], activation: "relu" }),
    ],
  });
  const noBias = tf.sequential({
    layers: [tf.layers.dense({ units: 3, inputShape: [2], useBias: false })],
  });
  const softmax = tf.sequential({
    layers: [
      tf.layers.dense({ units: 3, inputShape: [2] }),
      tf.layers.activation({ activation: "softmax" }),
    ],
  });
  const input = tf.input({ shape: [2] });
  const functional = tf.model({
    inputs: input,
    outputs: tf.layers.dense({ units: 2 }).apply(input) as tf.SymbolicTensor,
  });
  for (const m of [dropout, ownActivation, noBias, softmax, functional]) {
    assertEquals(fastMlpApply(m), null, m.name);
    m.dispose();
  }
  assertEquals(fastMlpApply(convEncoder28({ outChannels: 2 })), null);
  // A rank-3 input goes through model.apply (Dense maps the last axis).
  const net = mlp([2, 4, 3], { seed: 1 });
  const fast = fastMlpApply(net)!;
  // A [batch, features] input takes the fused path: no reshapes.
  const x2 = tf.ones([4, 2]);
  const profile = await tf.profile(() => fast(x2));
  const names = profile.kernels.map((k) => k.name);
  assert(!names.includes("Reshape"), names.join());
  // One product per layer: the package's dense kernel on wasm (product,
  // bias and activation in one), BatchMatMul elsewhere.
  const products = tf.getBackend() === "wasm" ? "ProjectDense" : "BatchMatMul";
  assertEquals(names.filter((k) => k === products).length, 2, names.join());
  tf.dispose([x2, profile.result as tf.Tensor]);
  tf.tidy(() => {
    const x = tf.randomNormal([2, 5, 2], 0, 1, "float32", 1);
    assertAllClose(fast(x), net.apply(x) as tf.Tensor, { rtol: 0, atol: 0 });
  });
  net.dispose();
});

Deno.test("fastMlpApply inside a nested gradient behaves as model.apply (no silent second order)", () => {
  const net = mlp([2, 5, 1], { activation: "tanh", seed: 2 });
  const fast = fastMlpApply(net)!;
  tf.tidy(() => {
    const x = tf.tensor2d([[0.3, -0.7], [1.1, 0.4]]);
    const second = (apply: (x: tf.Tensor) => tf.Tensor) => () =>
      tf.grad((x: tf.Tensor) =>
        tf.sum(tf.square(tf.grad((z: tf.Tensor) => tf.sum(apply(z)))(x)))
      )(x);
    // tf.layers' fused Dense has no second derivative; neither does this.
    assertThrows(second((z) => net.apply(z) as tf.Tensor), Error, "gradient");
    assertThrows(second(fast), Error, "gradient");
  });
  net.dispose();
});

Deno.test("upsample7to28Layers: 7x7xc -> 28x28x1 with the given names and activation", () => {
  const init = (i: number) => tf.initializers.glorotUniform({ seed: i });
  const layers = upsample7to28Layers({
    hiddenChannels: 5,
    outputActivation: "sigmoid",
    init,
    name: "probe",
  });
  assertEquals(layers.map((l) => l.name), ["probe_up1", "probe_up2"]);
  const model = tf.sequential({
    layers: [tf.layers.inputLayer({ inputShape: [7, 7, 3] }), ...layers],
  });
  const y = model.predict(tf.ones([2, 7, 7, 3])) as tf.Tensor;
  assertEquals(y.shape, [2, 28, 28, 1]);
  const values = y.dataSync();
  assert(values.every((v) => v > 0 && v < 1), "sigmoid output in (0, 1)");
  tf.dispose(y);
  model.dispose();
  assertThrows(
    () =>
      upsample7to28Layers({
        hiddenChannels: 0,
        outputActivation: "linear",
        init,
        name: "bad",
      }),
    ArgumentError,
    "hiddenChannels",
  );
});
