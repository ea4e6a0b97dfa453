/**
 * The patched tfjs-layers Dense (layers.ts): the same bits as tfjs's own
 * `Dense.call` for values, gradients (of any subset of inputs and
 * weights) and gradients of gradients, on both matMul paths; only the
 * products asked for run; the cases it does not take run tfjs's code; the
 * switch works and checks its argument; nothing leaks.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend.ts";
import { ArgumentError } from "../errors.ts";
import { fastLayersInUse, useFastLayers } from "../layers.ts";
import { randomNormal } from "./seeded.ts";
import { kernelCounts } from "./bits.ts";
import { convPathTest, matMulPathTest } from "./matmul_paths.ts";
import {
  assert,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "../../../tests/assert.ts";

await initBackend({ quiet: true });

/** The bits of a float32 tensor. */
function bits(t: tf.Tensor): number[] {
  return Array.from(new Uint32Array(Float32Array.from(t.dataSync()).buffer));
}

/** `fn` with the patch on (`fast`) or with tfjs's own Dense code. */
function withLayers<T>(fast: boolean, fn: () => T): T {
  useFastLayers(fast);
  try {
    return fn();
  } finally {
    useFastLayers(true);
  }
}

/** A 5-8-3 MLP of Dense layers (no activation) and a separate tanh. */
function model(seed: number): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.dense({
        units: 8,
        inputShape: [5],
        kernelInitializer: tf.initializers.glorotUniform({ seed }),
        biasInitializer: tf.initializers.randomNormal({ seed: seed + 1 }),
      }),
      tf.layers.activation({ activation: "tanh" }),
      tf.layers.dense({
        units: 3,
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2 }),
        biasInitializer: tf.initializers.randomNormal({ seed: seed + 3 }),
      }),
    ],
  });
}

/** The weights after `steps` Adam steps of a regression, as bits. */
function trained(fast: boolean, steps: number): number[][] {
  return withLayers(fast, () => {
    const m = model(7);
    const x = randomNormal([16, 5], { seed: 2 });
    const y = randomNormal([16, 3], { seed: 3 });
    const opt = tf.train.adam(0.05);
    for (let i = 0; i < steps; i++) {
      tf.tidy(() => {
        opt.minimize(
          () => tf.losses.meanSquaredError(y, m.apply(x) as tf.Tensor),
          false,
          m.trainableWeights.map((w) => w.read() as tf.Variable),
        );
      });
    }
    const out = m.getWeights().map(bits);
    m.dispose();
    opt.dispose();
    tf.dispose([x, y]);
    return out;
  });
}

matMulPathTest("layers: training a Dense MLP gives tfjs's bits", () => {
  assertEquals(trained(true, 10), trained(false, 10));
});

/** Gradients of a loss with respect to the input and each weight, alone and together. */
function gradients(fast: boolean): number[][] {
  return withLayers(fast, () => {
    const m = model(11);
    const x = randomNormal([9, 5], { seed: 4 });
    const ws = m.trainableWeights.map((w) => w.read() as tf.Variable);
    const loss = (xIn: tf.Tensor) =>
      tf.sum(tf.square(m.apply(xIn) as tf.Tensor));
    const out: number[][] = [];
    tf.tidy(() => {
      out.push(bits(m.predict(x) as tf.Tensor));
      out.push(bits(tf.grad(loss)(x)));
      for (const w of ws) {
        const { grads } = tf.variableGrads(() => loss(x) as tf.Scalar, [w]);
        out.push(bits(grads[w.name]));
      }
      const all = tf.variableGrads(() => loss(x) as tf.Scalar);
      for (const w of ws) out.push(bits(all.grads[w.name]));
    });
    m.dispose();
    x.dispose();
    return out;
  });
}

matMulPathTest("layers: values and gradients are tfjs's bits", () => {
  assertEquals(gradients(true), gradients(false));
});

/** The gradient of ||dL/dx||^2 (an R1-style penalty) with respect to the weights. */
function secondOrder(fast: boolean): number[][] {
  return withLayers(fast, () => {
    const m = model(13);
    const x = randomNormal([6, 5], { seed: 5 });
    const out: number[][] = [];
    tf.tidy(() => {
      const penalty = () => {
        const dx = tf.grad((xIn: tf.Tensor) =>
          tf.sum(m.apply(xIn) as tf.Tensor)
        )(x);
        return tf.sum(tf.square(dx)) as tf.Scalar;
      };
      const { value, grads } = tf.variableGrads(penalty);
      out.push(bits(value));
      for (const w of m.trainableWeights) {
        const g = grads[(w.read() as tf.Variable).name];
        out.push(g ? bits(g) : []);
      }
    });
    m.dispose();
    x.dispose();
    return out;
  });
}

