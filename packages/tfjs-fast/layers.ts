/**
 * tfjs-layers' `Dense` and `Conv2D` with gradients that compute only what
 * the caller differentiates (`useFastLayers`, installed by `initBackend`).
 *
 * Without an activation in the layer, both run a fused op
 * (`tf.fused.matMul`, `tf.fused.conv2d`) whose gradient is a
 * `tf.customGrad`: it computes the gradients for the input, the weights
 * and the bias every time, whether or not anything asked for them. So a
 * GAN's discriminator step also computes the gradient with respect to the
 * images (its first layer's dL/dx), and its generator step the gradients
 * of every discriminator weight, none of which is used: ~20% of the
 * products of an MLP GAN step; an encoder's first convolution computes
 * the input gradient into its images. A kernel's registered gradient is
 * lazy instead: tfjs calls only the parts for the inputs on the way to
 * what is differentiated, as PyTorch's autograd does.
 *
 * A patched layer runs one kernel (kernels/layers.ts: the same
 * `_FusedMatMul` or `FusedConv2D` tfjs would run, so the same bits,
 * without the reshapes around it) whose gradient is tfjs's own kernels
 * (the products or the two convolution gradients, and the sum for the
 * bias), each only when asked for; they have gradients of their own, so
 * gradients of gradients work as before. Any other case (an activation
 * in the layer, no bias, channels first, dilation, another rank or dtype,
 * another backend) takes tfjs's own code. Tested bit for bit against it
 * (tests/layers.test.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { matMul2D } from "./dense.ts";
import {
  LAYERS_CONV2D,
  LAYERS_DENSE,
  type LayersConv2DAttrs,
} from "./kernels/layers.ts";
import { onWasm } from "./ops.ts";
import { checkBoolean } from "./options.ts";

/** What the patched calls read of a tfjs-layers Dense or Conv2D. */
interface WeightedLayer {
  activation: { getClassName(): string } | null;
  useBias: boolean;
  kernel: { read(): tf.Tensor } | null;
  bias: { read(): tf.Tensor } | null;
  invokeCallHook(inputs: unknown, kwargs: unknown): void;
  // Conv2D's
  strides?: number[];
  padding?: string;
  dataFormat?: string;
  dilationRate?: number | number[];
}

type Call = (
  this: WeightedLayer,
  inputs: tf.Tensor | tf.Tensor[],
  kwargs: unknown,
) => tf.Tensor | tf.Tensor[];

/** A tfjs-layers class, from its serialization registry. */
function layerClass(name: string): { prototype: { call: Call } } {
  return tf.serialization.SerializationMap.getMap()
    .classNameMap[name][0] as unknown as { prototype: { call: Call } };
}

const denseClass = layerClass("Dense");
const conv2dClass = layerClass("Conv2D");
/** tfjs's own calls, kept before any patch (Conv2D's is Conv's). */
const tfjsDenseCall: Call = denseClass.prototype.call;
const tfjsConv2dCall: Call = conv2dClass.prototype.call;

/** x W + b as one kernel, differentiable with a lazy gradient. */
function layersDense(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (!tf.getGradient(LAYERS_DENSE)) {
    tf.registerGradient({
      kernelName: LAYERS_DENSE,
      inputsToSave: ["x", "w"],
      // Each part runs only when tfjs asks for it: the products and the sum
      // of tf.fused.matMul's gradient (there on 3-D views: the same bits).
      gradFunc: (dy, [x, w]) => ({
        x: () => matMul2D(dy as tf.Tensor, w, false, true),
        w: () => matMul2D(x, dy as tf.Tensor, true, false),
        b: () => tf.sum(dy as tf.Tensor, 0),
      }),
    });
  }
  return tf.engine().runKernel(LAYERS_DENSE, { x, w, b }) as tf.Tensor;
}

