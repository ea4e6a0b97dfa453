/**
 * Tanh in SIMD (kernels/tanh.ts) against the built-in (musl's tanhf): the
 * same bits over a sweep of float32 bit patterns, every branch boundary of
 * tanhf and expm1f, signed zeros, subnormals, infinities and NaN, and
 * tensor sizes that take every path of the loop (8 lanes at a time, then
 * 4, then a tail of 1-3); the gradient as on cpu.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend.ts";
import { builtin } from "../kernels/fast_kernels.ts";
import { tanh } from "../kernels/tanh.ts";
import { randomNormal } from "./seeded.ts";
import { assert, assertAllClose, assertEquals } from "../../../tests/assert.ts";

await initBackend({ quiet: true });

/** Float32 values from bit patterns. */
function fromBits(bits: number[]): Float32Array {
  return new Float32Array(new Uint32Array(bits).buffer);
}

/** Asserts ours === built-in bit for bit (NaN as NaN) on `values`. */
function assertTanhBits(values: Float32Array, label: string) {
  tf.tidy(() => {
    const x = tf.tensor1d(values);
    const ours = tf.tanh(x).dataSync() as Float32Array;
    const theirs = tf.engine().makeTensorFromTensorInfo(
      builtin("Tanh")({ inputs: { x }, backend: tf.backend(), attrs: {} }),
    ).dataSync() as Float32Array;
    const a = new Uint32Array(ours.slice().buffer);
    const b = new Uint32Array(theirs.slice().buffer);
    let mismatches = 0;
    let first = -1;
    for (let i = 0; i < a.length; i++) {
      if (
        a[i] !== b[i] && !(Number.isNaN(ours[i]) && Number.isNaN(theirs[i]))
      ) {
        mismatches++;
        if (first < 0) first = i;
      }
    }
    assertEquals(
      mismatches,
      0,
      `${label}: ${mismatches} of ${a.length} differ, e.g. tanh(${
        values[first]
      }) = ${ours[first]}, built-in ${theirs[first]}`,
    );
  });
}

Deno.test("Tanh: the built-in's bits over a sweep of float32 bit patterns up to |x| = 12", () => {
  const top = new Uint32Array(new Float32Array([12]).buffer)[0];
  const bits: number[] = [];
  for (let b = 0; b <= top; b += 173) bits.push(b, (b | 0x80000000) >>> 0);
  assertTanhBits(fromBits(bits), "sweep");
});

Deno.test("Tanh: the built-in's bits around every branch boundary and at the edges", () => {
  // tanhf's thresholds on |x|, and |x| where expm1f's argument (2|x| or
  // -2|x|) crosses its own (0.5 ln2, 1.5 ln2, 2^-25, k = 23, 27 ln2).
  const edges = [0x3f0c9f54, 0x3e82c578, 0x00800000, 0x41200000];
  for (
    const y of [
      0.5 * Math.LN2,
      1.5 * Math.LN2,
      2 ** -25,
      22.5 * Math.LN2,
      27 * Math.LN2,
    ]
  ) {
    edges.push(new Uint32Array(new Float32Array([y / 2]).buffer)[0]);
  }
  const bits: number[] = [];
  for (const e of edges) {
    for (let d = -300; d <= 300; d++) {
      bits.push((e + d) >>> 0, ((e + d) | 0x80000000) >>> 0);
    }
  }
  const specials = [
    0,
    -0,
    Infinity,
    -Infinity,
    NaN,
    1e-45,
    -1e-45,
    1e-39,
    3.4e38,
    -3.4e38,
  ];
  assertTanhBits(new Float32Array([...fromBits(bits), ...specials]), "edges");
});

for (const n of [1, 2, 3, 5, 7, 8, 12, 15, 1000, 4099]) {
  Deno.test(
    `Tanh: the built-in's bits for ${n} normal values (${n >> 3} x 8, ${
      (n >> 2) & 1
    } x 4, tail of ${n % 4})`,
    () => {
      assertTanhBits(
        randomNormal([n], { seed: n }).mul(3).dataSync() as Float32Array,
        `n ${n}`,
      );
    },
  );
}

Deno.test("Tanh: the gradient matches cpu and shapes are kept", async () => {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const out = tf.tidy(() => {
      const x = randomNormal([20, 50], { seed: 1 });
      const y = tf.tanh(x.reshape([4, 5, 50]));
      const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.tanh(v), v)))(x);
      return [y, g];
    });
    const values = out.map((t) => ({
      shape: t.shape,
      v: t.dataSync().slice(),
    }));
    tf.dispose(out);
    return values;
  };
  const wasm = await run("wasm");
  const cpu = await run("cpu");
  await tf.setBackend("wasm");
  wasm.forEach((w, i) => {
    assertEquals(w.shape, cpu[i].shape);
    // cpu rounds Math.tanh (float64), the built-ins musl's tanhf: 2 ulp.
    assertAllClose(w.v, cpu[i].v, { rtol: 1e-6, atol: 1e-6 });
  });
  assert(tf.getKernel("Tanh", "wasm")?.kernelFunc === (tanh as unknown));
});
