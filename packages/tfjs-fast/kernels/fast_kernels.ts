/**
 * Faster wasm kernels for the training paths tfjs-backend-wasm 4.22 runs
 * slowly (measured on a 2-core machine, see README.md):
 *
 * - `BatchMatMul` and `_FusedMatMul` with `transposeA`/`transposeB`: the
 *   backend's transposed path runs at 1-2 GFLOP/s against ~28 for the plain
 *   one, and every matMul gradient asks for a transpose. A physical transpose
 *   (the backend's own native `Transpose`) followed by the plain product is
 *   an order of magnitude faster.
 * - `GatherV2`: element-by-element copies (2 ms for 128 rows of 784).
 *   Here: one block copy per gathered slice.
 * - `Sum` over leading axes (bias gradients): a transpose first. Here: row
 *   additions in SIMD (kernels/elementwise.ts).
 * - `Identity` (every `clone()`, and the copies tfjs makes of the tensors
 *   a gradient saves): a copy. Here: a new reference to the same memory.
 * - With OpenBLAS loaded (kernels/blas_kernels.ts), `BatchMatMul` and
 *   `_FusedMatMul` call its `cblas_sgemm`, transposes included.
 *
 * The convolutions are in kernels/conv_kernels.ts. The wrapped built-ins
 * are captured once, so registering again never wraps
 * a wrapper. Each kernel is tested against the `cpu` backend, values and
 * gradients, in tests/wasm_kernels.test.ts.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { blasBatchMatMul, blasHandles } from "./blas_kernels.ts";
import { sumRows } from "./elementwise.ts";

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

/** The built-ins that `FAST_KERNELS` call. */
const WRAPPED = [
  "BatchMatMul",
  "_FusedMatMul",
  "Transpose",
  "GatherV2",
  "Sum",
  "Identity",
  "Cast",
];

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
  if (a.shape.length === 2 && b.shape.length === 2) {
    // No batch dimensions (a dense layer): nothing to broadcast.
    const outShape = [m, n];
    return {
      m,
      n,
      k,
      transposeA,
      transposeB,
      batchA: 1,
      batchB: 1,
      batch: 1,
      outShape,
    };
  }
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

/**
 * BatchMatMul: on OpenBLAS when it is loaded (transposes as sgemm flags),
 * else wasm's own product after physical transposes; an empty inner
 * dimension gives zeros.
 */
export function batchMatMul(args: KernelArgs): tf.TensorInfo {
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
  const { activation, leakyreluAlpha } = args.attrs as unknown as {
    activation: string;
    leakyreluAlpha?: number;
  };
  const product = batchMatMul({
    inputs: { a, b },
    backend: args.backend,
    attrs: args.attrs,
  });
  return biasAndActivation(product, args.backend, {
    bias,
    preluActivationWeights,
    activation,
    leakyreluAlpha,
    kernel: "_FusedMatMul",
  });
}

/**
 * What a fused kernel does after its product: adds `bias` (broadcast) and
 * applies the activation, with the backend's own kernels; `product` and the
 * intermediate are released.
 */
export function biasAndActivation(
  product: tf.TensorInfo,
  backend: unknown,
  { bias, preluActivationWeights, activation, leakyreluAlpha, kernel }: {
    bias?: tf.TensorInfo;
    preluActivationWeights?: tf.TensorInfo;
    activation?: string;
    leakyreluAlpha?: number;
    /** The fused kernel's name, for errors. */
    kernel: string;
  },
): tf.TensorInfo {
  const wasm = backend as WasmBackendLike;
  const run = (
    name: string,
    inputs: tf.NamedTensorInfoMap,
    attrs: tf.NamedAttrMap = {},
  ) => registeredKernel(name)({ inputs, backend, attrs });
  let biased = product;
  if (bias != null) {
    biased = run("Add", { a: product, b: bias });
    wasm.disposeData(product.dataId);
  }
  if (activation === "linear" || activation == null) return biased;
  const name = ACTIVATION_KERNELS[activation];
  if (!name) {
    wasm.disposeData(biased.dataId);
    throw new Error(`${kernel} (wasm, project kernel): ${activation}?`);
  }
  const out = activation === "prelu"
    ? run("Prelu", { x: biased, alpha: preluActivationWeights! })
    : run(name, { x: biased }, { alpha: leakyreluAlpha ?? 0.2 });
  wasm.disposeData(biased.dataId);
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
  if (cols > 0 && sumRows(backend, x, out, rows, cols)) return out;
  const xv = wasm.typedArrayFromHeap(x) as Float32Array;
  const ov = wasm.typedArrayFromHeap(out) as Float32Array;
  ov.fill(0);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let j = 0; j < cols; j++) ov[j] += xv[base + j];
  }
  return out;
}

/**
 * Identity (`tensor.clone()`, and tfjs's copies of the tensors a gradient
 * saves) as a new reference to the same memory, as the cpu backend and
 * the wasm backend's own Reshape do: the built-in copies every element.
 * tfjs kernels never write into their inputs, so sharing is safe.
 */
function identity(args: KernelArgs): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === "string") return builtin("Identity")(args);
  (args.backend as { incRef(dataId: tf.DataId): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

/**
 * Cast to the dtype x already has as a new reference to x's memory (the
 * built-in copies every element): tfjs's Multiply gradient casts the other
 * factor to float32 every time, a copy of a whole layer output. A cast of
 * float32 or int32 to bool is x != 0, as on the cpu backend: the built-in
 * truncates to a byte (2.7 gave 2, 256 and NaN gave 0). Other casts are the
 * built-in's.
 */
function cast(args: KernelArgs): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { dtype } = args.attrs as unknown as { dtype: tf.DataType };
  if (dtype === x.dtype && x.dtype !== "string" && x.dtype !== "complex64") {
    return identity(args);
  }
  if (dtype === "bool" && (x.dtype === "float32" || x.dtype === "int32")) {
    const wasm = args.backend as WasmBackendLike;
    const out = wasm.makeOutput([...x.shape], "bool");
    // Views after makeOutput: it may have grown the memory.
    const from = wasm.typedArrayFromHeap(x);
    const to = wasm.typedArrayFromHeap(out);
    for (let i = 0; i < from.length; i++) to[i] = from[i] !== 0 ? 1 : 0;
    return out;
  }
  return builtin("Cast")(args);
}

/** The faster replacements, by kernel name. */
export const FAST_KERNELS: Readonly<Record<string, KernelFn>> = {
  BatchMatMul: batchMatMul,
  _FusedMatMul: fusedMatMul,
  GatherV2: gatherV2,
  Sum: sum,
  Identity: identity,
  Cast: cast,
};
markReplacements(FAST_KERNELS);

/**
 * Records `kernels` as the project's replacements, so that `builtin` never
 * mistakes one for the backend's own kernel.
 */
export function markReplacements(
  kernels: Readonly<Record<string, KernelFn>>,
): void {
  for (const fn of Object.values(kernels)) replaced.add(fn);
}

/**
 * The kernel registered for wasm under `name` now (the project's where it
 * replaced the built-in): what tfjs would run for that name.
 */
export function registeredKernel(name: string): KernelFn {
  return tf.getKernel(name, "wasm")!.kernelFunc as unknown as KernelFn;
}

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
