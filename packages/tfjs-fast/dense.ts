/**
 * A dense layer act(x W + b) and its gradient as one kernel each on wasm
 * (kernels/dense.ts), for hand-differentiated small networks where tfjs's
 * per-kernel bookkeeping dominates (lib/nn.ts's `fastMlpApply`, the
 * neural ODE's vector field); elsewhere tfjs's ops. The same bits either
 * way (tests/dense.test.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { ArgumentError } from "./errors.ts";
import {
  DENSE,
  DENSE_ACTIVATIONS,
  DENSE_GRAD,
  type DenseActivation,
  type DenseAttrs,
} from "./kernels/dense.ts";
import { onWasm, untaped } from "./ops.ts";

export type { DenseActivation };

/** The three gradients of a dense layer. */
export interface DenseGradients {
  /** dL/dx, [batch, in]. */
  dx: tf.Tensor;
  /** dL/dW, [in, out]. */
  dw: tf.Tensor;
  /** dL/db, [out]. */
  db: tf.Tensor;
}

/**
 * act(x W + b) for float32 x [batch, in], W [in, out], b [out]; `alpha`
 * is LeakyReLU's slope (>= 0) for "leakyRelu". Differentiable.
 *
 * On wasm one kernel (the product, the bias add and the activation that
 * tfjs would run as three); elsewhere those tfjs ops. The values are the
 * bits of `act(tf.add(matMul(x, W), b))` with matMul the `BatchMatMul`
 * kernel on the 2-D tensors (tf.matMul's own reshapes change nothing).
 *
 * @throws ArgumentError for shapes that do not fit, another dtype, or an unknown activation
 */
export function dense(
  x: tf.Tensor,
  w: tf.Tensor,
  b: tf.Tensor,
  activation: DenseActivation = "linear",
  alpha = 0,
): tf.Tensor {
  checkDense(x, w, b, activation, alpha);
  const attrs = { activation, alpha };
  if (onWasm(DENSE)) {
    registerDenseGradient();
    return tf.engine().runKernel(DENSE, { x, w, b }, attrs) as tf.Tensor;
  }
  const z = tf.add(matMul2D(x, w, false, false), b);
  switch (activation) {
    case "linear":
      return z;
    case "tanh":
      return tf.tanh(z);
    case "relu":
      return tf.relu(z);
    case "sigmoid":
      return tf.sigmoid(z);
    case "elu":
      return tf.elu(z);
    case "leakyRelu":
      return tf.leakyRelu(z, alpha);
  }
}

/**
 * The gradients of y = dense(x, W, b, activation, alpha) from dy = dL/dy:
 * d = dy act'(.) (read off y: tanh 1 - y^2, sigmoid y (1 - y), relu and
 * leakyRelu step(y, alpha), elu EluGrad), then dx = d W^T, dW = x^T d and
 * db = the sum of d over the batch. `y` may be null for "linear".
 *
 * On wasm one kernel with three outputs; elsewhere tfjs's ops (for tanh
 * `dy - (dy y) y`, without a tensor for the 1). The same bits either way.
 * Its own gradient is not defined: for first-order gradients written by
 * hand (`tf.customGrad`), as lib/nn.ts's `fastMlpApply` does.
 *
 * @throws ArgumentError for shapes that do not fit, another dtype, or an unknown activation
 */
export function denseGrad(
  dy: tf.Tensor,
  x: tf.Tensor,
  w: tf.Tensor,
  y: tf.Tensor | null,
  activation: DenseActivation = "linear",
  alpha = 0,
): DenseGradients {
  checkDenseGrad(dy, x, w, y, activation, alpha);
  if (onWasm(DENSE_GRAD) && untaped()) {
    const inputs: tf.NamedTensorMap = { dy, x, w };
    if (y !== null && activation !== "linear") inputs.y = y;
    const [dx, dw, db] = tf.engine().runKernel(DENSE_GRAD, inputs, {
      activation,
      alpha,
    }) as unknown as tf.Tensor[];
    return { dx, dw, db };
  }
  const d = activationGrad(dy, y!, activation, alpha);
  return {
    dx: matMul2D(d, w, false, true),
    dw: matMul2D(x, d, true, false),
    db: tf.sum(d, 0),
  };
}

