/**
 * Fused ops for small-tensor code, where tfjs's ~4 µs of bookkeeping per
 * kernel outweighs the arithmetic (a neural ODE's solver steps on 20 x 2
 * states): `linearCombination`, and Pow's gradient for a scalar exponent
 * (`useFusedPowGradient`, installed by `initBackend`). On wasm each is one
 * kernel (kernels/combination.ts); elsewhere tfjs's own ops. The same
 * bits either way (tests/combination.test.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { ArgumentError } from "./errors.ts";
import { checkBoolean } from "./options.ts";
import {
  BROADCAST_SCALAR,
  LINEAR_COMBINATION,
  POW_GRAD,
  SCALE_MANY,
  termName,
} from "./kernels/combination.ts";

/** Whether `kernel` runs here: on wasm, once initBackend registered it. */
export function onWasm(kernel: string): boolean {
  return tf.getBackend() === "wasm" &&
    tf.getKernel(kernel, "wasm") !== undefined;
}

/**
 * Whether what runs now is kept off the gradient tape: a gradient being
 * computed with no outer tape recording it. The fused gradient kernels
 * have no gradient of their own, so a gradient of a gradient takes
 * tfjs's ops.
 */
export function untaped(): boolean {
  const { gradientDepth, kernelDepth } = tf.engine().state;
  return gradientDepth === 0 || kernelDepth > 0;
}

/**
 * base + c_0 x_0 + c_1 x_1 + ... for float32 tensors of one shape (`base`
 * may be null: the sum alone; no terms: a copy of base), differentiable
 * with respect to base and every x_i (dy, and c_i dy).
 *
 * tfjs would run a Multiply per term, an AddN and an Add, and under a
 * gradient tape a Multiply per term again in the backward pass. On wasm
 * this is one kernel, and its gradient one kernel; elsewhere it runs
 * those tfjs ops. Both round every product to float32 and add the
 * products in order (from 0 when there are several) before base, so the
 * values are the same bits as the tfjs ops.
 *
 * @example
 * const y1 = linearCombination(y, [k1, k2], [h / 2, h / 2]); // y + h (k1 + k2) / 2
 *
 * @throws ArgumentError when the terms and coefficients differ in number, or the tensors are not float32 of one shape
 */
export function linearCombination(
  base: tf.Tensor | null,
  xs: tf.Tensor[],
  coefficients: number[],
): tf.Tensor {
  checkCombination(base, xs, coefficients);
  if (xs.length === 0) return base!.clone();
  if (onWasm(LINEAR_COMBINATION)) {
    // One kernel; its gradient (registered below) one more.
    registerCombinationGradient();
    const inputs: tf.NamedTensorMap = base ? { base } : {};
    xs.forEach((x, i) => inputs[termName(i)] = x);
    return tf.engine().runKernel(LINEAR_COMBINATION, inputs, {
      coefficients,
    }) as tf.Tensor;
  }
  // tfjs's ops, in one custom-gradient op so that the backward pass is
  // one multiply per term too.
  const inputs = base ? [base, ...xs] : xs;
  const op = tf.customGrad(
    ((...args: unknown[]) => {
      const ts = args.slice(0, inputs.length) as tf.Tensor[];
      const terms = (base ? ts.slice(1) : ts).map((x, i) =>
        tf.mul(x, coefficients[i])
      );
      const sum = terms.length === 1 ? terms[0] : tf.addN(terms);
      return {
        value: base ? tf.add(ts[0], sum) : sum,
        // dy itself may go to base: tfjs accumulates input gradients into
        // new tensors and reads an output's gradient only once.
        gradFunc: (dy: tf.Tensor) => [
          ...(base ? [dy] : []),
          ...coefficients.map((c) => tf.mul(dy, c)),
        ],
      };
    }) as Parameters<typeof tf.customGrad>[0],
  );
  return op(...inputs);
}

/**
 * The gradient of the fused kernel: dy for base (dy itself, as above) and
 * c_i dy for each x_i, all from one kernel. Made here, not in the
 * engine's per-input scopes, so that outputs nobody asks for (an input off
 * the path to the gradient's sources) are freed with the backward pass.
 */
type GradientMap = Record<string, () => tf.Tensor>;

function combinationGradient(
  dy: tf.Tensor | tf.Tensor[],
  _saved: tf.Tensor[],
  attrs?: tf.NamedAttrMap,
): GradientMap {
  const d = dy as tf.Tensor;
  const { coefficients: c } = attrs as unknown as { coefficients: number[] };
  const scaled = onWasm(SCALE_MANY) && untaped()
    ? tf.engine().runKernel(SCALE_MANY, { dy: d }, {
      coefficients: c,
    }) as unknown as tf.Tensor[]
    : c.map((ci) => tf.mul(d, ci));
  const grads: GradientMap = { base: () => d };
  scaled.forEach((g, i) => grads[termName(i)] = () => g);
  return grads;
}

function registerCombinationGradient(): void {
  if (tf.getGradient(LINEAR_COMBINATION)) return;
  tf.registerGradient({
    kernelName: LINEAR_COMBINATION,
    gradFunc: combinationGradient,
  });
}

