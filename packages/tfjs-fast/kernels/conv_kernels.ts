/**
 * The conv2d kernels as im2col (or col2im) plus one matMul, for every
 * training pass of a convolution layer:
 *
 * - `Conv2DBackpropFilter` (the weight gradient of conv2d and of
 *   conv2dTranspose; tfjs-backend-wasm 4.22 has none): patches^T @ dy,
 *   with patches = im2col(x) [B OH OW, FH FW C].
 * - `Conv2DBackpropInput` (the input gradient of conv2d and the forward
 *   pass of conv2dTranspose; the built-in runs at ~1 GFLOP/s):
 *   col2im(dy @ W^T).
 * - `Conv2D` and `FusedConv2D` (the forward pass, and the input gradient
 *   of conv2dTranspose) when the matMuls run on OpenBLAS: im2col(x) @ W,
 *   then bias and activation. Without OpenBLAS the built-ins (XNNPACK)
 *   stay, being as fast as im2col + wasm's matMul.
 *
 * im2col and col2im are WebAssembly SIMD loops on the backend's memory
 * (kernels/conv_wasm.ts); a 1x1 convolution with stride 1 and no padding
 * needs neither (x is its own patch matrix). On OpenBLAS the transposes
 * are sgemm's flags; on wasm's own matMul, which is slow with transposes
 * and repacks a new second operand on every call, the patch matrix is
 * transposed by the backend's Transpose and multiplied first. Dilated convolutions, NCHW
 * and non-float32 inputs go to the built-ins.
 *
 * Tested against the cpu backend, values and gradients on both matMul
 * paths, for kernels 1-5, strides 1-2, same/valid/explicit padding and
 * transposed convolutions (tests/conv_kernels.test.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  activeBlas,
  type Blas,
  blasBatchMatMul,
  blasHandles,
  type ProductTicket,
} from "./blas_kernels.ts";
import { col2im, im2col, type PatchGeometry } from "./conv_wasm.ts";
import { activeDnnl, type ConvPass } from "./dnnl.ts";
import {
  batchMatMul,
  biasAndActivation,
  builtin,
  type KernelArgs,
  type KernelFn,
  productGeometry,
  type WasmBackendLike,
} from "./fast_kernels.ts";
import { backendMemory } from "./wasm_module.ts";

type ConvInfo = tf.backend_util.Conv2DInfo;

interface ConvAttrs {
  strides: [number, number] | number;
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dataFormat: "NHWC" | "NCHW";
  dilations?: [number, number] | number;
  dimRoundingMode?: "floor" | "round" | "ceil";
  inputShape?: number[];
  filterShape?: number[];
}

type Shape4 = [number, number, number, number];

/**
 * The geometry of a conv2d kernel call from its attributes (tfjs's conv
 * info), or null when the project's kernels do not handle it (NCHW,
 * dilations). The input shape comes from the attributes when it is not
 * given (the input gradient's case), the filter shape likewise (the filter
 * gradient's).
 */
function convInfo(
  attrs: tf.NamedAttrMap | undefined,
  shapes: { input?: number[]; filter?: number[] },
): ConvInfo | null {
  const a = attrs as unknown as ConvAttrs;
  if (a.dataFormat === "NCHW") return null;
  const d = a.dilations ?? 1;
  if (!(d === 1 || (Array.isArray(d) && d[0] === 1 && d[1] === 1))) {
    return null;
  }
  return tf.backend_util.computeConv2DInfo(
    (shapes.input ?? a.inputShape) as Shape4,
    (shapes.filter ?? a.filterShape) as Shape4,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
    false,
    "channelsLast",
  );
}

function patchGeometry(c: ConvInfo): PatchGeometry {
  return {
    batch: c.batchSize,
    height: c.inHeight,
    width: c.inWidth,
    channels: c.inChannels,
    outHeight: c.outHeight,
    outWidth: c.outWidth,
    filterHeight: c.filterHeight,
    filterWidth: c.filterWidth,
    strideHeight: c.strideHeight,
    strideWidth: c.strideWidth,
    padTop: c.padInfo.top,
    padLeft: c.padInfo.left,
  };
}

/**
 * oneDNN's fast layouts block the channels by the SIMD width (16 floats on
 * AVX-512). An input gradient into 1-3 channels computes mostly padding
 * there, and im2col was faster (the VQ-VAE's 4x4/2 1 -> 32 layer, batch 64:
 * 2.2 ms against 0.45; 3x3 3 -> 32: 5.4 against 1.9). Its forward pass and
 * filter gradient, and every pass of a layer into few channels, were faster
 * on oneDNN (1 -> 32: 0.18 against 0.60 ms and 0.19 against 0.55; 3x3
 * 32 -> 3: 2.8 against 4.8, 2.6 against 3.4, 2.9 against 7.5).
 */
