/**
 * The dense-layer kernels (kernels/dense.ts, dense.ts): `dense` and
 * `denseGrad` give the bits of the separate tfjs kernels they replace on
 * wasm (both matMul paths), values close to the cpu backend's, the
 * registered gradient of `dense` agrees with `denseGrad`, each runs as one
 * kernel, bad arguments are named errors, and nothing leaks (tensors and
 * wasm data ids).
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend.ts";
import { dense, type DenseActivation, denseGrad } from "../dense.ts";
import { ArgumentError } from "../errors.ts";
import { tanhGradInto } from "../kernels/elementwise.ts";
import type { WasmBackendLike } from "../kernels/fast_kernels.ts";
import { randomNormal } from "./seeded.ts";
import { bits } from "./bits.ts";
import { matMulPathTest } from "./matmul_paths.ts";
import {
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "../../../tests/assert.ts";

await initBackend({ quiet: true });

const ACTIVATIONS: DenseActivation[] = [
  "linear",
  "tanh",
  "relu",
  "sigmoid",
  "elu",
  "leakyRelu",
];
// [batch, in, out]: the ODE's two layers, odd sizes, one row, no rows.
const SHAPES = [[20, 2, 50], [20, 50, 2], [7, 5, 3], [1, 4, 1], [0, 3, 2]];

const mm = (a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean) =>
  tf.engine().runKernel("BatchMatMul", { a, b }, {
    transposeA: ta,
    transposeB: tb,
  }) as tf.Tensor;

/** The separate tfjs ops the fused forward replaces. */
function separate(
  x: tf.Tensor,
  w: tf.Tensor,
  b: tf.Tensor,
  act: DenseActivation,
  alpha: number,
) {
  const z = tf.add(mm(x, w, false, false), b);
  const f: Record<DenseActivation, () => tf.Tensor> = {
    linear: () => z,
    tanh: () => tf.tanh(z),
    relu: () => tf.relu(z),
    sigmoid: () => tf.sigmoid(z),
    elu: () => tf.elu(z),
    leakyRelu: () => tf.leakyRelu(z, alpha),
  };
  return f[act]();
}

/** The separate tfjs ops of the gradient: [dx, dw, db]. */
function separateGrad(
  dy: tf.Tensor,
  x: tf.Tensor,
  w: tf.Tensor,
  y: tf.Tensor,
  act: DenseActivation,
  alpha: number,
) {
  const d: Record<DenseActivation, () => tf.Tensor> = {
    linear: () => dy,
    tanh: () => tf.sub(dy, tf.mul(tf.mul(dy, y), y)),
    relu: () => tf.mul(dy, tf.step(y, 0)),
    sigmoid: () => {
      const dyy = tf.mul(dy, y);
      return tf.sub(dyy, tf.mul(dyy, y));
    },
    elu: () => tf.engine().runKernel("EluGrad", { dy, y }) as tf.Tensor,
    leakyRelu: () => tf.mul(dy, tf.step(y, alpha)),
  };
  const pre = d[act]();
  return [mm(pre, w, false, true), mm(x, pre, true, false), tf.sum(pre, 0)];
}

/** Values in [-2, 2) from a seed, the same on every backend (built in JavaScript). */
function uniform(shape: number[], seed: number): tf.Tensor {
  let state = (seed * 2654435761 + 12345) >>> 0;
  const values = Float32Array.from(
    { length: tf.util.sizeFromShape(shape) },
    () => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return state / 2 ** 30 - 2;
    },
  );
  return tf.tensor(values, shape);
}

function operands([batch, inSize, outSize]: number[], seed: number) {
  return {
    x: uniform([batch, inSize], seed),
    w: uniform([inSize, outSize], seed + 1),
    b: uniform([outSize], seed + 2),
    dy: uniform([batch, outSize], seed + 3),
  };
}

/** Values of dense and its gradients for every activation and shape. */
function values(): number[][][] {
  const out: number[][][] = [];
  for (const act of ACTIVATIONS) {
    for (const [i, shape] of SHAPES.entries()) {
      tf.tidy(() => {
        const { x, w, b, dy } = operands(shape, 10 * i);
        const y = dense(x, w, b, act, 0.2);
        const g = denseGrad(dy, x, w, y, act, 0.2);
        out.push([y, g.dx, g.dw, g.db].map((t) => Array.from(t.dataSync())));
      });
    }
  }
  return out;
}

matMulPathTest(
  "dense and denseGrad give the separate kernels' bits on wasm",
  () => {
    for (const act of ACTIVATIONS) {
      for (const [i, shape] of SHAPES.entries()) {
        tf.tidy(() => {
          const { x, w, b, dy } = operands(shape, 10 * i);
          const label = `${act} [${shape}]`;
          const y = dense(x, w, b, act, 0.2);
          assertEquals(
            bits(y),
            bits(separate(x, w, b, act, 0.2)),
            `${label}: y`,
          );
          const g = denseGrad(dy, x, w, y, act, 0.2);
          const ref = separateGrad(dy, x, w, y, act, 0.2);
          ["dx", "dw", "db"].forEach((name, k) => {
            const t = g[name as "dx"];
            assertEquals(t.shape, ref[k].shape, `${label}: ${name} shape`);
            assertEquals(bits(t), bits(ref[k]), `${label}: ${name}`);
          });
        });
      }
    }
  },
);

