/**
 * The detach tricks. PyTorch has `.detach()`; tfjs does not, so the course
 * builds it from `tf.customGrad`: a function whose forward value and
 * backward rule are given separately.
 *
 * ```ts
 * const y = x.square().add(stopGradient(x).pow(3)); // dy/dx = 2x
 * const hq = straightThrough(h, q);                 // value q, gradient to h
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { ArgumentError, checkTensor } from "./validate.ts";

/** tf.customGrad's argument type (not exported by tfjs under a name). */
type CustomGradientFunc = Parameters<typeof tf.customGrad>[0];

/** sg(x): the value of x, and no gradient: the tape sees a constant. */
const sg = tf.customGrad(
  ((x: tf.Tensor) => ({
    value: x.clone(),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  })) as unknown as CustomGradientFunc,
);

/**
 * The straight-through estimator: the value of q, the gradient of h.
 * Mathematically h + sg(q - h); written as its own rule so that the value
 * is exactly q (adding and subtracting h would round).
 */
const passStraightThrough = tf.customGrad(
  ((_h: tf.Tensor, q: tf.Tensor) => ({
    value: q.clone(),
    gradFunc: (dy: tf.Tensor) => [dy.clone(), tf.zerosLike(q)],
  })) as unknown as CustomGradientFunc,
);

/**
 * sg(x): the value of `x`, with zero gradient. What `.detach()` does in
 * PyTorch: the tape sees a constant. Returns a new tensor.
 *
 * ```ts
 * tf.grad((a) => a.square().add(stopGradient(a).pow(3)).sum())(x); // 2x
 * ```
 */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  checkTensor("stopGradient", "x", x);
  return sg(x) as T;
}

/**
 * The straight-through estimator: the forward value is `q` (e.g. the
 * quantized vector), the backward pass copies the upstream gradient to `h`
 * unchanged and gives `q` none. Mathematically `h + sg(q - h)`, but the
 * value is exactly `q`. Returns a new tensor.
 *
 * @throws ArgumentError when h and q are not tensors of the same shape
 */
export function straightThrough<T extends tf.Tensor>(h: T, q: tf.Tensor): T {
  checkTensor("straightThrough", "h", h);
  checkTensor("straightThrough", "q", q);
  if (h.shape.join(",") !== q.shape.join(",")) {
    throw new ArgumentError(
      "straightThrough",
      `h and q must have the same shape, got [${h.shape}] and [${q.shape}]`,
    );
  }
  return passStraightThrough(h, q) as T;
}