const DNNL_MIN_CHANNELS = 4;

/**
 * `pass` of the convolution on oneDNN (kernels/dnnl.ts) into a new output
 * of `shape`, or null when oneDNN is not in use, the pass is an input
 * gradient into fewer than `DNNL_MIN_CHANNELS` channels, or oneDNN has no
 * fast primitive for the geometry.
 */
function onDnnl(
  pass: ConvPass,
  c: ConvInfo,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  shape: number[],
  wasm: WasmBackendLike,
): tf.TensorInfo | null {
  const dnnl = activeDnnl();
  if (
    dnnl === null || a.dtype !== "float32" || b.dtype !== "float32" ||
    (pass === "backwardData" && c.inChannels < DNNL_MIN_CHANNELS)
  ) {
    return null;
  }
  const out = wasm.makeOutput(shape, "float32");
  const heap = (t: tf.TensorInfo) => wasm.typedArrayFromHeap(t) as Float32Array;
  const { padInfo: p } = c;
  const done = dnnl.convolve(
    pass,
    {
      batch: c.batchSize,
      inHeight: c.inHeight,
      inWidth: c.inWidth,
      inChannels: c.inChannels,
      outHeight: c.outHeight,
      outWidth: c.outWidth,
      outChannels: c.outChannels,
      filterHeight: c.filterHeight,
      filterWidth: c.filterWidth,
      strideHeight: c.strideHeight,
      strideWidth: c.strideWidth,
      padTop: p.top,
      padBottom: p.bottom,
      padLeft: p.left,
      padRight: p.right,
    },
    heap(a),
    heap(b),
    heap(out),
  );
  if (done) return out;
  wasm.disposeData(out.dataId);
  return null;
}

/** Rows (output positions) and columns (filter taps) of the patch matrix. */
function patchSize(c: ConvInfo): { rows: number; taps: number } {
  return {
    rows: c.batchSize * c.outHeight * c.outWidth,
    taps: c.filterHeight * c.filterWidth * c.inChannels,
  };
}

/** Whether x is its own patch matrix: 1x1, stride 1, no padding. */
function isPointwise(c: ConvInfo): boolean {
  return c.filterHeight === 1 && c.filterWidth === 1 &&
    c.outHeight === c.inHeight && c.outWidth === c.inWidth &&
    c.padInfo.top === 0 && c.padInfo.left === 0;
}

const byteOffset = (wasm: WasmBackendLike, t: tf.TensorInfo) =>
  wasm.typedArrayFromHeap(t).byteOffset;

/** A tensor info of the same data seen with another shape. */
const as = (t: tf.TensorInfo, shape: number[]): tf.TensorInfo => ({
  dataId: t.dataId,
  shape,
  dtype: t.dtype,
});

/**
 * The patch matrix of x as a [rows, taps] tensor info, and whether it is a
 * new allocation (x itself for a pointwise convolution).
 */
function patchesOf(
  x: tf.TensorInfo,
  c: ConvInfo,
  wasm: WasmBackendLike,
  memory: WebAssembly.Memory,
): { patches: tf.TensorInfo; owned: boolean } {
  const { rows, taps } = patchSize(c);
  if (isPointwise(c)) return { patches: as(x, [rows, taps]), owned: false };
  const patches = wasm.makeOutput([rows, taps], "float32");
  im2col(
    memory,
    byteOffset(wasm, x),
    byteOffset(wasm, patches),
    patchGeometry(c),
  );
  return { patches, owned: true };
}

/**
 * Bytes of patch matrix per chunk on the OpenBLAS path: the passes run in
 * chunks of whole images so that a chunk's patches stay in cache between
 * im2col (or the product) and the sgemm (or col2im) that reads them; one
 * matrix for the whole batch (20 MB for a 5x5 layer at batch 32) went out
 * to memory and back. Measured in one process, interleaved (forward + both
 * gradients, median ms at load 6-8): 5x5 32->32 14x14 b32 27 (4 MB) against
 * 41-53 (one chunk); 3x3 64->64 14x14 b32 33-35 against 44-46; 3x3
 * 256->256 4x4 b32 (the filter the larger operand) 45-48 against 46-50,
 * where 1 MB chunks (62) repacked the filter too often.
 */
let chunkBytes = 4 << 20;

/**
 * Sets the chunk size of the OpenBLAS path (bytes of patches; Infinity for
 * one chunk) and returns the previous one: for measurements.
 */
