/**
 * tfjs-fast: TensorFlow.js 4.22 on its WebAssembly backend, made fit for
 * training under Deno. `initBackend()` starts wasm with SIMD (and its
 * threaded build when a core is idle), registers the training kernels wasm
 * lacks or gets wrong and faster versions of slow ones, and runs float32
 * matMuls on the system's OpenBLAS and convolutions on its oneDNN through
 * Deno's FFI when it can;
 * `adam()` is `tf.train.adam` with its update fused into one SIMD pass per
 * variable (the same bits).
 *
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { adam, describeBackend, initBackend } from "@course/tfjs-fast";
 *
 * await initBackend({ quiet: true });
 * console.log(describeBackend()); // wasm (SIMD, 1 thread) + matMul on OpenBLAS ...
 * const w = tf.variable(tf.zeros([3]));
 * const optimizer = adam(1e-2);
 * optimizer.minimize(() => tf.sum(tf.square(tf.sub(w, 1))), false, [w]);
 * ```
 *
 * Every project kernel is tested against tfjs's `cpu` backend (tests/).
 *
 * @module
 */
export {
  type BackendName,
  BACKENDS,
  describeBackend,
  initBackend,
  type InitBackendOptions,
  WEBGPU_SYNC_READ_ERROR,
} from "./backend.ts";
export {
  adam,
  fusedAdamInUse,
  FusedAdamOptimizer,
  useFusedAdam,
} from "./optim.ts";
export {
  fusedPowGradientInUse,
  fusedReductionGradientsInUse,
  linearCombination,
  useFusedPowGradient,
  useFusedReductionGradients,
} from "./ops.ts";
export {
  dense,
  type DenseActivation,
  denseGrad,
  type DenseGradients,
} from "./dense.ts";
export { fastLayersInUse, useFastLayers } from "./layers.ts";
export { readInto } from "./read.ts";
export { ArgumentError } from "./errors.ts";
export {
  activeBlas,
  type Blas,
  openBlas,
  OPENBLAS_CANDIDATES,
  type OpenBlasOptions,
  type OpenBlasResult,
  useBlas,
} from "./kernels/blas_kernels.ts";
export {
  activeDnnl,
  type ConvGeometry,
  type ConvPass,
  type Dnnl,
  DNNL_CANDIDATES,
  openDnnl,
  type OpenDnnlOptions,
  type OpenDnnlResult,
  useDnnl,
} from "./kernels/dnnl.ts";