matMulPathTest("layers: gradients of gradients are tfjs's bits", () => {
  const fast = secondOrder(true);
  assertEquals(fast, secondOrder(false));
  // [value, W1, b1, W2, b2]: the penalty reaches both kernels. tfjs
  // gives the biases none (b1 acts only through tanh's saved output,
  // which tfjs does not differentiate again), with or without the patch.
  for (const i of [1, 3]) assert(fast[i].some((b) => b !== 0), `weight ${i}`);
  assertEquals([fast[2], fast[4]], [[], []]);
});

Deno.test("layers: only the products asked for run", async () => {
  const m = model(17);
  const x = randomNormal([4, 5], { seed: 6 });
  // The last layer's weights only: dW = h^T dy and db; neither dL/dh nor
  // anything of the first layer is needed.
  const last = m.layers[2].trainableWeights.map((w) => w.read() as tf.Variable);
  const step = () =>
    tf.tidy(() => {
      tf.variableGrads(
        () => tf.sum(tf.square(m.apply(x) as tf.Tensor)) as tf.Scalar,
        last,
      );
    });
  const fast = await kernelCounts(step);
  const tfjs = await withLayers(false, () => kernelCounts(step));
  assertEquals(fast["ProjectLayersDense"], 2);
  assertEquals(fast["_FusedMatMul"], undefined);
  assertEquals(fast["BatchMatMul"], 1);
  // tfjs's customGrad computes dL/dh too.
  assertEquals(tfjs["_FusedMatMul"], 2);
  assertEquals(tfjs["BatchMatMul"], 2);
  m.dispose();
  x.dispose();
});

Deno.test("layers: other Dense layers run tfjs's own code", async () => {
  const cases: [string, tf.layers.Layer, number[]][] = [
    ["an activation", tf.layers.dense({ units: 3, activation: "relu" }), [
      4,
      5,
    ]],
    ["no bias", tf.layers.dense({ units: 3, useBias: false }), [4, 5]],
    ["rank 3", tf.layers.dense({ units: 3 }), [2, 4, 5]],
  ];
  for (const [what, layer, shape] of cases) {
    const x = randomNormal(shape, { seed: 8 });
    const run = () =>
      tf.tidy(() => {
        const y = layer.apply(x) as tf.Tensor;
        const g = tf.grad((xIn: tf.Tensor) =>
          tf.sum(layer.apply(xIn) as tf.Tensor)
        )(x);
        return [bits(y), bits(g)];
      });
    const counts = await kernelCounts(run);
    assertEquals(counts["ProjectLayersDense"], undefined, what);
    assertEquals(run(), withLayers(false, run), what);
    layer.dispose();
    x.dispose();
  }
});

Deno.test("layers: on cpu, tfjs's own code with the patch on", async () => {
  await tf.setBackend("cpu");
  try {
    const m = model(19);
    const x = randomNormal([4, 5], { seed: 9 });
    const counts = await kernelCounts(() =>
      tf.tidy(() => {
        tf.grad((xIn: tf.Tensor) => tf.sum(m.apply(xIn) as tf.Tensor))(x);
      })
    );
    assertEquals(counts["ProjectLayersDense"], undefined);
    assert((counts["_FusedMatMul"] ?? 0) > 0);
    m.dispose();
    x.dispose();
  } finally {
    await tf.setBackend("wasm");
  }
});

Deno.test("layers: useFastLayers switches and checks its argument", () => {
  assert(fastLayersInUse(), "initBackend turns it on");
  useFastLayers(false);
  assert(!fastLayersInUse());
  useFastLayers(true);
  assert(fastLayersInUse());
  assertThrows(
    () => useFastLayers("yes" as unknown as boolean),
    ArgumentError,
    "useFastLayers: on must be true or false",
  );
  assert(fastLayersInUse());
});

Deno.test("layers: a training step leaves no tensors behind", async () => {
  const m = model(23);
  const x = randomNormal([8, 5], { seed: 10 });
  const opt = tf.train.sgd(0.1);
  const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
  const step = () =>
    tf.tidy(() => {
      opt.minimize(
        () => tf.sum(tf.square(m.apply(x) as tf.Tensor)) as tf.Scalar,
        false,
        vars,
      );
    });
  step();
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 3; i++) step();
  });
  m.dispose();
  x.dispose();
  opt.dispose();
});

/** A conv encoder: 4x4/2 "same" with bias, 3x3 "valid", both without activation. */
function convModel(seed: number): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        filters: 4,
        kernelSize: 4,
        strides: 2,
        padding: "same",
        inputShape: [8, 8, 1],
        kernelInitializer: tf.initializers.glorotUniform({ seed }),
        biasInitializer: tf.initializers.randomNormal({ seed: seed + 1 }),
      }),
      tf.layers.leakyReLU({ alpha: 0.2 }),
      tf.layers.conv2d({
        filters: 3,
        kernelSize: 3,
        padding: "valid",
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2 }),
        biasInitializer: tf.initializers.randomNormal({ seed: seed + 3 }),
      }),
    ],
  });
}