export function setConvChunkBytes(bytes: number): number {
  const previous = chunkBytes;
  chunkBytes = bytes;
  return previous;
}

/** Images per chunk, and the chunk's patch rows, for convolution `c`. */
function chunking(c: ConvInfo): { images: number; rowsPerImage: number } {
  const rowsPerImage = c.outHeight * c.outWidth;
  const { taps } = patchSize(c);
  const images = Math.max(
    1,
    Math.min(c.batchSize, Math.floor(chunkBytes / (4 * rowsPerImage * taps))),
  );
  return { images, rowsPerImage };
}

/**
 * The chunks of a pass, as a pipeline: for each chunk of images [b0,
 * b0 + nb), `produce` fills a scratch buffer of [images * rowsPerImage,
 * taps] floats (or starts the product that fills it) and returns the
 * ticket of the product it started; `consume`, if given, runs once that
 * product is finished. With helper threads there are `PIPELINE` scratch
 * buffers, so that the main thread prepares the next chunk (im2col, col2im)
 * while the helpers compute the products of the last ones; on one thread
 * `start` computes the product at once and one buffer is enough. Each
 * product is the call the one-thread pass makes: the same bits.
 */
function inChunks(
  c: ConvInfo,
  wasm: WasmBackendLike,
  blas: Blas,
  produce: (b0: number, nb: number, scratch: tf.TensorInfo) => ProductTicket,
  consume?: (b0: number, nb: number, scratch: tf.TensorInfo) => void,
): void {
  const { images, rowsPerImage } = chunking(c);
  const { taps } = patchSize(c);
  const chunks = Math.ceil(c.batchSize / images);
  const buffers = blas.threads > 1 ? Math.min(PIPELINE, chunks) : 1;
  const scratch = Array.from(
    { length: buffers },
    () => wasm.makeOutput([images * rowsPerImage, taps], "float32"),
  );
  const inFlight: { ticket: ProductTicket; b0: number; nb: number }[] = [];
  const retire = (i: number) => {
    const { ticket, b0, nb } = inFlight[i];
    blas.finish(ticket);
    consume?.(b0, nb, scratch[i % buffers]);
  };
  try {
    for (let i = 0; i < chunks; i++) {
      // The buffer's last product must be done before it is filled again.
      if (i >= buffers) retire(i - buffers);
      const b0 = i * images, nb = Math.min(images, c.batchSize - b0);
      inFlight.push({ ticket: produce(b0, nb, scratch[i % buffers]), b0, nb });
    }
    for (let i = Math.max(0, chunks - buffers); i < chunks; i++) retire(i);
  } finally {
    // After an error, products may still be running: wait before freeing.
    for (const f of inFlight) blas.finish(f.ticket);
    for (const t of scratch) wasm.disposeData(t.dataId);
  }
}

/** Scratch buffers (chunks in flight) of a pass on several threads. */
const PIPELINE = 3;

/** A float32 view of `t`'s elements [from, from + n) (after allocations). */
function view(
  wasm: WasmBackendLike,
  t: tf.TensorInfo,
  from: number,
  n: number,
): Float32Array {
  return (wasm.typedArrayFromHeap(t) as Float32Array).subarray(from, from + n);
}

/**
 * im2col of the images [b0, b0 + nb) of x into `patches` (the chunk's
 * rows, from its start).
 */
function im2colChunk(
  memory: WebAssembly.Memory,
  wasm: WasmBackendLike,
  x: tf.TensorInfo,
  c: ConvInfo,
  b0: number,
  nb: number,
  patches: tf.TensorInfo,
): void {
  const imageBytes = 4 * c.inHeight * c.inWidth * c.inChannels;
  im2col(
    memory,
    byteOffset(wasm, x) + b0 * imageBytes,
    byteOffset(wasm, patches),
    { ...patchGeometry(c), batch: nb },
  );
}

/** A float32 output of `shape` filled with zeros. */
function zeros(wasm: WasmBackendLike, shape: number[]): tf.TensorInfo {
  const out = wasm.makeOutput(shape, "float32");
  wasm.typedArrayFromHeap(out).fill(0);
  return out;
}

/** The sgemm out = op(a) op(b) on OpenBLAS into a new [m, n] output. */
function blasProduct(
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  outShape: number[],
  wasm: WasmBackendLike,
): tf.TensorInfo {
  const g = productGeometry(a, b, transposeA, transposeB);
  const out = wasm.makeOutput(outShape, "float32");
  blasBatchMatMul(a, b, out, g, wasm);
  return out;
}