/** dy act'(.) from act's output y, with tfjs's ops. */
function activationGrad(
  dy: tf.Tensor,
  y: tf.Tensor,
  activation: DenseActivation,
  alpha: number,
): tf.Tensor {
  switch (activation) {
    case "linear":
      return dy;
    case "tanh": // dy (1 - y^2), without a tensor for the 1
      return tf.sub(dy, tf.mul(tf.mul(dy, y), y));
    case "sigmoid": { // dy y (1 - y)
      const dyy = tf.mul(dy, y);
      return tf.sub(dyy, tf.mul(dyy, y));
    }
    case "relu": // step(y) is 1 where y > 0, else 0 (as tfjs's relu gradient)
      return tf.mul(dy, tf.step(y, 0));
    case "leakyRelu": // 1 where y > 0, else alpha
      return tf.mul(dy, tf.step(y, alpha));
    case "elu":
      return tf.engine().runKernel("EluGrad", { dy, y }) as tf.Tensor;
  }
}

/** a b with optional transposes, on 2-D tensors, without tf.matMul's reshapes. */
export function matMul2D(
  a: tf.Tensor,
  b: tf.Tensor,
  transposeA: boolean,
  transposeB: boolean,
): tf.Tensor {
  return tf.engine().runKernel("BatchMatMul", { a, b }, {
    transposeA,
    transposeB,
  }) as tf.Tensor;
}

/**
 * The registered gradient of the dense kernel, for `dense` under a
 * gradient tape: the fused gradient kernel, or tfjs's ops for a gradient
 * of a gradient.
 */
function registerDenseGradient(): void {
  if (tf.getGradient(DENSE)) return;
  tf.registerGradient({
    kernelName: DENSE,
    inputsToSave: ["x", "w"],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [x, w, y] = saved;
      const { activation, alpha } = attrs as unknown as DenseAttrs;
      const g = denseGrad(dy as tf.Tensor, x, w, y, activation, alpha);
      return { x: () => g.dx, w: () => g.dw, b: () => g.db };
    },
  });
}

/** x [batch, in] and w [in, out], float32; a known activation. */
function checkOperands(
  where: string,
  x: tf.Tensor,
  w: tf.Tensor,
  activation: DenseActivation,
  alpha: number,
): void {
  for (const [name, t] of [["x", x], ["w", w]] as const) {
    if (!(t instanceof tf.Tensor) || t.dtype !== "float32" || t.rank !== 2) {
      throw new ArgumentError(where, `${name} must be a float32 2-D tf.Tensor`);
    }
  }
  if (x.shape[1] !== w.shape[0]) {
    throw new ArgumentError(
      where,
      `x [${x.shape}] and w [${w.shape}] do not fit: x [batch, in], w [in, out]`,
    );
  }
  if (!DENSE_ACTIVATIONS.includes(activation)) {
    throw new ArgumentError(
      where,
      `activation must be one of ${DENSE_ACTIVATIONS.join(", ")}, got ${
        String(activation)
      }`,
    );
  }
  if (activation === "leakyRelu" && !(alpha >= 0)) {
    throw new ArgumentError(where, `alpha must be >= 0, got ${alpha}`);
  }
}

function checkDense(
  x: tf.Tensor,
  w: tf.Tensor,
  b: tf.Tensor,
  activation: DenseActivation,
  alpha: number,
): void {
  checkOperands("dense", x, w, activation, alpha);
  if (
    !(b instanceof tf.Tensor) || b.dtype !== "float32" ||
    !tf.util.arraysEqual(b.shape, [w.shape[1]!])
  ) {
    throw new ArgumentError(
      "dense",
      `b must be a float32 tf.Tensor of shape [${w.shape[1]}] (w's columns)`,
    );
  }
}

function checkDenseGrad(
  dy: tf.Tensor,
  x: tf.Tensor,
  w: tf.Tensor,
  y: tf.Tensor | null,
  activation: DenseActivation,
  alpha: number,
): void {
  checkOperands("denseGrad", x, w, activation, alpha);
  const shape = [x.shape[0]!, w.shape[1]!];
  for (const [name, t] of [["dy", dy], ["y", y]] as const) {
    if (name === "y" && activation === "linear") continue;
    if (
      !(t instanceof tf.Tensor) || t.dtype !== "float32" ||
      !tf.util.arraysEqual(t.shape, shape)
    ) {
      throw new ArgumentError(
        "denseGrad",
        `${name} must be a float32 tf.Tensor of shape [${shape}] (x W)`,
      );
    }
  }
}
