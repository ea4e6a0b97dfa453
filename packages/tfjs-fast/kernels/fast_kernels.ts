/**
 * Faster wasm kernels for the training paths tfjs-backend-wasm 4.22 runs
 * slowly (measured on a 2-core machine, see README.md):
 *
 * - `BatchMatMul` and `_FusedMatMul` with `transposeA`/`transposeB`: the
 *   backend's transposed path runs at 1-2 GFLOP/s against ~28 for the plain
 *   one, and every matMul gradient asks for a transpose. A physical transpose
 *   (the backend's own native `Transpose`) followed by the plain product is
 *   an order of magnitude faster.
 * - `Conv2DBackpropInput` (the input gradient of conv2d, and the forward pass
 *   of conv2dTranspose) runs at ~1 GFLOP/s. Here it is one plain matMul
 *   `dy @ W^T` followed by col2im (a scatter-add of the patch rows back onto
 *   the image) in JavaScript.
 * - `GatherV2`: element-by-element copies (2 ms for 128 rows of 784).
 *   Here: one block copy per gathered slice.
 * - `Sum` over leading axes (bias gradients): a transpose first. Here: row
 *   additions.
 * - With OpenBLAS loaded (kernels/blas_kernels.ts), `BatchMatMul` and
 *   `_FusedMatMul` call its `cblas_sgemm`, transposes included.
 *
 * The wrapped built-ins are captured once, so registering again never wraps
 * a wrapper. Each kernel is tested against the `cpu` backend, values and
 * gradients, in tests/wasm_kernels.test.ts.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { blasBatchMatMul, blasHandles } from "./blas_kernels.ts";

/** The subset of the wasm backend's API these kernels use. */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
  write(values: tf.TypedArray, shape: number[], dtype: tf.DataType): tf.DataId;
  disposeData(dataId: tf.DataId): boolean;
}

/** The argument every kernel function receives. */
export type KernelArgs = {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
};

/** A kernel function as registered with tfjs. */
export type KernelFn = (args: KernelArgs) => tf.TensorInfo;

// The backend's own kernels, captured before the project replaces any.
const builtins = new Map<string, KernelFn>();
const replaced = new WeakSet<KernelFn>();

/**
 * The backend's own kernel `name`, as it was before the project replaced
 * it. Throws when it was replaced before `captureBuiltins` kept it.
 */
export function builtin(name: string): KernelFn {
  let fn = builtins.get(name);
  if (!fn) {
    const k = tf.getKernel(name, "wasm");
    if (!k) throw new Error(`wasm backend has no ${name} kernel`);
    fn = k.kernelFunc as unknown as KernelFn;
    if (replaced.has(fn)) {
      throw new Error(`${name}: the built-in kernel was not captured`);
    }
    builtins.set(name, fn);
  }
  return fn;
}

/**
 * The geometry of a conv2d gradient kernel call (`Conv2DBackpropInput` or
 * `Conv2DBackpropFilter`) from its attributes: tfjs's conv info plus the
 * top/left padding. The input shape comes from the attributes when it is
 * not given (the input gradient's case), the filter shape likewise (the
 * filter gradient's). Only NHWC, the layout tfjs.layers uses, is supported.
 */