function transpose2(x: tf.TensorInfo, backend: unknown): tf.TensorInfo {
  return builtin("Transpose")({
    inputs: { x },
    backend,
    attrs: { perm: [1, 0] },
  });
}

function conv2DBackpropFilter(args: KernelArgs): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const wasm = backend as WasmBackendLike;
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const c = convInfo(attrs, { input: x.shape });
  const memory = backendMemory(backend);
  if (c === null || memory === null || x.dtype !== "float32") {
    throw new Error(
      "Conv2DBackpropFilter (wasm, project kernel): only float32 NHWC " +
        "without dilations is supported",
    );
  }
  const filterShape = [...c.filterShape];
  const { rows, taps } = patchSize(c);
  const outChannels = c.outChannels;
  if (rows === 0 || taps * outChannels === 0) return zeros(wasm, filterShape);
  const direct = onDnnl("backwardWeights", c, x, dy, filterShape, wasm);
  if (direct) return direct;
  const blas = blasHandles(x, dy) ? activeBlas() : null;
  if (blas && !isPointwise(c)) {
    // dW = sum over chunks of patches^T @ dy (the transpose an sgemm flag,
    // the sum its beta, in the order of the chunks as on one thread); the
    // next chunk's im2col runs while the helpers compute this product.
    const out = wasm.makeOutput(filterShape, "float32");
    const { rowsPerImage } = chunking(c);
    let previous: ProductTicket | null = null;
    inChunks(c, wasm, blas, (b0, nb, patches) => {
      im2colChunk(memory, wasm, x, c, b0, nb, patches);
      const m = nb * rowsPerImage, r0 = b0 * rowsPerImage;
      if (previous !== null) blas.finish(previous);
      previous = blas.start(
        true,
        false,
        taps,
        outChannels,
        m,
        view(wasm, patches, 0, m * taps),
        view(wasm, dy, r0 * outChannels, m * outChannels),
        view(wasm, out, 0, taps * outChannels),
        b0 === 0 ? 0 : 1,
      );
      return previous;
    });
    return out;
  }
  const { patches, owned } = patchesOf(x, c, wasm, memory);
  const dyMatrix = as(dy, [rows, outChannels]);
  try {
    if (blasHandles(patches, dyMatrix)) {
      // dW = x^T @ dy for a pointwise convolution.
      return blasProduct(patches, dyMatrix, true, false, filterShape, wasm);
    }
    // wasm's matMul (XNNPACK) is slow with transposes, and repacks its
    // second operand on every call when that is a new tensor: transpose
    // the patches (the backend's blocked Transpose), then patches^T @ dy
    // with the small dy second.
    const patchesT = transpose2(patches, backend);
    try {
      const dw = builtin("BatchMatMul")({
        inputs: {
          a: as(patchesT, [1, taps, rows]),
          b: as(dy, [1, rows, outChannels]),
        },
        backend,
        attrs: { transposeA: false, transposeB: false },
      });
      return as(dw, filterShape);
    } finally {
      wasm.disposeData(patchesT.dataId);
    }
  } finally {
    if (owned) wasm.disposeData(patches.dataId);
  }
}

function conv2DBackpropInput(args: KernelArgs): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const wasm = backend as WasmBackendLike;
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const c = convInfo(attrs, { filter: filter.shape });
  const memory = backendMemory(backend);
  if (c === null || memory === null || dy.dtype !== "float32") {
    return builtin("Conv2DBackpropInput")(args);
  }
  const inShape = [...c.inShape];
  const { rows, taps } = patchSize(c);
  if (tf.util.sizeFromShape(inShape) === 0) return zeros(wasm, inShape);
  if (rows * c.outChannels === 0) return zeros(wasm, inShape);
  const direct = onDnnl("backwardData", c, dy, filter, inShape, wasm);
  if (direct) return direct;
  const blas = blasHandles(dy, filter) ? activeBlas() : null;
  if (blas && !isPointwise(c)) {
    // Per chunk of images: cols = dy @ W^T, then col2im onto those images
    // (on the main thread, while the helpers compute the next chunks').
    const out = zeros(wasm, inShape);
    const imageBytes = 4 * c.inHeight * c.inWidth * c.inChannels;
    const { rowsPerImage } = chunking(c);
    inChunks(c, wasm, blas, (b0, nb, cols) => {
      const m = nb * rowsPerImage;
      return blas.start(
        false,
        true,
        m,
        taps,
        c.outChannels,
        view(wasm, dy, b0 * rowsPerImage * c.outChannels, m * c.outChannels),
        view(wasm, filter, 0, taps * c.outChannels),
        view(wasm, cols, 0, m * taps),
      );
    }, (b0, nb, cols) => {
      col2im(
        memory,
        byteOffset(wasm, cols),
        byteOffset(wasm, out) + b0 * imageBytes,
        { ...patchGeometry(c), batch: nb },
      );
    });
    return out;
  }
  // cols[(b, oh, ow), (fh, fw, c)] = dy @ W^T: what each output position
  // sends back to each input pixel of its receptive field.
  const cols = batchMatMul({
    inputs: {
      a: as(dy, [1, rows, c.outChannels]),
      b: as(filter, [1, taps, c.outChannels]),
    },
    backend,
    attrs: { transposeA: false, transposeB: true },
  });
  if (isPointwise(c)) return as(cols, inShape);
  const out = zeros(wasm, inShape);
  col2im(
    memory,
    byteOffset(wasm, cols),
    byteOffset(wasm, out),
    patchGeometry(c),
  );
  wasm.disposeData(cols.dataId);
  return out;
}

