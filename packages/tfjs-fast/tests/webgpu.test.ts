/**
 * initBackend({ backend: "webgpu" }): tfjs-backend-webgpu on the adapter
 * Deno's WebGPU offers. Where there is none, the tests check the error and
 * the training test does not apply; where the only adapter is a software one
 * (Mesa's llvmpipe on the course machine), it runs there, slowly, and the
 * backend line says so. A training step is checked against cpu.
 */
import * as tf from "@tensorflow/tfjs";
import {
  describeBackend,
  initBackend,
  WEBGPU_SYNC_READ_ERROR,
} from "../backend.ts";
import { randomNormal } from "./seeded.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertRejects,
} from "../../../tests/assert.ts";

const gpu = (navigator as { gpu?: GPU }).gpu;
const adapter = gpu ? await gpu.requestAdapter() : null;
const hasAdapter = adapter !== null;
// WebGPU devices hold resources the test sanitizers would count as leaks.
const options = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name:
    "initBackend webgpu without an adapter says why (where one exists, requestAdapter is stubbed to null)",
  ...options,
  fn: async () => {
    if (!hasAdapter) {
      await assertRejects(
        () => initBackend({ backend: "webgpu", quiet: true }),
        Error,
        "initBackend: webgpu:",
      );
      return;
    }
    const proto = Object.getPrototypeOf(gpu) as GPU;
    const original = proto.requestAdapter;
    proto.requestAdapter = () => Promise.resolve(null);
    try {
      await assertRejects(
        () => initBackend({ backend: "webgpu", quiet: true }),
        Error,
        "initBackend: webgpu: navigator.gpu.requestAdapter() found no adapter",
      );
    } finally {
      proto.requestAdapter = original;
    }
    assertEquals(tf.getBackend() === "webgpu", false);
  },
});

/** Two Adam steps of a small MLP and a conv layer's gradients. */
function trainingStep(): tf.Tensor[] {
  const w1 = tf.variable(randomNormal([16, 32], { seed: 1 }).mul(0.3));
  const w2 = tf.variable(randomNormal([32, 4], { seed: 2 }).mul(0.3));
  const x = randomNormal([64, 16], { seed: 3 });
  const y = randomNormal([64, 4], { seed: 4 });
  const optimizer = tf.train.adam(1e-2);
  const losses: tf.Tensor[] = [];
  for (let i = 0; i < 2; i++) {
    losses.push(
      optimizer.minimize(
        () => tf.losses.meanSquaredError(y, tf.relu(x.matMul(w1)).matMul(w2)),
        true,
        [w1, w2],
      )!,
    );
  }
  const image = randomNormal([2, 8, 8, 3], { seed: 5 }) as tf.Tensor4D;
  const filter = randomNormal([4, 4, 3, 5], { seed: 6 }) as tf.Tensor4D;
  const convGrads = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
    tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same").square().sum()
  )([image, filter]);
  const out = [...losses, w1.clone(), w2.clone(), ...convGrads];
  optimizer.dispose();
  tf.dispose([w1, w2, x, y, image, filter]);
  return out;
}

Deno.test({
  name: "initBackend starts webgpu when asked; a training step matches cpu",
  ignore: !hasAdapter,
  ...options,
  fn: async () => {
    try {
      assertEquals(
        await initBackend({ backend: "webgpu", quiet: true }),
        "webgpu",
      );
      assertEquals(tf.getBackend(), "webgpu");
      const line = describeBackend();
      assert(line.startsWith("webgpu ("), line);
      const info = (adapter as { info?: { isFallbackAdapter?: boolean } }).info;
      if (info?.isFallbackAdapter) {
        assert(line.includes("software adapter"), line);
      }
      const onGpu = trainingStep();
      const gpuValues = await Promise.all(onGpu.map((t) => t.data()));
      tf.dispose(onGpu);
      await tf.setBackend("cpu");
      const onCpu = trainingStep();
      const cpuValues = onCpu.map((t) => t.dataSync());
      tf.dispose(onCpu);
      for (let i = 0; i < cpuValues.length; i++) {
        assertAllClose(
          gpuValues[i] as Float32Array,
          cpuValues[i] as Float32Array,
          {
            rtol: 1e-3,
            atol: 1e-3,
            message: `output ${i}`,
          },
        );
      }
    } finally {
      await initBackend({ quiet: true });
    }
    // Asking for wasm again goes back to it.
    assertEquals(tf.getBackend(), "wasm");
  },
});

/** Whether OffscreenCanvas has the 2D context tfjs-webgpu's readSync uses. */
function canvas2d(): boolean {
  try {
    return typeof OffscreenCanvas !== "undefined" &&
      new OffscreenCanvas(1, 1).getContext("2d") !== null;
  } catch {
    return false;
  }
}

Deno.test({
  name:
    "webgpu without a 2D canvas (Deno): dataSync of GPU data says why and what to use; CPU-held values and await data() still read",
  ignore: !hasAdapter,
  ...options,
  fn: async () => {
    try {
      await initBackend({ backend: "webgpu", quiet: true });
      const a = tf.tensor1d([1, 2, 3]);
      // Not yet uploaded: its values are still on the CPU, and so are those
      // of small ops on such tensors (tfjs-webgpu runs them on the CPU).
      assertEquals(Array.from(a.dataSync()), [1, 2, 3]);
      const b = tf.add(a, a);
      assertEquals(Array.from(b.dataSync()), [2, 4, 6]);
      // 2000 elements: past tfjs-webgpu's CPU hand-off, computed on the GPU.
      const big = tf.tensor1d(Array.from({ length: 2000 }, (_, i) => i % 7));
      const c = tf.mul(big, big);
      const expected = Array.from({ length: 2000 }, (_, i) => (i % 7) ** 2);
      if (canvas2d()) {
        assertEquals(Array.from(c.dataSync()), expected);
        assertEquals(describeBackend().includes("no dataSync"), false);
      } else {
        for (const read of [() => c.dataSync(), () => c.arraySync()]) {
          let message = "";
          try {
            read();
          } catch (err) {
            message = (err as Error).message;
          }
          assertEquals(message, WEBGPU_SYNC_READ_ERROR);
        }
        // It names the cause and the way out.
        assert(
          WEBGPU_SYNC_READ_ERROR.includes("OffscreenCanvas") &&
            WEBGPU_SYNC_READ_ERROR.includes("await tensor.data()"),
        );
        const line = describeBackend();
        assert(line.includes("no dataSync/arraySync here"), line);
        // The failed read left the tensor intact.
        assertEquals(Array.from(await c.data()), expected);
        assertEquals((await c.array()) as number[], expected);
      }
      tf.dispose([a, b, big, c]);
    } finally {
      await initBackend({ quiet: true });
    }
  },
});

Deno.test({
  name: "the default backend is never webgpu",
  ...options,
  fn: async () => {
    assertEquals(await initBackend({ quiet: true }), "wasm");
    assertEquals(tf.getBackend(), "wasm");
  },
});