/** conv2d(x, filter) + b (NHWC) as one kernel, with a lazy gradient. */
function layersConv2D(
  x: tf.Tensor,
  filter: tf.Tensor,
  b: tf.Tensor,
  attrs: LayersConv2DAttrs,
): tf.Tensor {
  if (!tf.getGradient(LAYERS_CONV2D)) {
    tf.registerGradient({
      kernelName: LAYERS_CONV2D,
      inputsToSave: ["x", "filter"],
      // tf.fused.conv2d's gradient, part by part, with the attributes its
      // ops give the kernels.
      gradFunc: (dys, [x, filter], a) => {
        const dy = dys as tf.Tensor;
        const { strides, pad } = a as unknown as LayersConv2DAttrs;
        const common = { strides, pad, dataFormat: "NHWC" };
        return {
          x: () =>
            tf.engine().runKernel("Conv2DBackpropInput", { dy, filter }, {
              ...common,
              inputShape: x.shape,
            } as unknown as tf.NamedAttrMap) as tf.Tensor,
          filter: () =>
            tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
              ...common,
              filterShape: filter.shape,
            } as unknown as tf.NamedAttrMap) as tf.Tensor,
          b: () => tf.sum(dy, [0, 1, 2]),
        };
      },
    });
  }
  return tf.engine().runKernel(
    LAYERS_CONV2D,
    { x, filter, b },
    attrs as unknown as tf.NamedAttrMap,
  ) as tf.Tensor;
}

/**
 * The one float32 input of `rank`, and the layer's float32 kernel and
 * bias, when the layer has no activation and a bias and the kernel runs
 * here; else null.
 */
function operands(
  layer: WeightedLayer,
  inputs: tf.Tensor | tf.Tensor[],
  rank: number,
  kernel: string,
): [tf.Tensor, tf.Tensor, tf.Tensor] | null {
  const x = Array.isArray(inputs) && inputs.length === 1 ? inputs[0] : inputs;
  if (!(x instanceof tf.Tensor) || x.rank !== rank || x.dtype !== "float32") {
    return null;
  }
  if (layer.activation?.getClassName() !== "linear") return null;
  if (!layer.useBias || layer.kernel === null || layer.bias === null) {
    return null;
  }
  if (!onWasm(kernel)) return null;
  const w = layer.kernel.read();
  const b = layer.bias.read();
  if (w.dtype !== "float32" || w.rank !== rank || b.dtype !== "float32") {
    return null;
  }
  const inner = rank === 2 ? w.shape[0] : w.shape[2];
  const outer = w.shape[rank - 1];
  if (x.shape[rank - 1] !== inner || b.rank !== 1 || b.shape[0] !== outer) {
    return null;
  }
  return [x, w, b];
}

/** `Dense.call` with the lazy gradient where it fits, else tfjs's own. */
const fastDenseCall: Call = function (this: WeightedLayer, inputs, kwargs) {
  const xwb = operands(this, inputs, 2, LAYERS_DENSE);
  if (xwb === null) return tfjsDenseCall.call(this, inputs, kwargs);
  return tf.tidy(() => {
    this.invokeCallHook(inputs, kwargs);
    return layersDense(...xwb);
  });
};

/** `Conv2D.call` with the lazy gradient where it fits, else tfjs's own. */
const fastConv2dCall: Call = function (this: WeightedLayer, inputs, kwargs) {
  const xwb = operands(this, inputs, 4, LAYERS_CONV2D);
  const { strides = [], padding, dataFormat, dilationRate = 1 } = this;
  const dilations = [dilationRate].flat();
  if (
    xwb === null || dataFormat !== "channelsLast" ||
    (padding !== "same" && padding !== "valid") || strides.length !== 2 ||
    !dilations.every((d) => d === 1)
  ) {
    return tfjsConv2dCall.call(this, inputs, kwargs);
  }
  return tf.tidy(() =>
    layersConv2D(...xwb, {
      strides: [strides[0], strides[1]],
      pad: padding,
    })
  );
};

/**
 * Makes every tfjs-layers `Dense` and `Conv2D` (what `tf.layers.dense`
 * and `tf.layers.conv2d` make) use the lazy gradients (`true`, what
 * `initBackend` does) or tfjs's own code again (`false`). The values and
 * gradients are the same bits either way (tests/layers.test.ts).
 *
 * @example
 * useFastLayers(false); // measure tfjs's own layers
 */
export function useFastLayers(on: boolean): void {
  checkBoolean("useFastLayers", "on", on);
  denseClass.prototype.call = on ? fastDenseCall : tfjsDenseCall;
  conv2dClass.prototype.call = on ? fastConv2dCall : tfjsConv2dCall;
}

/** Whether tfjs-layers' Dense and Conv2D run the patched calls (`useFastLayers`). */
export function fastLayersInUse(): boolean {
  return denseClass.prototype.call === fastDenseCall &&
    conv2dClass.prototype.call === fastConv2dCall;
}
