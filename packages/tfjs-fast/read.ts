/**
 * Reading a tensor's values into a buffer the caller keeps (`readInto`).
 *
 * `await x.data()` and `x.dataSync()` return a new ArrayBuffer every time,
 * and must: the caller owns the result (may keep it, transfer it, write
 * into it), so tfjs cannot hand out memory again. For a large tensor that
 * fresh buffer is most of the cost (the copy itself runs at memory speed):
 * the kernel's page faults on memory just taken from the system, and the
 * garbage collections that megabytes of new external memory per read set
 * off (docs/performance.md, "Reading results back"). A caller who reads
 * the same tensor shape again and again (a figure per training step, a
 * metric over a large output) can own one buffer instead and have it
 * overwritten: one copy out of the wasm heap, no allocation.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { ArgumentError } from "./errors.ts";
import type { WasmBackendLike } from "./kernels/fast_kernels.ts";
import { backendMemory } from "./kernels/wasm_module.ts";

/** The typed array `readInto` fills for each dtype (what `dataSync` returns). */
type Buffer = Float32Array | Int32Array | Uint8Array;

const BUFFERS = {
  float32: Float32Array,
  int32: Int32Array,
  bool: Uint8Array,
} as const;

/**
 * Copies the values of `x` into `out` and returns `out`: a Float32Array for
 * float32 (Int32Array for int32, Uint8Array for bool) of exactly x.size
 * elements, which the caller owns and may reuse for the next read. On the
 * wasm backend it is one copy out of the backend's memory and allocates
 * nothing; elsewhere it copies what `dataSync()` returns. The values are
 * those `dataSync()` gives, read when called (later changes to x cannot
 * happen: tensors are immutable; `out` is the caller's to change).
 *
 * @example
 * const buffer = new Float32Array(1024 * 1024);
 * readInto(result, buffer); // instead of await result.data(), again and again
 *
 * @throws ArgumentError for a disposed tensor, another dtype, or an `out` of the wrong type or length
 */
export function readInto<T extends Buffer>(x: tf.Tensor, out: T): T {
  const where = "readInto";
  if (!(x instanceof tf.Tensor)) {
    throw new ArgumentError(where, "x must be a tf.Tensor");
  }
  if (x.isDisposed) throw new ArgumentError(where, "x is disposed");
  const want = BUFFERS[x.dtype as keyof typeof BUFFERS];
  if (want === undefined) {
    throw new ArgumentError(
      where,
      `x must be float32, int32 or bool, got ${x.dtype}`,
    );
  }
  if (!(out instanceof want) || out.length !== x.size) {
    throw new ArgumentError(
      where,
      `out must be a ${want.name} of ${x.size} elements (x.size) for a ` +
        `${x.dtype} tensor, got ${
          ArrayBuffer.isView(out)
            ? `a ${out.constructor.name} of ${(out as Buffer).length}`
            : String(out)
        }`,
    );
  }
  const backend = tf.backend() as unknown as WasmBackendLike & {
    dataIdMap?: { has(dataId: tf.DataId): boolean };
  };
  if (
    tf.getBackend() === "wasm" && backendMemory(backend) !== null &&
    backend.dataIdMap?.has(x.dataId)
  ) {
    // The view is made right before the copy: nothing in between can grow
    // (and so move) the heap.
    out.set(backend.typedArrayFromHeap(x) as T);
  } else {
    out.set(x.dataSync() as T);
  }
  return out;
}
