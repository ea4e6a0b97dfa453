/**
 * Fused kernels for small-tensor code that tfjs runs as many tiny kernels,
 * each paying ~4 µs of engine bookkeeping (the neural ODE's solver steps):
 *
 * - `ProjectLinearCombination`: base + c_0 x_0 + c_1 x_1 + ... (float32,
 *   one shape), one kernel instead of a Multiply per term, an AddN and an
 *   Add. The same float32 operations in the same order as those kernels
 *   (each product rounded, the products summed from 0 in order, then
 *   added to base; one term is added to base directly, as `tf.add(base,
 *   tf.mul(x, c))` does), so the same bits.
 * - `ProjectScaleMany`: c_0 dy, c_1 dy, ... as one kernel with one output
 *   per coefficient: the combination's gradient.
 * - `ProjectPowGrad`: dy b a^(b - 1) for a scalar exponent b, the gradient
 *   of `tf.pow(a, b)` with respect to a, as one kernel instead of tfjs's
 *   Cast, Sub, Pow, two Multiply and a Reshape (and a scalar upload). It
 *   runs the backend's own Pow and Multiply kernels in tfjs's order, so
 *   the same bits.
 * - `Pow` with a float32 scalar exponent: the built-in's own native
 *   function (so its bits: musl's powf), called directly instead of
 *   through emscripten's `cwrap`, whose marshalling of the two shapes made
 *   the built-in cost ~4-6 µs per call against ~1-2 for a Multiply.
 *
 * The loops are WebAssembly SIMD on the wasm backend's memory (f32 mul
 * and add round correctly in both, as in the built-ins). The op that uses
 * the first two, with its gradient and a fallback to tfjs's ops on other
 * backends, is `linearCombination` (ops.ts); ops.ts also routes Pow's
 * gradient here. Tested against the cpu backend in
 * tests/combination.test.ts.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  builtin,
  type KernelArgs,
  registeredKernel,
  type WasmBackendLike,
} from "./fast_kernels.ts";
import {
  addTo,
  backendMemory,
  F32,
  get,
  heapF32,
  heapI32,
  heapOffset,
  I32,
  i32,
  instantiateOn,
  SCALAR,
  set,
  SIMD,
  simdBounds,
  T,
  V128,
  type WasmFunction,
  whileLoop,
} from "./wasm_module.ts";

/** The input name of term i of a combination: x0, x1, ... (made once). */
const TERM_NAMES = Array.from({ length: 16 }, (_, i) => `x${i}`);
export const termName = (i: number): string => TERM_NAMES[i] ?? `x${i}`;

/** The kernel names. */
export const LINEAR_COMBINATION = "ProjectLinearCombination";
export const SCALE_MANY = "ProjectScaleMany";
export const POW_GRAD = "ProjectPowGrad";
/** A float32 tensor of attrs.shape, every element x's one value. */
export const BROADCAST_SCALAR = "ProjectBroadcastScalar";

/**
 * out[i] = c x[i] ("scale") or acc[i] + c x[i] ("axpy"): the product
 * rounded to float32, then the sum. Params: acc, x, out, nBytes, c (f32);
 * acc is ignored by "scale". out may be acc or x.
 */
function scaledFunction(withAcc: boolean): WasmFunction {
  const [ACC, X, OUT, NBYTES, C] = [0, 1, 2, 3, 4];
  const [P, Q, O, END, END16, CV] = [5, 6, 7, 8, 9, 10];
  const advance = (bytes: number) => [
    ...(withAcc ? addTo(P, i32(bytes)) : []),
    ...addTo(Q, i32(bytes)),
    ...addTo(O, i32(bytes)),
  ];
  return {
    name: withAcc ? "axpy" : "scale",
    params: [T.i32, T.i32, T.i32, T.i32, T.f32],
    locals: [T.i32, T.i32, T.i32, T.i32, T.i32, T.v128],
    body: [
      ...get(C),
      ...SIMD.f32x4Splat,
      ...set(CV),
      ...get(ACC),
      ...set(P),
      ...get(X),
      ...set(Q),
      ...get(OUT),
      ...simdBounds(O, NBYTES, END, END16),
      ...whileLoop([...get(O), ...get(END16), ...I32.ltU], [
        ...get(O),
        ...(withAcc ? [...get(P), ...V128.load] : []),
        ...get(Q),
        ...V128.load,
        ...get(CV),
        ...SIMD.f32x4Mul,
        ...(withAcc ? V128.f32x4Add : []),
        ...V128.store,
        ...advance(16),
      ]),
      ...whileLoop([...get(O), ...get(END), ...I32.ltU], [
        ...get(O),
        ...(withAcc ? [...get(P), ...F32.load] : []),
        ...get(Q),
        ...F32.load,
        ...get(C),
        ...SCALAR.f32Mul,
        ...(withAcc ? F32.add : []),
        ...F32.store,
        ...advance(4),
      ]),
    ],
  };
}