Deno.test("dense and denseGrad are close to the cpu backend (values and gradients)", async () => {
  const wasm = values();
  await tf.setBackend("cpu");
  let cpu: number[][][];
  try {
    cpu = values();
  } finally {
    await tf.setBackend("wasm");
  }
  wasm.forEach((entry, i) =>
    entry.forEach((v, k) =>
      assertAllClose(v, cpu[i][k], {
        rtol: 1e-5,
        atol: 1e-5,
        message: `case ${i} output ${k}`,
      })
    )
  );
});

Deno.test("dense's registered gradient is denseGrad's", () => {
  for (const act of ACTIVATIONS) {
    tf.tidy(() => {
      const { x, w, b, dy } = operands([7, 5, 3], 3);
      const [dx, dw, db] = tf.grads((x, w, b) => dense(x, w, b, act, 0.2))(
        [x, w, b],
        dy,
      );
      const g = denseGrad(dy, x, w, dense(x, w, b, act, 0.2), act, 0.2);
      assertEquals(bits(dx), bits(g.dx), `${act}: dx`);
      assertEquals(bits(dw), bits(g.dw), `${act}: dw`);
      assertEquals(bits(db), bits(g.db), `${act}: db`);
    });
  }
});

Deno.test("dense and denseGrad: one kernel each on wasm, nothing left behind", async () => {
  const { x, w, b, dy } = operands([20, 2, 50], 1);
  const names = async (fn: () => unknown) =>
    (await tf.profile(() => tf.tidy(fn as () => tf.Tensor))).kernels.map((k) =>
      k.name
    );
  assertEquals(await names(() => dense(x, w, b, "tanh")), ["ProjectDense"]);
  const y = dense(x, w, b, "tanh");
  assertEquals(
    await names(() => Object.values(denseGrad(dy, x, w, y, "tanh"))),
    ["ProjectDenseGrad"],
  );
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const ids = backend.numDataIds();
  await assertNoTensorLeak(() => {
    for (const act of ACTIVATIONS) {
      tf.tidy(() => {
        const out = dense(x, w, b, act, 0.1);
        denseGrad(dy, x, w, act === "linear" ? null : out, act, 0.1);
        tf.grads((x, w, b) => dense(x, w, b, act, 0.1))([x, w, b], dy);
      });
    }
  });
  assertEquals(backend.numDataIds(), ids, "wasm data ids");
  tf.dispose([x, w, b, dy, y]);
});

Deno.test("tanh's one-pass gradient dy - (dy y) y: the bits of Multiply, Multiply, Sub on wasm and cpu", async () => {
  // Sizes around the 4-lane loop's tail; signed zeros, infinities, NaN,
  // subnormals, and products that overflow or underflow.
  const special = [0, -0, Infinity, -Infinity, NaN, 1e-40, -1e-40, 3e38, 1e-30];
  const operands = (n: number, seed: number) => {
    const v = randomNormal([n], { seed }).dataSync().slice();
    special.forEach((s, i) => {
      if (i < n) v[(i * 5 + seed) % n] = s;
    });
    return Array.from(v);
  };
  for (const n of [1, 3, 4, 5, 17, 1000]) {
    const [dyV, yV] = [operands(n, 1), operands(n, 2)];
    const separately = () =>
      tf.tidy(() => {
        const [dy, y] = [tf.tensor1d(dyV), tf.tensor1d(yV)];
        return bits(tf.sub(dy, tf.mul(tf.mul(dy, y), y)));
      });
    await tf.setBackend("cpu");
    const cpu = separately();
    await tf.setBackend("wasm");
    const wasm = separately();
    const backend = tf.backend() as unknown as WasmBackendLike;
    const fused = tf.tidy(() => {
      const [dy, y] = [tf.tensor1d(dyV), tf.tensor1d(yV)];
      const out = backend.makeOutput([n], "float32");
      assertEquals(tanhGradInto(backend, dy, y, out, n), true);
      return bits(tf.engine().makeTensorFromTensorInfo(out));
    });
    assertEquals(fused, wasm, `n = ${n}: wasm's separate kernels`);
    assertEquals(fused, cpu, `n = ${n}: cpu`);
  }
});

Deno.test("dense and denseGrad name bad arguments", () => {
  const { x, w, b, dy } = operands([4, 3, 2], 1);
  const [int, short] = [tf.zeros([4, 3], "int32"), tf.zeros([3])];
  const bad: [() => unknown, string][] = [
    [() => dense(w, w, b), "do not fit"],
    [() => dense(x, w, short), "b must be"],
    [() => dense(int, w, b), "float32"],
    [() => dense(x, w, b, "gelu" as DenseActivation), "activation must be"],
    [() => dense(x, w, b, "leakyRelu", -1), "alpha"],
    [() => denseGrad(x, x, w, null), "dy must be"],
    [() => denseGrad(dy, x, w, null, "tanh"), "y must be"],
  ];
  for (const [fn, message] of bad) {
    assertNoThrowLeak(() => assertThrows(fn, ArgumentError, message));
  }
  tf.dispose([x, w, b, dy, int, short]);
});

function assertNoThrowLeak(fn: () => void) {
  const before = tf.memory().numTensors;
  fn();
  assertEquals(tf.memory().numTensors - before, 0, "tensors after a throw");
}
