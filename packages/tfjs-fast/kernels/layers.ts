/**
 * The forward kernels of tfjs-layers' `Dense` and `Conv2D` as layers.ts
 * runs them: each is the very kernel tfjs would run (`_FusedMatMul`,
 * `FusedConv2D`, the ones registered for wasm), so the same bits, under a
 * name of its own whose registered gradient is lazy (layers.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  type KernelArgs,
  type KernelFn,
  registeredKernel,
} from "./fast_kernels.ts";

/** x W + b as tfjs-layers' Dense computes it. */
export const LAYERS_DENSE = "ProjectLayersDense";
/** conv2d(x, filter) + b as tfjs-layers' Conv2D computes it. */
export const LAYERS_CONV2D = "ProjectLayersConv2D";

/** What LAYERS_CONV2D needs besides its inputs. */
export interface LayersConv2DAttrs {
  strides: [number, number];
  pad: "same" | "valid";
}

/**
 * x W + b for x [m, k], W [k, n], b [n]: `_FusedMatMul` with no
 * activation on the operands as [1, m, k] and [1, k, n], as
 * `tf.fused.matMul` calls it; without the reshapes around it.
 */
function layersDense({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const { x, w, b } = inputs as Record<string, tf.TensorInfo>;
  const [m, k] = x.shape;
  const n = w.shape[1];
  // Views of the same data: the kernel only reads them.
  const out = registeredKernel("_FusedMatMul")({
    inputs: {
      a: { ...x, shape: [1, m, k] },
      b: { ...w, shape: [1, k, n] },
      bias: b,
    },
    backend,
    attrs: {
      transposeA: false,
      transposeB: false,
      activation: "linear",
      leakyreluAlpha: 0.2,
    },
  });
  return { ...out, shape: [m, n] };
}

/** conv2d + bias for NHWC x: `FusedConv2D` with the attributes tf.fused.conv2d gives it. */
function layersConv2D(
  { inputs, backend, attrs }: KernelArgs,
): tf.TensorInfo {
  const { x, filter, b } = inputs as Record<string, tf.TensorInfo>;
  const { strides, pad } = attrs as unknown as LayersConv2DAttrs;
  return registeredKernel("FusedConv2D")({
    inputs: { x, filter, bias: b },
    backend,
    attrs: {
      strides,
      pad,
      dataFormat: "NHWC",
      dilations: [1, 1],
      dimRoundingMode: undefined,
      activation: "linear",
      leakyreluAlpha: undefined,
    } as unknown as tf.NamedAttrMap,
  });
}

/** The kernels, by name (registered for wasm by kernels/wasm_kernels.ts). */
export const LAYERS_KERNELS: Readonly<Record<string, KernelFn>> = {
  [LAYERS_DENSE]: layersDense,
  [LAYERS_CONV2D]: layersConv2D,
};