const FUNCTIONS = [scaledFunction(false), scaledFunction(true)];

type Exports = {
  scale(acc: number, x: number, out: number, nBytes: number, c: number): void;
  axpy(acc: number, x: number, out: number, nBytes: number, c: number): void;
};
const modules = new WeakMap<
  WebAssembly.Memory,
  Record<string, (...a: number[]) => void>
>();

function functionsFor(backend: unknown): Exports {
  const memory = backendMemory(backend);
  if (memory === null) throw new Error("combination kernels: not on wasm");
  return instantiateOn(modules, memory, FUNCTIONS) as unknown as Exports;
}

/** The attribute of both combination kernels: one coefficient per term. */
interface CoefficientAttrs {
  coefficients: number[];
}

/**
 * base + c_0 x_0 + ... (inputs x0, x1, ..., and base when given). As the
 * kernels it replaces: one term is c_0 x_0 (+ base); more are summed from
 * 0 in order (AddN), then added to base.
 */
function linearCombinationKernel(
  { inputs, backend, attrs }: KernelArgs,
): tf.TensorInfo {
  const { coefficients: c } = attrs as unknown as CoefficientAttrs;
  const xs = c.map((_, i) =>
    (inputs as Record<string, tf.TensorInfo>)[termName(i)]
  );
  const base = (inputs as { base?: tf.TensorInfo }).base;
  const wasm = backend as WasmBackendLike;
  const fns = functionsFor(backend);
  const out = wasm.makeOutput([...xs[0].shape], "float32");
  const bytes = 4 * tf.util.sizeFromShape(xs[0].shape);
  if (bytes === 0) return out;
  const o = heapOffset(wasm, out);
  if (xs.length === 1) {
    if (base) {
      fns.axpy(heapOffset(wasm, base), heapOffset(wasm, xs[0]), o, bytes, c[0]);
    } else fns.scale(0, heapOffset(wasm, xs[0]), o, bytes, c[0]);
    return out;
  }
  heapF32(wasm).fill(0, o >> 2, (o + bytes) >> 2);
  for (let i = 0; i < xs.length; i++) {
    fns.axpy(o, heapOffset(wasm, xs[i]), o, bytes, c[i]);
  }
  // base + 1 s is base + s: 1 s is s exactly.
  if (base) fns.axpy(heapOffset(wasm, base), o, o, bytes, 1);
  return out;
}

/** c_i dy for each coefficient: one output each. */
function scaleManyKernel(
  { inputs, backend, attrs }: KernelArgs,
): tf.TensorInfo[] {
  const { coefficients: c } = attrs as unknown as CoefficientAttrs;
  const { dy } = inputs as { dy: tf.TensorInfo };
  const wasm = backend as WasmBackendLike;
  const fns = functionsFor(backend);
  const outs = c.map(() => wasm.makeOutput([...dy.shape], "float32"));
  const bytes = 4 * tf.util.sizeFromShape(dy.shape);
  if (bytes === 0) return outs;
  const d = heapOffset(wasm, dy);
  outs.forEach((out, i) => fns.scale(0, d, heapOffset(wasm, out), bytes, c[i]));
  return outs;
}

/**
 * dy (b pow(a, b - 1)) for float32 a and a scalar float32 b, with the
 * backend's Pow and Multiply kernels in the order of tfjs's Pow gradient
 * (`mul(dy, mul(b, pow(a, sub(b, 1))))`); b - 1 in float32, as `sub`.
 */