function checkCombination(
  base: tf.Tensor | null,
  xs: tf.Tensor[],
  coefficients: number[],
): void {
  const where = "linearCombination";
  if (!Array.isArray(xs) || !Array.isArray(coefficients)) {
    throw new ArgumentError(where, "xs and coefficients must be arrays");
  }
  if (xs.length !== coefficients.length) {
    throw new ArgumentError(
      where,
      `one coefficient per term: ${xs.length} terms, ${coefficients.length} coefficients`,
    );
  }
  if (base === null && xs.length === 0) {
    throw new ArgumentError(where, "nothing to combine: no base and no terms");
  }
  const first = base ?? xs[0];
  for (const [i, t] of [base, ...xs].entries()) {
    if (t === null) continue;
    const name = i === 0 ? "base" : `xs[${i - 1}]`;
    if (!(t instanceof tf.Tensor) || t.dtype !== "float32") {
      throw new ArgumentError(where, `${name} must be a float32 tf.Tensor`);
    }
    if (!tf.util.arraysEqual(t.shape, first.shape)) {
      throw new ArgumentError(
        where,
        `${name} has shape [${t.shape}], not [${first.shape}]: every tensor must have one shape`,
      );
    }
  }
  coefficients.forEach((c, i) => {
    if (typeof c !== "number") {
      throw new ArgumentError(where, `coefficients[${i}] must be a number`);
    }
  });
}

/** tfjs's own gradient of Pow, kept before any change. */
let tfjsPowGradient: tf.GradConfig | undefined;

/**
 * Routes the gradient of `tf.pow(a, b)` with respect to a through one
 * kernel (`ProjectPowGrad`) on wasm when b is a float32 scalar, instead of
 * tfjs's Cast, Sub, Pow, two Multiply and a Reshape; the same kernels'
 * arithmetic in the same order, so the same bits. The forward pass saves
 * a and b, not also the output as tfjs does (one copy fewer per pow): the
 * gradient with respect to b, the only one that reads it, recomputes it
 * (the same bits). Everything else (other backends, a tensor exponent,
 * the gradient with respect to b, gradients of gradients) runs tfjs's
 * code. `on = false` restores tfjs's registration (switch between
 * gradient computations, not while a tape is recording). `initBackend`
 * turns it on.
 */
export function useFusedPowGradient(on: boolean): void {
  tfjsPowGradient ??= tf.getGradient("Pow");
  const original = tfjsPowGradient;
  if (!original) return;
  if (!on) {
    tf.registerGradient(original);
    return;
  }
  tf.registerGradient({
    kernelName: "Pow",
    inputsToSave: ["a", "b"],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved;
      const tfjs = (y: tf.Tensor | null) =>
        original.gradFunc(dy, [a, b, y as tf.Tensor], attrs);
      const d = dy as tf.Tensor;
      const fused = a.dtype === "float32" && b.dtype === "float32" &&
        b.rank === 0 && d.dtype === "float32" &&
        tf.util.arraysEqual(d.shape, a.shape) && onWasm(POW_GRAD) &&
        untaped();
      return {
        // tfjs's gradient of a does not read the output.
        a: fused
          ? () => tf.engine().runKernel(POW_GRAD, { dy: d, a, b }) as tf.Tensor
          : tfjs(null).a,
        b: () => tfjs(tf.pow(a, b)).b(),
      };
    },
  });
}

/** Whether Pow's gradient takes the fused kernel where it can. */
export function fusedPowGradientInUse(): boolean {
  return tfjsPowGradient !== undefined &&
    tf.getGradient("Pow") !== tfjsPowGradient;
}

/** tfjs's own gradients of Sum and Mean, kept before any change. */
let tfjsReductionGradients: Record<string, tf.GradConfig> | undefined;

/**
 * Routes the gradient of a float32 `tf.sum` or `tf.mean` whose result is
 * one number (a loss: every full reduction) through one kernel on wasm
 * that fills dL/dx with dy (or dy / n), instead of tfjs's dy times a
 * tensor of ones made in JavaScript. That fresh array of the input's size
 * was most of the cost: a 64 x 14 x 14 x 32 convolution output's sum took
 * 6.1 ms forward and back, 1.7 ms with this, on a VM where each fresh
 * page faults at ~10 µs. The same bits: dy * 1 is dy, and Mean's division
 * is the same RealDiv on dy. Other dtypes and shapes, other backends and
 * gradients of gradients run tfjs's code. `on = false` restores tfjs's
 * registrations (switch between gradient computations, not while a tape is
 * recording). `initBackend` turns it on.
 */
export function useFusedReductionGradients(on: boolean): void {
  checkBoolean("useFusedReductionGradients", "on", on);
  tfjsReductionGradients ??= {
    Sum: tf.getGradient("Sum")!,
    Mean: tf.getGradient("Mean")!,
  };
  const { Sum, Mean } = tfjsReductionGradients;
  if (!on) {
    tf.registerGradient(Sum);
    tf.registerGradient(Mean);
    return;
  }
  /** dL/dx as one fill of `value`, when that is dy's broadcast here; else null. */
  const filled = (
    dy: tf.Tensor,
    x: tf.Tensor,
    value: () => tf.Tensor,
  ): (() => tf.Tensor) | null =>
    dy.size === 1 && dy.dtype === "float32" && x.dtype === "float32" &&
      onWasm(BROADCAST_SCALAR) && untaped()
      ? () =>
        tf.engine().runKernel(BROADCAST_SCALAR, { x: value() }, {
          shape: x.shape,
        }) as tf.Tensor
      : null;
  tf.registerGradient({
    kernelName: "Sum",
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const x = filled(dy as tf.Tensor, saved[0], () => dy as tf.Tensor);
      return x ? { x } : Sum.gradFunc(dy, saved, attrs);
    },
  });
  tf.registerGradient({
    kernelName: "Mean",
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const [input] = saved;
      const d = dy as tf.Tensor;
      const x = filled(d, input, () => tf.div(d, input.size / d.size));
      return x ? { x } : Mean.gradFunc(dy, saved, attrs);
    },
  });
}

/** Whether Sum's and Mean's gradients take the fill where they can. */
export function fusedReductionGradientsInUse(): boolean {
  return tfjsReductionGradients !== undefined &&
    tf.getGradient("Sum") !== tfjsReductionGradients.Sum;
}