export function convBackpropGeometry(
  kernel: string,
  attrs: tf.NamedAttrMap | undefined,
  shapes: { input?: number[]; filter?: number[] },
): tf.backend_util.Conv2DInfo & { padTop: number; padLeft: number } {
  const a = attrs as unknown as {
    strides: [number, number] | number;
    pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
    dataFormat: "NHWC" | "NCHW";
    dimRoundingMode?: "floor" | "round" | "ceil";
    inputShape?: number[];
    filterShape?: number[];
  };
  if (a.dataFormat === "NCHW") {
    throw new Error(`${kernel} (wasm, project kernel): only NHWC is supported`);
  }
  type Shape4 = [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(
    (shapes.input ?? a.inputShape) as Shape4,
    (shapes.filter ?? a.filterShape) as Shape4,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
    false,
    "channelsLast",
  );
  return { ...info, padTop: info.padInfo.top, padLeft: info.padInfo.left };
}

/** The built-ins that `FAST_KERNELS` call. */
const WRAPPED = ["BatchMatMul", "_FusedMatMul", "Transpose", "GatherV2", "Sum"];

/**
 * Captures the backend's built-in kernels that `FAST_KERNELS` wrap, and
 * `more`. Call before registering the replacements (idempotent).
 */
export function captureBuiltins(more: readonly string[] = []): void {
  for (const name of [...WRAPPED, ...more]) builtin(name);
}

/**
 * Fills `out` with `value` when `x` is empty and `out` is not: a reduction
 * over an empty axis, where the built-in kernels leave the output
 * uninitialised (e.g. `tf.zeros([0]).sum()` gave 3.6e-41). `NaN` becomes 0
 * in int32 and bool outputs, as on the cpu backend.
 */
export function fillWhenEmpty(
  x: tf.TensorInfo,
  out: tf.TensorInfo,
  value: number,
  backend: unknown,
): tf.TensorInfo {
  const size = tf.util.sizeFromShape;
  if (size(x.shape) === 0 && size(out.shape) > 0) {
    (backend as WasmBackendLike).typedArrayFromHeap(out).fill(value);
  }
  return out;
}

/** A physical transpose of the last two axes (native wasm Transpose). */
function transposeLast2(x: tf.TensorInfo, backend: unknown): tf.TensorInfo {
  const r = x.shape.length;
  const perm = [...Array(r).keys()];
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return builtin("Transpose")({ inputs: { x }, backend, attrs: { perm } });
}

/**
 * Runs `kernel` with `a` and `b` physically transposed as asked, then with
 * transposeA/transposeB off; the temporaries are released.
 */
function untransposed(
  name: "BatchMatMul" | "_FusedMatMul",
  { inputs, backend, attrs }: KernelArgs,
): tf.TensorInfo {
  const { transposeA, transposeB } = attrs as unknown as {
    transposeA: boolean;
    transposeB: boolean;
  };
  const kernel = builtin(name);
  if (!transposeA && !transposeB) return kernel({ inputs, backend, attrs });
  const wasm = backend as WasmBackendLike;
  const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const at = transposeA ? transposeLast2(a, backend) : a;
  const bt = transposeB ? transposeLast2(b, backend) : b;
  try {
    return kernel({
      inputs: { ...inputs, a: at, b: bt },
      backend,
      attrs: { ...attrs, transposeA: false, transposeB: false },
    });
  } finally {
    if (transposeA) wasm.disposeData(at.dataId);
    if (transposeB) wasm.disposeData(bt.dataId);
  }
}

/** The shapes of a (batched) product op(a) op(b). */
export interface ProductGeometry {
  m: number;
  n: number;
  k: number;
  transposeA: boolean;
  transposeB: boolean;
  /** Batch sizes of a, of b, and of the output (the larger). */
  batchA: number;
  batchB: number;
  batch: number;
  /** Broadcast batch dimensions, then [m, n]. */
  outShape: number[];
}

/** The geometry of op(a) op(b), batch dimensions broadcast as tfjs does. */
export function productGeometry(
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): ProductGeometry {
  const m = transposeA ? a.shape.at(-1)! : a.shape.at(-2)!;
  const k = transposeA ? a.shape.at(-2)! : a.shape.at(-1)!;
  const n = transposeB ? b.shape.at(-2)! : b.shape.at(-1)!;
  const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(
    a.shape.slice(0, -2),
    b.shape.slice(0, -2),
  );
  return {
    m,
    n,
    k,
    transposeA,
    transposeB,
    batchA,
    batchB,
    batch: Math.max(batchA, batchB),
    outShape: [...outer, m, n],
  };
}

function batchMatMul(args: KernelArgs): tf.TensorInfo {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as {
    transposeA: boolean;
    transposeB: boolean;
  };
  const wasm = args.backend as WasmBackendLike;
  const g = productGeometry(a, b, transposeA, transposeB);
  const empty = g.k === 0 || g.m * g.n * g.batch === 0;
  if (a.dtype === "float32" && (empty || blasHandles(a, b))) {
    const out = wasm.makeOutput(g.outShape, "float32");
    // The built-in leaves the output uninitialised when the inner
    // dimension is empty; the product of nothing is 0.
    if (empty) wasm.typedArrayFromHeap(out).fill(0);
    else blasBatchMatMul(a, b, out, g, wasm);
    return out;
  }
  return untransposed("BatchMatMul", args);
}

const ACTIVATION_KERNELS: Record<string, string> = {
  relu: "Relu",
  relu6: "Relu6",
  elu: "Elu",
  sigmoid: "Sigmoid",
  leakyrelu: "LeakyRelu",
  prelu: "Prelu",
};

/**
 * The built-in `_FusedMatMul` adds the bias to the first batch entry only
 * when the batch is larger than 1 (tfjs-backend-wasm 4.22). That case runs
 * as three kernels instead: matMul, bias add, activation; so do an empty
 * inner dimension and every case when the product runs on OpenBLAS
 * (kernels/blas_kernels.ts).
 */
function fusedMatMul(args: KernelArgs): tf.TensorInfo {
  const { a, b, bias, preluActivationWeights } = args.inputs as {
    a: tf.TensorInfo;
    b: tf.TensorInfo;
    bias?: tf.TensorInfo;
    preluActivationWeights?: tf.TensorInfo;
  };
  const { transposeA, transposeB } = args.attrs as unknown as {
    transposeA: boolean;
    transposeB: boolean;
  };
  const { batch, k } = productGeometry(a, b, transposeA, transposeB);
  // With OpenBLAS the product is its sgemm; bias and activation follow.
  // So they do after an empty product, which the built-in leaves
  // uninitialised (batchMatMul fills it with 0).
  if (!blasHandles(a, b) && (bias == null || batch === 1) && k > 0) {
    return untransposed("_FusedMatMul", args);
  }
  const { backend } = args;
  const wasm = backend as WasmBackendLike;
  const { activation, leakyreluAlpha } = args.attrs as unknown as {
    activation: string;
    leakyreluAlpha?: number;
  };
  const run = (
    name: string,
    inputs: tf.NamedTensorInfoMap,
    attrs: tf.NamedAttrMap = {},
  ) =>
    (tf.getKernel(name, "wasm")!.kernelFunc as unknown as KernelFn)({
      inputs,
      backend,
      attrs,
    });
  const product = batchMatMul({
    inputs: { a, b },
    backend,
    attrs: args.attrs,
  });
  let biased = product;
  if (bias != null) {
    biased = run("Add", { a: product, b: bias });
    wasm.disposeData(product.dataId);
  }
  if (activation === "linear" || activation == null) return biased;
  const kernel = ACTIVATION_KERNELS[activation];
  if (!kernel) {
    wasm.disposeData(biased.dataId);
    throw new Error(`_FusedMatMul (wasm, project kernel): ${activation}?`);
  }
  const out = activation === "prelu"
    ? run("Prelu", { x: biased, alpha: preluActivationWeights! })
    : run(kernel, { x: biased }, { alpha: leakyreluAlpha ?? 0.2 });
  wasm.disposeData(biased.dataId);
  return out;
}

function conv2DBackpropInput(
  { inputs, backend, attrs }: KernelArgs,
): tf.TensorInfo {
  const wasm = backend as WasmBackendLike;
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const {
    batchSize,
    inHeight,
    inWidth,
    inChannels,
    outHeight,
    outWidth,
    outChannels,
    filterHeight,
    filterWidth,
    strideHeight,
    strideWidth,
    padTop,
    padLeft,
    inShape,
  } = convBackpropGeometry("Conv2DBackpropInput", attrs, {
    filter: filter.shape,
  });
  const rows = batchSize * outHeight * outWidth;
  const patch = filterHeight * filterWidth * inChannels;
  // cols[(b, oh, ow), (fh, fw, ci)] = dy @ W^T: what each output position
  // sends back to each input pixel of its receptive field.
  const cols = batchMatMul({
    inputs: {
      a: { dataId: dy.dataId, shape: [1, rows, outChannels], dtype: "float32" },
      b: {
        dataId: filter.dataId,
        shape: [1, patch, outChannels],
        dtype: "float32",
      },
    },
    backend,
    attrs: { transposeA: false, transposeB: true },
  });
  const out = wasm.makeOutput([...inShape], "float32");
  // Views only after the last allocation: a growing heap detaches them.
  const ov = wasm.typedArrayFromHeap(out) as Float32Array;
  const cv = wasm.typedArrayFromHeap(cols) as Float32Array;
  ov.fill(0);
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      for (let ow = 0; ow < outWidth; ow++) {
        const row = ((b * outHeight + oh) * outWidth + ow) * patch;
        for (let fh = 0; fh < filterHeight; fh++) {
          const ih = oh * strideHeight + fh - padTop;
          if (ih < 0 || ih >= inHeight) continue;
          for (let fw = 0; fw < filterWidth; fw++) {
            const iw = ow * strideWidth + fw - padLeft;
            if (iw < 0 || iw >= inWidth) continue;
            const src = row + (fh * filterWidth + fw) * inChannels;
            const dst = ((b * inHeight + ih) * inWidth + iw) * inChannels;
            for (let ci = 0; ci < inChannels; ci++) {
              ov[dst + ci] += cv[src + ci];
            }
          }
        }
      }
    }
  }
  wasm.disposeData(cols.dataId);
  return out;
}