/** Values, the input gradient and the weights' gradients of a conv model. */
function convGradients(fast: boolean): number[][] {
  return withLayers(fast, () => {
    const m = convModel(29);
    const x = randomNormal([3, 8, 8, 1], { seed: 11 });
    const loss = (xIn: tf.Tensor) =>
      tf.sum(tf.square(m.apply(xIn) as tf.Tensor)) as tf.Scalar;
    const out: number[][] = [];
    tf.tidy(() => {
      out.push(bits(m.predict(x) as tf.Tensor));
      out.push(bits(tf.grad(loss)(x)));
      const { grads } = tf.variableGrads(() => loss(x));
      for (const w of m.trainableWeights) {
        out.push(bits(grads[(w.read() as tf.Variable).name]));
      }
    });
    m.dispose();
    x.dispose();
    return out;
  });
}

convPathTest("layers: Conv2D values and gradients are tfjs's bits", () => {
  assertEquals(convGradients(true), convGradients(false));
});

Deno.test("layers: Conv2D skips the input gradient nobody asked for", async () => {
  const m = convModel(31);
  const x = randomNormal([2, 8, 8, 1], { seed: 12 });
  const step = () =>
    tf.tidy(() => {
      tf.variableGrads(
        () => tf.sum(tf.square(m.apply(x) as tf.Tensor)) as tf.Scalar,
      );
    });
  const fast = await kernelCounts(step);
  const tfjs = await withLayers(false, () => kernelCounts(step));
  assertEquals(fast["ProjectLayersConv2D"], 2);
  // dL/dx only between the layers; tfjs also computes it for the images.
  assertEquals(fast["Conv2DBackpropInput"], 1);
  assertEquals(tfjs["Conv2DBackpropInput"], 2);
  assertEquals(fast["Conv2DBackpropFilter"], 2);
  m.dispose();
  x.dispose();
});

Deno.test("layers: other Conv2D layers run tfjs's own code", async () => {
  const cases: [string, tf.layers.Layer][] = [
    [
      "an activation",
      tf.layers.conv2d({ filters: 2, kernelSize: 3, activation: "relu" }),
    ],
    [
      "no bias",
      tf.layers.conv2d({ filters: 2, kernelSize: 3, useBias: false }),
    ],
    [
      "dilation",
      tf.layers.conv2d({ filters: 2, kernelSize: 3, dilationRate: 2 }),
    ],
  ];
  for (const [what, layer] of cases) {
    const x = randomNormal([2, 9, 9, 3], { seed: 13 });
    const run = () =>
      tf.tidy(() => {
        const y = layer.apply(x) as tf.Tensor;
        return [bits(y)];
      });
    const counts = await kernelCounts(run);
    assertEquals(counts["ProjectLayersConv2D"], undefined, what);
    assertEquals(run(), withLayers(false, run), what);
    layer.dispose();
    x.dispose();
  }
});

/** The weights after model.fit (tfjs-layers' own training loop), as bits. */
async function fitted(fast: boolean): Promise<number[][]> {
  useFastLayers(fast);
  try {
    const m = model(37);
    m.compile({ optimizer: tf.train.adam(0.02), loss: "meanSquaredError" });
    const x = randomNormal([32, 5], { seed: 14 });
    const y = randomNormal([32, 3], { seed: 15 });
    await m.fit(x, y, { epochs: 3, batchSize: 8, shuffle: false, verbose: 0 });
    const out = m.getWeights().map(bits);
    m.dispose();
    tf.dispose([x, y]);
    return out;
  } finally {
    useFastLayers(true);
  }
}

Deno.test("layers: model.fit gives tfjs's bits", async () => {
  const fast = await fitted(true);
  assertEquals(fast, await fitted(false));
  assert(fast.length === 4);
});

Deno.test("layers: a saved and loaded model is the same Dense, with the same outputs", async () => {
  const m = model(41);
  const x = randomNormal([4, 5], { seed: 16 });
  let artifacts: tf.io.ModelArtifacts | null = null;
  await m.save(tf.io.withSaveHandler((a) => {
    artifacts = a;
    return Promise.resolve({
      modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" },
    });
  }));
  const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
  assertEquals(loaded.layers.map((l) => l.getClassName()), [
    "Dense",
    "Activation",
    "Dense",
  ]);
  const counts = await kernelCounts(() =>
    tf.tidy(() => void loaded.predict(x))
  );
  assertEquals(counts["ProjectLayersDense"], 2);
  assertEquals(
    tf.tidy(() => bits(loaded.predict(x) as tf.Tensor)),
    tf.tidy(() => bits(m.predict(x) as tf.Tensor)),
  );
  m.dispose();
  loaded.dispose();
  x.dispose();
});
