/**
 * A dense layer's forward pass and its gradient, each as one kernel, for
 * small layers where tfjs's ~4 µs of engine bookkeeping per kernel
 * outweighs the arithmetic (a neural ODE's 2-50-2 vector field on 20
 * rows, evaluated 36 times per training step):
 *
 * - `ProjectDense`: act(x W + b) for 2-D float32 x [batch, in], W [in,
 *   out], b [out]: one kernel instead of BatchMatMul, Add and the
 *   activation.
 * - `ProjectDenseGrad`: from dy (the gradient of act's output y), x, W and
 *   y, the three gradients dx = d W^T, dW = x^T d, db = sum over the batch
 *   of d, where d = dy act'(.): one kernel with three outputs instead of
 *   the activation gradient's kernels (tanh: two Multiply and a Sub), two
 *   BatchMatMul and a Sum. Tanh's gradient dy - (dy y) y runs as one SIMD
 *   pass over the memory (elementwise.ts's `tanhGradInto`) with the same
 *   roundings as the three kernels.
 *
 * Each runs the kernels it replaces (the ones registered for wasm, so the
 * project's OpenBLAS product, SIMD Add, Tanh and Sum) in the same order
 * on the same inputs, so the values are the same bits as the separate
 * kernels; only the engine's bookkeeping between them is gone. The ops
 * with their fallbacks off wasm are `dense` and `denseGrad` (dense.ts).
 * Tested against the separate kernels bit for bit and the cpu backend in
 * tests/dense.test.ts.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  type KernelArgs,
  registeredKernel,
  type WasmBackendLike,
} from "./fast_kernels.ts";
import { tanhGradInto } from "./elementwise.ts";

/** The kernel names. */
export const DENSE = "ProjectDense";
export const DENSE_GRAD = "ProjectDenseGrad";

/** The activations a dense kernel applies after the bias. */
export type DenseActivation =
  | "linear"
  | "tanh"
  | "relu"
  | "sigmoid"
  | "elu"
  | "leakyRelu";

export const DENSE_ACTIVATIONS: readonly DenseActivation[] = [
  "linear",
  "tanh",
  "relu",
  "sigmoid",
  "elu",
  "leakyRelu",
];

/** Both kernels' attributes. */
export interface DenseAttrs {
  activation: DenseActivation;
  /** LeakyReLU's slope for negative inputs (>= 0); unused otherwise. */
  alpha: number;
}

/** The tfjs kernel of each activation, as tf.tanh, tf.relu, ... run it. */
const ACTIVATION_KERNELS: Record<string, string> = {
  tanh: "Tanh",
  relu: "Relu",
  sigmoid: "Sigmoid",
  elu: "Elu",
  leakyRelu: "LeakyRelu",
};

/**
 * Runs registered wasm kernels on `backend` and frees every result it
 * made (and every output `body` passes to `own`) except those returned
 * from `body`.
 */
function withKernels<T extends tf.TensorInfo | tf.TensorInfo[]>(
  backend: unknown,
  body: (
    run: (
      name: string,
      inputs: tf.NamedTensorInfoMap,
      attrs?: tf.NamedAttrMap,
    ) => tf.TensorInfo,
    own: (made: tf.TensorInfo) => tf.TensorInfo,
  ) => T,
): T {
  const made: tf.TensorInfo[] = [];
  const run = (
    name: string,
    inputs: tf.NamedTensorInfoMap,
    attrs: tf.NamedAttrMap = {},
  ) => {
    const out = registeredKernel(name)({ inputs, backend, attrs });
    made.push(out);
    return out;
  };
  let kept: tf.TensorInfo[] = [];
  try {
    const own = (t: tf.TensorInfo) => {
      made.push(t);
      return t;
    };
    const result = body(run, own);
    kept = Array.isArray(result) ? result : [result];
    return result;
  } finally {
    for (const t of made) {
      if (!kept.includes(t)) (backend as WasmBackendLike).disposeData(t.dataId);
    }
  }
}

/** act(x W + b): BatchMatMul, Add, then the activation's kernel. */
function denseKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, w, b } = inputs as Record<string, tf.TensorInfo>;
  const { activation, alpha } = attrs as unknown as DenseAttrs;
  return withKernels(backend, (run) => {
    const product = run("BatchMatMul", { a: x, b: w }, {
      transposeA: false,
      transposeB: false,
    });
    const z = run("Add", { a: product, b });
    if (activation === "linear") return z;
    return run(
      ACTIVATION_KERNELS[activation],
      { x: z },
      activation === "leakyRelu" ? { alpha } : {},
    );
  });
}

/**
 * [dx, dW, db] from dy, x, W and y = act(x W + b) (y unread for
 * "linear"). d = dy act'(.) with the kernels and order tfjs-style code
 * uses (lib/nn.ts's hand-written gradient before this kernel): tanh dy -
 * (dy y) y; sigmoid dy y - (dy y) y; relu and leakyRelu dy step(y, alpha);
 * elu EluGrad.
 */
function denseGradKernel(
  { inputs, backend, attrs }: KernelArgs,
): tf.TensorInfo[] {
  const { dy, x, w, y } = inputs as Record<string, tf.TensorInfo>;
  const { activation, alpha } = attrs as unknown as DenseAttrs;
  return withKernels(backend, (run, own) => {
    const mul = (a: tf.TensorInfo, b: tf.TensorInfo) =>
      run("Multiply", { a, b });
    let d = dy;
    if (activation === "tanh") {
      const fused = tanhGrad(backend, dy, y);
      d = fused === null
        ? run("Sub", { a: dy, b: mul(mul(dy, y), y) })
        : own(fused);
    } else if (activation === "sigmoid") {
      const dyy = mul(dy, y);
      d = run("Sub", { a: dyy, b: mul(dyy, y) });
    } else if (activation === "relu") {
      d = mul(dy, run("Step", { x: y }, { alpha: 0 }));
    } else if (activation === "leakyRelu") {
      d = mul(dy, run("Step", { x: y }, { alpha }));
    } else if (activation === "elu") {
      d = run("EluGrad", { dy, y });
    }
    const product = (a: tf.TensorInfo, b: tf.TensorInfo, ta: boolean) =>
      run("BatchMatMul", { a, b }, { transposeA: ta, transposeB: !ta });
    return [
      product(d, w, false),
      product(x, d, true),
      run("Sum", { x: d }, { axis: 0, keepDims: false }),
    ];
  });
}

/**
 * dy - (dy y) y in one pass (elementwise.ts's `tanhGradInto`: the bits of
 * the two Multiply and the Sub), or null when dy and y are not float32 of
 * one shape or the backend's memory cannot be had (the caller then runs
 * the three kernels).
 */
function tanhGrad(
  backend: unknown,
  dy: tf.TensorInfo,
  y: tf.TensorInfo,
): tf.TensorInfo | null {
  if (
    dy.dtype !== "float32" || y.dtype !== "float32" ||
    !tf.util.arraysEqual(dy.shape, y.shape)
  ) return null;
  const wasm = backend as WasmBackendLike;
  const out = wasm.makeOutput([...dy.shape], "float32");
  if (tanhGradInto(backend, dy, y, out, tf.util.sizeFromShape(dy.shape))) {
    return out;
  }
  wasm.disposeData(out.dataId);
  return null;
}

/** The kernels, by name (registered for wasm by kernels/wasm_kernels.ts). */
export const DENSE_KERNELS: Record<
  string,
  (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]
> = {
  [DENSE]: denseKernel,
  [DENSE_GRAD]: denseGradKernel,
};
