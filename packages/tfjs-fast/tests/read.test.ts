/**
 * `readInto` (read.ts): the values `dataSync` gives, for every dtype it
 * takes, on wasm (one copy out of the heap, nothing allocated) and on cpu;
 * the buffer is the caller's and is reused; clear errors; no leaks.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend.ts";
import { readInto } from "../read.ts";
import { ArgumentError } from "../errors.ts";
import { randomNormal } from "./seeded.ts";
import {
  assert,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "../../../tests/assert.ts";

await initBackend({ quiet: true });

function cases(): [tf.Tensor, Float32Array | Int32Array | Uint8Array][] {
  const x = randomNormal([37, 5], { seed: 1 });
  return [
    [x, new Float32Array(185)],
    [tf.tensor1d([1, -2, 2147483647, -2147483648], "int32"), new Int32Array(4)],
    [tf.greater(x, 0), new Uint8Array(185)],
    [tf.scalar(-0), new Float32Array(1)],
    [tf.zeros([0, 3]), new Float32Array(0)],
  ];
}

for (const backend of ["wasm", "cpu"]) {
  Deno.test(`readInto gives dataSync's values, every dtype, into the caller's buffer (${backend})`, async () => {
    await tf.setBackend(backend);
    try {
      for (const [x, out] of cases()) {
        const got = readInto(x, out);
        assert(got === out, "returns out itself");
        assertEquals(
          Array.from(got).map((v) => Object.is(v, -0) ? "-0" : v),
          Array.from(x.dataSync()).map((v) => Object.is(v, -0) ? "-0" : v),
          `${x.dtype} [${x.shape}]`,
        );
        x.dispose();
      }
    } finally {
      await tf.setBackend("wasm");
    }
  });
}

Deno.test("readInto reuses the buffer: a second read overwrites it, also after the heap grew", () => {
  const out = new Float32Array(1024);
  const a = tf.fill([1024], 1.5);
  readInto(a, out);
  // Some 64 MB of new tensors: the wasm memory grows (its buffer moves).
  const big = tf.zeros([4096, 4096]);
  const b = tf.fill([1024], -3);
  readInto(b, out);
  assert(out.every((v) => v === -3), "second read");
  readInto(a, out);
  assert(out.every((v) => v === 1.5), "first tensor again");
  tf.dispose([a, b, big]);
});

Deno.test("readInto falls back to dataSync for a tensor kept on another backend", async () => {
  await tf.setBackend("cpu");
  const x = tf.tensor1d([1, 2, 3]);
  await tf.setBackend("wasm");
  try {
    assertEquals(Array.from(readInto(x, new Float32Array(3))), [1, 2, 3]);
  } finally {
    x.dispose();
  }
});

Deno.test("readInto: wrong buffers, dtypes and disposed tensors are ArgumentErrors", () => {
  const x = tf.ones([2, 3]);
  assertThrows(
    () => readInto(x, new Float32Array(5)),
    ArgumentError,
    "Float32Array of 6",
  );
  assertThrows(
    () => readInto(x, new Int32Array(6) as unknown as Float32Array),
    ArgumentError,
    "Float32Array of 6",
  );
  const c = tf.tensor1d(["a"], "string");
  assertThrows(
    () => readInto(c, new Float32Array(1)),
    ArgumentError,
    "string",
  );
  tf.dispose([x, c]);
  assertThrows(
    () => readInto(x, new Float32Array(6)),
    ArgumentError,
    "disposed",
  );
});

Deno.test("readInto allocates no tensor and no wasm data", async () => {
  const x = randomNormal([256, 256], { seed: 3 });
  const out = new Float32Array(x.size);
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const ids = backend.numDataIds();
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 10; i++) readInto(x, out);
  });
  assertEquals(backend.numDataIds(), ids, "wasm data ids");
  x.dispose();
});
