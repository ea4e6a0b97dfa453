/**
 * Kernels the tfjs wasm backend (4.22) lacks or gets wrong, registered by
 * the project so that training works on wasm:
 *
 * - `Conv2DBackpropFilter` (the weight gradient of conv2d and conv2dTranspose)
 *   and faster `Conv2DBackpropInput`, `Conv2D` and `FusedConv2D`: im2col
 *   or col2im in WebAssembly SIMD and one matMul (kernels/conv_kernels.ts).
 * - `UnsortedSegmentSum` (the gradient of gather, e.g. of an embedding or a
 *   codebook lookup).
 * - `OneHot`, whose float32 output on wasm holds int32 bit patterns.
 * - `Mean`, `Max`, `Min`, `Prod`, `All`, `Any` (and `Sum`, in
 *   fast_kernels.ts) over an empty axis: the built-ins leave the output
 *   uninitialised; here it holds what the cpu backend computes.
 * - Float32 `Add`, `Sub`, `Multiply` as SIMD loops for equal shapes, scalars
 *   and trailing broadcasts (kernels/elementwise.ts): the same bits, without
 *   the built-ins' ~5 µs per call.
 * - `Tanh` (float32) as musl's tanhf in SIMD, the built-in's bits at a
 *   tenth of its time (kernels/tanh.ts).
 * - Fused kernels for small-tensor code (kernels/combination.ts): a linear
 *   combination base + sum c_i x_i and its gradient, Pow's gradient for a
 *   scalar exponent, and `Pow` itself without `cwrap`'s marshalling.
 * - The speed fixes of kernels/fast_kernels.ts: `BatchMatMul` and
 *   `_FusedMatMul` with transposes (physical transpose, then the plain
 *   product; also fixes the fused bias for batches > 1),
 *   `GatherV2` (block copies) and
 *   `Sum` over leading axes (row additions); with OpenBLAS present the
 *   matMuls run on it (kernels/blas_kernels.ts).
 *
 * Each is tested against the `cpu` backend in tests/wasm_kernels.test.ts.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  builtin,
  captureBuiltins,
  FAST_KERNELS,
  fillWhenEmpty,
  type KernelArgs,
  type KernelFn,
  markReplacements,
  registerWasmKernel,
  type WasmBackendLike,
} from "./fast_kernels.ts";
import { CONV_BUILTINS, CONV_KERNELS } from "./conv_kernels.ts";
import { ELEMENTWISE_BUILTINS, ELEMENTWISE_KERNELS } from "./elementwise.ts";
import { tanh } from "./tanh.ts";
import { COMBINATION_BUILTINS, COMBINATION_KERNELS } from "./combination.ts";
import { DENSE_KERNELS } from "./dense.ts";
import { LAYERS_KERNELS } from "./layers.ts";

function unsortedSegmentSum(
  { inputs, backend, attrs }: KernelArgs,
): tf.TensorInfo {
  const wasm = backend as WasmBackendLike;
  const { x, segmentIds } = inputs as {
    x: tf.TensorInfo;
    segmentIds: tf.TensorInfo;
  };
  const { numSegments } = attrs as unknown as { numSegments: number };
  const inner = tf.util.sizeFromShape(
    x.shape.slice(segmentIds.shape.length),
  );
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const out = wasm.makeOutput(outShape, x.dtype);
  const ov = wasm.typedArrayFromHeap(out);
  ov.fill(0);
  const xv = wasm.typedArrayFromHeap(x);
  const ids = wasm.typedArrayFromHeap(segmentIds);
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    // Out-of-range ids are dropped, as in TensorFlow.
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) ov[dst + j] += xv[src + j];
  }
  return out;
}

function oneHot({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const wasm = backend as WasmBackendLike;
  const { indices } = inputs as { indices: tf.TensorInfo };
  const { depth, onValue, offValue, dtype } = attrs as unknown as {
    depth: number;
    onValue: number;
    offValue: number;
    dtype: tf.DataType;
  };
  const out = wasm.makeOutput([...indices.shape, depth], dtype);
  const ov = wasm.typedArrayFromHeap(out);
  ov.fill(offValue);
  const iv = wasm.typedArrayFromHeap(indices);
  for (let i = 0; i < iv.length; i++) {
    const k = iv[i];
    if (k >= 0 && k < depth) ov[i * depth + k] = onValue;
  }
  return out;
}

/**
 * What each reduction gives over an empty axis on the cpu backend, which
 * these kernels match (tfjs's reference backend; TensorFlow itself differs
 * for some: NaN for Mean, -Infinity and Infinity for Max and Min, true for
 * All). cpu's Mean divides by the count before it sums, so it gives 0; its
 * Max and Min start from the first element of nothing, NaN in float32 and
 * 0 in int32 or bool, which filling with NaN reproduces.
 */
const EMPTY_REDUCTIONS: Readonly<Record<string, number>> = {
  Mean: 0,
  Max: Number.NaN,
  Min: Number.NaN,
  Prod: 1,
  All: 0,
  Any: 0,
};

/** The built-in reduction `name`, with its value over nothing defined. */
function emptySafeReduction(name: string, value: number) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    return fillWhenEmpty(x, builtin(name)(args), value, args.backend);
  };
}

const PROJECT_KERNELS: Record<string, (args: KernelArgs) => tf.TensorInfo> = {
  UnsortedSegmentSum: unsortedSegmentSum,
  OneHot: oneHot,
  ...Object.fromEntries(
    Object.entries(EMPTY_REDUCTIONS).map((
      [name, value],
    ) => [name, emptySafeReduction(name, value)]),
  ),
  ...FAST_KERNELS,
  ...CONV_KERNELS,
  ...ELEMENTWISE_KERNELS,
  Tanh: tanh,
};
markReplacements(PROJECT_KERNELS);
markReplacements(COMBINATION_KERNELS as Record<string, KernelFn>);
markReplacements(DENSE_KERNELS as Record<string, KernelFn>);
markReplacements(LAYERS_KERNELS);

/** Names of the kernels this module registers for the wasm backend. */
export const WASM_PROJECT_KERNELS: readonly string[] = Object.keys(
  PROJECT_KERNELS,
);

/**
 * Registers the project's wasm kernels (replacing a broken built-in where
 * needed). Safe to call more than once.
 */
export function registerWasmKernels(): void {
  // The fast kernels wrap built-ins: keep the originals before replacing them.
  captureBuiltins([
    ...Object.keys(EMPTY_REDUCTIONS),
    ...CONV_BUILTINS,
    ...ELEMENTWISE_BUILTINS,
    "Tanh",
    ...COMBINATION_BUILTINS,
  ]);
  for (const [kernelName, kernelFunc] of Object.entries(PROJECT_KERNELS)) {
    registerWasmKernel(kernelName, kernelFunc);
  }
  // The fused combinations, Pow's gradient, and Pow (kernels/combination.ts).
  for (const [kernelName, kernelFunc] of Object.entries(COMBINATION_KERNELS)) {
    registerWasmKernel(kernelName, kernelFunc as KernelFn);
  }
  // A dense layer and its gradient, one kernel each (kernels/dense.ts).
  for (const [kernelName, kernelFunc] of Object.entries(DENSE_KERNELS)) {
    registerWasmKernel(kernelName, kernelFunc as KernelFn);
  }
  // tfjs-layers' Dense and Conv2D under names with lazy gradients (layers.ts).
  for (const [kernelName, kernelFunc] of Object.entries(LAYERS_KERNELS)) {
    registerWasmKernel(kernelName, kernelFunc);
  }
}