/**
 * The forward convolution as im2col + sgemm when the matMuls run on
 * OpenBLAS, zeros when it is empty; null when the built-in should run (no
 * OpenBLAS, NCHW, dilations, not float32).
 */
function blasConv2D(args: KernelArgs): tf.TensorInfo | null {
  const { inputs, backend, attrs } = args;
  const wasm = backend as WasmBackendLike;
  const { x, filter } = inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
  const c = convInfo(attrs, { input: x.shape, filter: filter.shape });
  const memory = backendMemory(backend);
  if (c === null || memory === null || x.dtype !== "float32") return null;
  const outShape = [...c.outShape];
  const { rows, taps } = patchSize(c);
  // A convolution over 0 channels is 0 (the built-in leaves it
  // uninitialised), on either path.
  if (rows * taps * c.outChannels === 0) return zeros(wasm, outShape);
  const direct = onDnnl("forward", c, x, filter, outShape, wasm);
  if (direct) return direct;
  const blas = blasHandles(x, filter) ? activeBlas() : null;
  if (blas === null) return null;
  if (!isPointwise(c)) {
    // Per chunk of images: the output rows = patches @ W (the next chunk's
    // im2col runs while the helpers compute this product).
    const out = wasm.makeOutput(outShape, "float32");
    const { rowsPerImage } = chunking(c);
    inChunks(c, wasm, blas, (b0, nb, patches) => {
      im2colChunk(memory, wasm, x, c, b0, nb, patches);
      const m = nb * rowsPerImage;
      return blas.start(
        false,
        false,
        m,
        c.outChannels,
        taps,
        view(wasm, patches, 0, m * taps),
        view(wasm, filter, 0, taps * c.outChannels),
        view(wasm, out, b0 * rowsPerImage * c.outChannels, m * c.outChannels),
      );
    });
    return out;
  }
  const { patches, owned } = patchesOf(x, c, wasm, memory);
  try {
    return blasProduct(
      patches,
      as(filter, [taps, c.outChannels]),
      false,
      false,
      outShape,
      wasm,
    );
  } finally {
    if (owned) wasm.disposeData(patches.dataId);
  }
}

function conv2D(args: KernelArgs): tf.TensorInfo {
  return blasConv2D(args) ?? builtin("Conv2D")(args);
}

/** conv2d + bias + activation: on OpenBLAS as three steps. */
function fusedConv2D(args: KernelArgs): tf.TensorInfo {
  const { bias, preluActivationWeights } = args.inputs as {
    bias?: tf.TensorInfo;
    preluActivationWeights?: tf.TensorInfo;
  };
  const { activation, leakyreluAlpha } = args.attrs as unknown as {
    activation: string;
    leakyreluAlpha?: number;
  };
  const product = blasConv2D(args);
  if (product === null) return builtin("FusedConv2D")(args);
  return biasAndActivation(product, args.backend, {
    bias,
    preluActivationWeights,
    activation,
    leakyreluAlpha,
    kernel: "FusedConv2D",
  });
}

/** The project's convolution kernels, by name. */
export const CONV_KERNELS: Readonly<Record<string, KernelFn>> = {
  Conv2D: conv2D,
  FusedConv2D: fusedConv2D,
  Conv2DBackpropFilter: conv2DBackpropFilter,
  Conv2DBackpropInput: conv2DBackpropInput,
};

/** The built-ins the convolution kernels fall back to. */
export const CONV_BUILTINS: readonly string[] = [
  "Conv2D",
  "FusedConv2D",
  "Conv2DBackpropInput",
];
