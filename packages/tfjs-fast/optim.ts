/**
 * Optimizers. `adam` is tfjs's Adam with its update fused into one pass
 * per variable on the wasm backend.
 *
 * tfjs's `AdamOptimizer` runs about twelve small kernels per variable per
 * step (moments, bias corrections, square root, division, assignments).
 * Each kernel costs ~10 µs of bookkeeping, so a GAN's two optimizers spent
 * ~2.6 ms of a 16 ms training step there. The fused update
 * (kernels/adam_wasm.ts) does the same float32 arithmetic in the same
 * order with correctly rounded operations, so it gives the same bits as
 * `tf.train.adam`; tests/optim.test.ts checks that. `initBackend` installs
 * it in `tf.AdamOptimizer` itself (`useFusedAdam`), so `tf.train.adam` and
 * tfjs-layers' `"adam"` get it too.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WasmBackendLike } from "./kernels/fast_kernels.ts";
import { type AdamConstants, adamUpdateFor } from "./kernels/adam_wasm.ts";
import { ArgumentError } from "./errors.ts";
import { backendMemory } from "./kernels/wasm_module.ts";

const ADAM_KERNEL = "ProjectFusedAdam";

const f = Math.fround;

/**
 * One Adam step for one variable on the wasm heap: returns the new value,
 * first moment and second moment as new outputs.
 */
function fusedAdamKernel(
  { inputs, backend, attrs }: {
    inputs: tf.NamedTensorInfoMap;
    backend: unknown;
    attrs?: tf.NamedAttrMap;
  },
): tf.TensorInfo[] {
  const wasm = backend as WasmBackendLike;
  const { x, m, v, g } = inputs as Record<string, tf.TensorInfo>;
  const xOut = wasm.makeOutput([...x.shape], "float32");
  const mOut = wasm.makeOutput([...x.shape], "float32");
  const vOut = wasm.makeOutput([...x.shape], "float32");
  const at = (t: tf.TensorInfo) => wasm.typedArrayFromHeap(t).byteOffset;
  adamUpdateFor(backendMemory(backend)!)(
    {
      x: at(x),
      m: at(m),
      v: at(v),
      g: at(g),
      xOut: at(xOut),
      mOut: at(mOut),
      vOut: at(vOut),
    },
    tf.util.sizeFromShape(x.shape),
    attrs as unknown as AdamConstants,
  );
  return [xOut, mOut, vOut];
}

function registerFusedAdam(): void {
  if (tf.getKernel(ADAM_KERNEL, "wasm")) return;
  tf.registerKernel({
    kernelName: ADAM_KERNEL,
    backendName: "wasm",
    kernelFunc: fusedAdamKernel as unknown as tf.KernelFunc,
  });
}

/** The parts of tfjs's AdamOptimizer (private in its typings) reused here. */
interface AdamState {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: { originalName: string; variable: tf.Variable }[];
  accumulatedSecondMoment: { originalName: string; variable: tf.Variable }[];
  beta1: number;
  beta2: number;
  learningRate: number;
  epsilon: number;
}

type VariableGradients = Parameters<tf.AdamOptimizer["applyGradients"]>[0];

/**
 * Adam keeps its moments by position: moment i belongs to the variable that
 * was i-th at the first step. An optimizer reused for another model's
 * variables would mix their moments (silently when the shapes agree, a raw
 * tfjs assign error when not): say so instead.
 */
function checkSameVariables(s: AdamState, names: string[]): void {
  for (let i = 0; i < names.length; i++) {
    const kept = s.accumulatedFirstMoment[i]?.originalName;
    if (kept !== undefined && kept !== `${names[i]}/m`) {
      throw new ArgumentError(
        "adam",
        `this optimizer's moment ${i} belongs to variable ${
          kept.replace(/\/m$/, "")
        }, not ${
          names[i]
        }: one optimizer serves one model's variables (make another with adam(...))`,
      );
    }
  }
}

/** tfjs's own `AdamOptimizer.applyGradients`, kept before any patch. */
const tfjsApplyGradients = tf.AdamOptimizer.prototype.applyGradients;

/**
 * `applyGradients` of an `AdamOptimizer` with the fused update: on wasm,
 * for float32 variables, one kernel per variable; anywhere else tfjs's own
 * code. The same state (moments, accBeta1/2, iterations) either way.
 */
