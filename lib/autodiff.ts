/**
 * The detach tricks. PyTorch has `.detach()`; tfjs does not, so the course
 * builds it from `tf.customGrad`: a function whose forward value and
 * backward rule are given separately.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { ArgumentError, checkTensor } from "./validate.ts";

/** tf.customGrad's argument type (not exported by tfjs under a name). */
type CustomGradientFunc = Parameters<typeof tf.customGrad>[0];

/**
 * sg(x): the value of `x`, with zero gradient. What `.detach()` does in
 * PyTorch: the tape sees a constant.
 */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  checkTensor("stopGradient", "x", x);
  const f = tf.customGrad(
    ((a: tf.Tensor) => ({
      value: a.clone(),
      gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
    })) as unknown as CustomGradientFunc,
  );
  return f(x) as T;
}

/**
 * The straight-through estimator: the forward value is `q` (e.g. the
 * quantized vector), the backward pass copies the upstream gradient to `h`
 * unchanged and gives `q` none. Mathematically `h + sg(q - h)`; built
 * directly so the value is exactly `q` (no rounding from adding and
 * subtracting `h`).
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
  // customGrad's typing lists inputs as Tensor | GradSaveFunc; these are tensors.
  const f = tf.customGrad(
    ((_hh: tf.Tensor, qq: tf.Tensor) => ({
      value: qq.clone(),
      gradFunc: (dy: tf.Tensor) => [dy.clone(), tf.zerosLike(qq)],
    })) as unknown as CustomGradientFunc,
  );
  return f(h, q) as T;
}