/**
 * GatherV2 (without batch dimensions) as block copies: the built-in copies
 * element by element with index arithmetic and took 2 ms to gather 128
 * rows of 784 floats, as much as a GAN step's whole forward pass.
 */
function gatherV2(args: KernelArgs): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x, indices } = inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
  const { axis, batchDims } = attrs as unknown as {
    axis: number;
    batchDims: number;
  };
  if (batchDims) return builtin("GatherV2")(args);
  const wasm = backend as WasmBackendLike;
  const ax = tf.util.parseAxisParam(axis, x.shape)[0];
  const size = tf.util.sizeFromShape;
  const outer = size(x.shape.slice(0, ax));
  const dim = x.shape[ax];
  const inner = size(x.shape.slice(ax + 1));
  const count = size(indices.shape);
  const out = wasm.makeOutput(
    [...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)],
    x.dtype,
  );
  const xv = wasm.typedArrayFromHeap(x);
  const iv = wasm.typedArrayFromHeap(indices);
  const ov = wasm.typedArrayFromHeap(out);
  for (let i = 0; i < count; i++) {
    const k = iv[i];
    if (!(k >= 0 && k < dim)) {
      wasm.disposeData(out.dataId);
      throw new Error(
        `GatherV2: the index value ${k} is not in [0, ${dim - 1}]`,
      );
    }
  }
  for (let o = 0; o < outer; o++) {
    const src = o * dim * inner;
    const dst = o * count * inner;
    for (let i = 0; i < count; i++) {
      const from = src + iv[i] * inner;
      ov.set(xv.subarray(from, from + inner), dst + i * inner);
    }
  }
  return out;
}

