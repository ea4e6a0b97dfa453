import { makeTestDir } from "./temp.ts";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import {
  convDecoder28,
  convEncoder28,
  countParameters,
  loadTensors,
  mlp,
  modelWeights,
  saveTensors,
  setModelWeights,
} from "../lib/nn.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assertAllClose,
  assertEquals,
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

Deno.test("saveTensors/loadTensors round trip, refuse to overwrite, detect truncation", async () => {
  const dir = await makeTestDir();
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
});

Deno.test("a model's weights survive save and load into a fresh model", async () => {
  const dir = await makeTestDir();
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
});

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