function powGradKernel({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const { dy, a, b } = inputs as Record<string, tf.TensorInfo>;
  const wasm = backend as WasmBackendLike;
  const run = (name: string, x: tf.TensorInfo, y: tf.TensorInfo) =>
    registeredKernel(name)({ inputs: { a: x, b: y }, backend, attrs: {} });
  const exponent = Math.fround(heapF32(wasm)[heapOffset(wasm, b) >> 2] - 1);
  const bMinus1 = wasm.makeOutput([], "float32");
  heapF32(wasm)[heapOffset(wasm, bMinus1) >> 2] = exponent;
  const temporaries = [bMinus1];
  try {
    const power = pow({ inputs: { a, b: bMinus1 }, backend, attrs: {} });
    temporaries.push(power);
    const scaled = run("Multiply", b, power);
    temporaries.push(scaled);
    return run("Multiply", dy, scaled);
  } finally {
    for (const t of temporaries) wasm.disposeData(t.dataId);
  }
}

/** What `pow` reaches inside the wasm backend (tfjs-backend-wasm 4.22). */
interface WasmInternals {
  wasm: {
    _Pow(
      aId: number,
      aShape: number,
      aRank: number,
      bId: number,
      bShape: number,
      bRank: number,
      dtype: number,
      outId: number,
    ): void;
    _malloc(bytes: number): number;
  };
  dataIdMap: { get(dataId: tf.DataId): { id: number } };
}

const MAX_RANK = 8;
/** A block of MAX_RANK int32 in each backend's memory for a shape, made once. */
const shapeScratch = new WeakMap<object, number>();

/**
 * Pow (float32, a scalar exponent) through the built-in's native function
 * with the shape written once to a scratch block; anything else goes to
 * the built-in kernel.
 */
function pow(args: KernelArgs): tf.TensorInfo {
  const { a, b } = args.inputs as Record<string, tf.TensorInfo>;
  const memory = backendMemory(args.backend);
  if (
    a.dtype !== "float32" || b.dtype !== "float32" || b.shape.length !== 0 ||
    a.shape.length > MAX_RANK || memory === null
  ) {
    return builtin("Pow")(args);
  }
  const wasm = args.backend as WasmBackendLike & WasmInternals;
  const out = wasm.makeOutput([...a.shape], "float32");
  if (tf.util.sizeFromShape(a.shape) === 0) return out;
  let shape = shapeScratch.get(wasm.wasm);
  if (shape === undefined) {
    shape = wasm.wasm._malloc(4 * MAX_RANK);
    shapeScratch.set(wasm.wasm, shape);
  }
  heapI32(wasm).set(a.shape, shape >> 2);
  const ids = wasm.dataIdMap;
  // 0: CppDType.float32. b's shape is empty (rank 0): its pointer is unread.
  wasm.wasm._Pow(
    ids.get(a.dataId).id,
    shape,
    a.shape.length,
    ids.get(b.dataId).id,
    shape,
    0,
    0,
    ids.get(out.dataId).id,
  );
  return out;
}

/** The kernels, by name (registered for wasm by kernels/wasm_kernels.ts). */
/**
 * A tensor of `shape` filled with the one element of float32 x: the
 * gradient of a full sum or mean, which tfjs forms as dy times a tensor of
 * ones made in JavaScript (a fresh array of the input's size, uploaded,
 * then multiplied). The value is copied, so the bits of dy * 1.
 */
function broadcastScalarKernel(
  { inputs, backend, attrs }: KernelArgs,
): tf.TensorInfo {
  const { x } = inputs as { x: tf.TensorInfo };
  const { shape } = attrs as unknown as { shape: number[] };
  const wasm = backend as WasmBackendLike;
  const value = heapF32(wasm)[heapOffset(wasm, x) >> 2];
  const out = wasm.makeOutput([...shape], "float32");
  const start = heapOffset(wasm, out) >> 2;
  // The view after makeOutput: it may have grown the memory.
  heapF32(wasm).fill(value, start, start + tf.util.sizeFromShape(shape));
  return out;
}

export const COMBINATION_KERNELS: Record<
  string,
  (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]
> = {
  [LINEAR_COMBINATION]: linearCombinationKernel,
  [SCALE_MANY]: scaleManyKernel,
  [POW_GRAD]: powGradKernel,
  [BROADCAST_SCALAR]: broadcastScalarKernel,
  Pow: pow,
};

/** The built-ins they call. */
export const COMBINATION_BUILTINS: readonly string[] = ["Pow"];