/**
 * Sum over leading axes (e.g. a dense layer's bias gradient, summing a
 * batch) as one pass of row additions. The built-in first transposes the
 * reduced axes to the end: 13 such sums took 3.2 ms of a 21 ms dVAE step.
 * Other sums go to the built-in, whose sum over nothing is made 0.
 */
function sum(args: KernelArgs): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x } = inputs as { x: tf.TensorInfo };
  const { axis, keepDims } = attrs as unknown as {
    axis: number | number[];
    keepDims: boolean;
  };
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
  const k = axes.length;
  const leading = k > 0 && k < rank && axes.every((a, i) => a === i);
  if (x.dtype !== "float32" || !leading) {
    return fillWhenEmpty(x, builtin("Sum")(args), 0, backend);
  }
  const wasm = backend as WasmBackendLike;
  const rows = tf.util.sizeFromShape(x.shape.slice(0, k));
  const kept = x.shape.slice(k);
  const cols = tf.util.sizeFromShape(kept);
  const out = wasm.makeOutput(
    keepDims ? [...new Array(k).fill(1), ...kept] : kept,
    "float32",
  );
  const xv = wasm.typedArrayFromHeap(x) as Float32Array;
  const ov = wasm.typedArrayFromHeap(out) as Float32Array;
  ov.fill(0);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let j = 0; j < cols; j++) ov[j] += xv[base + j];
  }
  return out;
}

/** The faster replacements, by kernel name. */
export const FAST_KERNELS: Readonly<Record<string, KernelFn>> = {
  BatchMatMul: batchMatMul,
  _FusedMatMul: fusedMatMul,
  Conv2DBackpropInput: conv2DBackpropInput,
  GatherV2: gatherV2,
  Sum: sum,
};
for (const fn of Object.values(FAST_KERNELS)) replaced.add(fn);

/**
 * Registers `kernelFunc` as the wasm kernel `kernelName`, replacing any
 * registered one but keeping its setup and dispose hooks: the built-ins
 * bind their native functions in `setupFunc` when the backend starts, and
 * the wrappers still call them.
 */
export function registerWasmKernel(
  kernelName: string,
  kernelFunc: KernelFn,
): void {
  const previous = tf.getKernel(kernelName, "wasm");
  if (previous) tf.unregisterKernel(kernelName, "wasm");
  tf.registerKernel({
    kernelName,
    backendName: "wasm",
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
    setupFunc: previous?.setupFunc,
    disposeFunc: previous?.disposeFunc,
  });
}

/**
 * Registers `FAST_KERNELS` for wasm, replacing the built-ins (their
 * originals stay reachable for the wrappers). Safe to call more than once.
 */
export function registerFastKernels(): void {
  captureBuiltins();
  for (const [name, fn] of Object.entries(FAST_KERNELS)) {
    registerWasmKernel(name, fn);
  }
}