function fusedApplyGradients(
  this: tf.AdamOptimizer,
  variableGradients: VariableGradients,
): void {
  const names = Array.isArray(variableGradients)
    ? variableGradients.map((v) => v.name)
    : Object.keys(variableGradients);
  checkSameVariables(this as unknown as AdamState, names);
  const gradientOf = (name: string, i: number) =>
    Array.isArray(variableGradients)
      ? variableGradients[i].tensor
      : variableGradients[name];
  const fusable = tf.getBackend() === "wasm" &&
    backendMemory(tf.backend()) !== null &&
    names.every((name, i) => {
      const g = gradientOf(name, i);
      return g == null ||
        (g.dtype === "float32" &&
          tf.engine().registeredVariables[name]?.dtype === "float32");
    });
  if (!fusable) {
    tfjsApplyGradients.call(this, variableGradients);
    return;
  }
  registerFusedAdam();
  const s = this as unknown as AdamState;
  tf.tidy(() => {
    const [acc1, acc2] = [s.accBeta1, s.accBeta2].map((t) => t.dataSync()[0]);
    const attrs: AdamConstants = {
      beta1: f(s.beta1),
      oneMinusBeta1: f(1 - s.beta1),
      beta2: f(s.beta2),
      oneMinusBeta2: f(1 - s.beta2),
      oneMinusAccBeta1: f(1 - acc1),
      oneMinusAccBeta2: f(1 - acc2),
      epsilon: f(s.epsilon),
      negLearningRate: f(-s.learningRate),
    };
    names.forEach((name, i) => {
      const value = tf.engine().registeredVariables[name];
      if (s.accumulatedFirstMoment[i] == null) {
        s.accumulatedFirstMoment[i] = {
          originalName: `${name}/m`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        };
      }
      if (s.accumulatedSecondMoment[i] == null) {
        s.accumulatedSecondMoment[i] = {
          originalName: `${name}/v`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        };
      }
      const gradient = gradientOf(name, i);
      if (gradient == null) return;
      const m = s.accumulatedFirstMoment[i].variable;
      const v = s.accumulatedSecondMoment[i].variable;
      const [x1, m1, v1] = tf.engine().runKernel(
        ADAM_KERNEL,
        { x: value, m, v, g: gradient },
        attrs as unknown as tf.NamedAttrMap,
      ) as tf.Tensor[];
      m.assign(m1);
      v.assign(v1);
      value.assign(x1);
    });
    s.accBeta1.assign(tf.mul(s.accBeta1, s.beta1));
    s.accBeta2.assign(tf.mul(s.accBeta2, s.beta2));
  });
  this.incrementIterations();
}

/**
 * Makes every `tf.AdamOptimizer` use the fused update (`true`, what
 * `initBackend` does) or tfjs's own code again (`false`): ordinary tfjs
 * code (`tf.train.adam`, tfjs-layers' `optimizer: "adam"`) then gets the
 * fast path without importing `adam`. The results are the same bits
 * either way (tests/optim.test.ts); `FusedAdamOptimizer` fuses regardless.
 */
export function useFusedAdam(on: boolean): void {
  tf.AdamOptimizer.prototype.applyGradients = on
    ? fusedApplyGradients
    : tfjsApplyGradients;
}

/** Whether `tf.AdamOptimizer` runs the fused update (`useFusedAdam`). */
export function fusedAdamInUse(): boolean {
  return tf.AdamOptimizer.prototype.applyGradients === fusedApplyGradients;
}

/**
 * tfjs's Adam with a fused update on the wasm backend. Same state, same
 * saved weights (`getWeights`/`setWeights`), same results; other backends
 * and non-float32 variables take tfjs's own path. Since `initBackend`
 * patches `tf.AdamOptimizer` itself (`useFusedAdam`), `tf.train.adam` is
 * as fast; this class fuses even when the patch is off.
 */
export class FusedAdamOptimizer extends tf.AdamOptimizer {
  /** Same class name as tfjs's Adam, so saved optimizers interchange. */
  static override get className(): string {
    return "Adam";
  }

  override applyGradients(variableGradients: VariableGradients): void {
    fusedApplyGradients.call(this, variableGradients);
  }
}

/**
 * Adam (Kingma & Ba), as `tf.train.adam` with the same defaults
 * (beta1 0.9, beta2 0.999, epsilon the backend's, 1e-7 in float32), fused
 * on wasm.
 */
export function adam(
  learningRate = 0.001,
  beta1 = 0.9,
  beta2 = 0.999,
  epsilon?: number,
): FusedAdamOptimizer {
  const where = "adam";
  if (!(Number.isFinite(learningRate) && learningRate > 0)) {
    throw new ArgumentError(
      where,
      `learningRate must be a positive number, got ${learningRate}`,
    );
  }
  for (const [name, beta] of [["beta1", beta1], ["beta2", beta2]] as const) {
    if (!(beta >= 0 && beta < 1)) {
      throw new ArgumentError(where, `${name} must be in [0, 1), got ${beta}`);
    }
  }
  if (epsilon !== undefined && !(Number.isFinite(epsilon) && epsilon > 0)) {
    throw new ArgumentError(
      where,
      `epsilon must be a positive number, got ${epsilon}`,
    );
  }
  return new FusedAdamOptimizer(learningRate, beta1, beta2, epsilon);
}
