/**
 * Float32 `Add`, `Sub` and `Multiply` as WebAssembly SIMD loops on the wasm
 * backend's memory, for the shapes training code uses: equal shapes, a
 * scalar on either side, and a trailing broadcast (a bias row [n] against
 * [rows, n], on either side).
 *
 * The built-ins cost ~5-8 µs per call whatever the size (an XNNPACK
 * operator set up and run through emscripten's `cwrap` with the shapes
 * copied as arrays): on the neural ODE's 20 x 50 tensors that is most of
 * a step of ~650 such calls. Here a call is one direct wasm call. f32 add,
 * sub and mul are correctly rounded IEEE operations in both, so the
 * results are the same bits (tests/elementwise.test.ts checks it); other
 * shapes and dtypes go to the built-ins.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  builtin,
  type KernelArgs,
  type WasmBackendLike,
} from "./fast_kernels.ts";
import {
  addTo,
  backendMemory,
  F32,
  forRange,
  get,
  heapF32,
  heapOffset,
  I32,
  i32,
  instantiateOn,
  SCALAR,
  select,
  set,
  SIMD,
  simdBounds,
  T,
  tee,
  V128,
  v128LoadAt,
  v128StoreAt,
  type WasmFunction,
  whileLoop,
} from "./wasm_module.ts";

/** The opcodes of one operation: SIMD (f32x4) and scalar (f32). */
const OPS = {
  Add: { wide: [0xfd, 0xe4, 0x01], narrow: [0x92] },
  Sub: { wide: [0xfd, 0xe5, 0x01], narrow: [0x93] },
  Multiply: { wide: [0xfd, 0xe6, 0x01], narrow: [0x94] },
  RealDiv: { wide: [0xfd, 0xe7, 0x01], narrow: [0x95] },
} as const;
type OpName = keyof typeof OPS;

const SPLAT = SIMD.f32x4Splat;

/**
 * rows x n: out[r oRow + j] = a[r aRow + j] op b[r bRow + j] (row strides
 * in bytes: n floats for a full operand, 0 for a broadcast row; an out
 * stride of 0 with a = out accumulates the rows, which is how `Sum` uses
 * it). A "splat" operand is one float per row (a column broadcast, or a
 * scalar with a row stride of 0): a[r aRow] for every j.
 * Params: a, aRowBytes, b, bRowBytes, out, outRowBytes, rows, nBytes.
 */
function rowsFunction(
  op: OpName,
  aSplat: boolean,
  bSplat: boolean,
): WasmFunction {
  const [A, AROW, B, BROW, OUT, OROW, ROWS, NBYTES] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [R, P, Q, O, END, END16, END64] = [8, 9, 10, 11, 12, 13, 14];
  const [AV, BV, AS, BS] = [15, 16, 17, 18]; // splatted (v128) and plain (f32)
  const { wide, narrow } = OPS[op];
  const step = (bytes: number) => [
    ...(aSplat ? [] : addTo(P, i32(bytes))),
    ...(bSplat ? [] : addTo(Q, i32(bytes))),
    ...addTo(O, i32(bytes)),
  ];
  const vector = (splat: boolean, ptr: number, v: number, k: number) =>
    splat ? get(v) : [...get(ptr), ...v128LoadAt(k)];
  const scalar = (splat: boolean, ptr: number, f: number) =>
    splat ? get(f) : [...get(ptr), ...F32.load];
  const splatRow = (splat: boolean, ptr: number, v: number, f: number) =>
    splat ? [...get(ptr), ...F32.load, ...tee(f), ...SPLAT, ...set(v)] : [];
  return {
    name: `${op}_${aSplat ? "s" : "v"}${bSplat ? "s" : "v"}`,
    params: 8,
    locals: [
      ...new Array(7).fill(T.i32),
      T.v128,
      T.v128,
      T.f32,
      T.f32,
    ],
    body: forRange(R, i32(0), get(ROWS), [
      // p, q, o: this row of a, b and out.
      ...get(A),
      ...get(R),
      ...get(AROW),
      ...I32.mul,
      ...I32.add,
      ...set(P),
      ...get(B),
      ...get(R),
      ...get(BROW),
      ...I32.mul,
      ...I32.add,
      ...set(Q),
      ...splatRow(aSplat, P, AV, AS),
      ...splatRow(bSplat, Q, BV, BS),
      ...get(OUT),
      ...get(R),
      ...get(OROW),
      ...I32.mul,
      ...I32.add,
      ...simdBounds(O, NBYTES, END, END16),
      ...get(O),
      ...get(NBYTES),
      ...i32(-64),
      ...I32.and,
      ...I32.add,
      ...set(END64),
      // 64 bytes per iteration while they last, then 16, then 4.
      ...whileLoop([...get(O), ...get(END64), ...I32.ltU], [
        ...[0, 16, 32, 48].flatMap((k) => [
          ...get(O),
          ...vector(aSplat, P, AV, k),
          ...vector(bSplat, Q, BV, k),
          ...wide,
          ...v128StoreAt(k),
        ]),
        ...step(64),
      ]),
      ...whileLoop([...get(O), ...get(END16), ...I32.ltU], [
        ...get(O),
        ...vector(aSplat, P, AV, 0),
        ...vector(bSplat, Q, BV, 0),
        ...wide,
        ...V128.store,
        ...step(16),
      ]),
      ...whileLoop([...get(O), ...get(END), ...I32.ltU], [
        ...get(O),
        ...scalar(aSplat, P, AS),
        ...scalar(bSplat, Q, BS),
        ...narrow,
        ...F32.store,
        ...step(4),
      ]),
    ]),
  };
}

/** out[i] = x[i] < 0 ? alpha x[i] : x[i]. Params: x, out, nBytes, alpha (f32). */
const LEAKY_RELU: WasmFunction = (() => {
  const [X, OUT, NBYTES, ALPHA] = [0, 1, 2, 3];
  const [P, O, END, END16, AV, XV, XS] = [4, 5, 6, 7, 8, 9, 10];
  const advance = (bytes: number) => [
    ...addTo(P, i32(bytes)),
    ...addTo(O, i32(bytes)),
  ];
  return {
    name: "leakyRelu",
    params: [T.i32, T.i32, T.i32, T.f32],
    locals: [T.i32, T.i32, T.i32, T.i32, T.v128, T.v128, T.f32],
    body: [
      ...get(ALPHA),
      ...SIMD.f32x4Splat,
      ...set(AV),
      ...get(X),
      ...set(P),
      ...get(OUT),
      ...simdBounds(O, NBYTES, END, END16),
      ...whileLoop([...get(O), ...get(END16), ...I32.ltU], [
        ...get(P),
        ...V128.load,
        ...set(XV),
        ...get(O),
        ...get(XV),
        ...get(AV),
        ...SIMD.f32x4Mul,
        ...get(XV),
        ...get(XV),
        ...V128.zero,
        ...SIMD.f32x4Lt,
        ...SIMD.bitselect,
        ...V128.store,
        ...advance(16),
      ]),
      ...whileLoop([...get(O), ...get(END), ...I32.ltU], [
        ...get(P),
        ...F32.load,
        ...set(XS),
        ...get(O),
        ...get(XS),
        ...get(ALPHA),
        ...SCALAR.f32Mul,
        ...get(XS),
        ...get(XS),
        ...F32.zero,
        ...SCALAR.f32Lt,
        ...select,
        ...F32.store,
        ...advance(4),
      ]),
    ],
  };
})();

/** The comparisons: SIMD (f32x4, lanes of all ones) and scalar (f32, 0/1). */
const COMPARISONS = {
  Equal: { wide: [0xfd, 0x41], narrow: [0x5b] },
  NotEqual: { wide: [0xfd, 0x42], narrow: [0x5c] },
  Less: { wide: [0xfd, 0x43], narrow: [0x5d] },
  Greater: { wide: [0xfd, 0x44], narrow: [0x5e] },
  LessEqual: { wide: [0xfd, 0x45], narrow: [0x5f] },
  GreaterEqual: { wide: [0xfd, 0x46], narrow: [0x60] },
} as const;
type ComparisonName = keyof typeof COMPARISONS;

/**
 * out[i] = a[i] op b[i] as one byte (bool), 16 per iteration. `scalar`
 * says which side is one float (splatted), if any. Params: a, b, out, n.
 */
function compareFunction(
  name: ComparisonName,
  scalar: "none" | "a" | "b",
): WasmFunction {
  const [A, B, OUT, N] = [0, 1, 2, 3];
  const [P, Q, O, END, END16, AS, BS, ONES] = [4, 5, 6, 7, 8, 9, 10, 11];
  const lhs = (k: number) =>
    scalar === "a" ? get(AS) : [...get(P), ...v128LoadAt(k)];
  const rhs = (k: number) =>
    scalar === "b" ? get(BS) : [...get(Q), ...v128LoadAt(k)];
  const { wide, narrow } = COMPARISONS[name];
  const mask = (k: number) => [...lhs(k), ...rhs(k), ...wide];
  const advance = (out: number, input: number) => [
    ...addTo(O, i32(out)),
    ...(scalar === "a" ? [] : addTo(P, i32(input))),
    ...(scalar === "b" ? [] : addTo(Q, i32(input))),
  ];
  return {
    name: `${name}_${scalar}`,
    params: 4,
    locals: [...new Array(5).fill(T.i32), T.v128, T.v128, T.v128],
    body: [
      ...get(A),
      ...tee(P),
      ...F32.load,
      ...SIMD.f32x4Splat,
      ...set(AS),
      ...get(B),
      ...tee(Q),
      ...F32.load,
      ...SIMD.f32x4Splat,
      ...set(BS),
      ...i32(1),
      ...SIMD.i8x16Splat,
      ...set(ONES),
      ...get(OUT),
      ...simdBounds(O, N, END, END16),
      ...whileLoop([...get(O), ...get(END16), ...I32.ltU], [
        ...get(O),
        ...mask(0),
        ...mask(16),
        ...SIMD.i16x8NarrowI32x4S,
        ...mask(32),
        ...mask(48),
        ...SIMD.i16x8NarrowI32x4S,
        ...SIMD.i8x16NarrowI16x8S,
        ...get(ONES),
        ...SIMD.and,
        ...V128.store,
        ...advance(16, 64),
      ]),
      ...whileLoop([...get(O), ...get(END), ...I32.ltU], [
        ...get(O),
        ...get(P),
        ...F32.load,
        ...get(Q),
        ...F32.load,
        ...narrow,
        ...SCALAR.i32Store8,
        ...advance(1, 4),
      ]),
    ],
  };
}

/**
 * The general two-level broadcast, one element at a time: for r < rows,
 * j < n, out[r n + j] = a[r ra + j ca] op b[r rb + j cb] (strides in bytes:
 * a row stride of 0 repeats a row, a column stride of 0 a column value).
 * Params: a, ra, ca, b, rb, cb, out, rows, n.
 */
function compareStridedFunction(name: ComparisonName): WasmFunction {
  const [A, RA, CA, B, RB, CB, OUT, ROWS, N] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [R, J, P, Q, O] = [9, 10, 11, 12, 13];
  const { narrow } = COMPARISONS[name];
  return {
    name: `${name}_strided`,
    params: 9,
    locals: new Array(5).fill(T.i32),
    body: [
      ...get(OUT),
      ...set(O),
      ...forRange(R, i32(0), get(ROWS), [
        ...get(A),
        ...get(R),
        ...get(RA),
        ...I32.mul,
        ...I32.add,
        ...set(P),
        ...get(B),
        ...get(R),
        ...get(RB),
        ...I32.mul,
        ...I32.add,
        ...set(Q),
        ...forRange(J, i32(0), get(N), [
          ...get(O),
          ...get(P),
          ...F32.load,
          ...get(Q),
          ...F32.load,
          ...narrow,
          ...SCALAR.i32Store8,
          ...addTo(O, i32(1)),
          ...addTo(P, get(CA)),
          ...addTo(Q, get(CB)),
        ]),
      ]),
    ],
  };
}

/**
 * a op b with its broadcast as [rows, n] and each operand's row and
 * column strides (in elements), or null when the broadcast does not fold
 * into two levels. Dimensions where the output is 1 are skipped; runs of
 * dimensions where each operand is either full or broadcast alike merge.
 */
export function twoLevelBroadcast(
  aShape: number[],
  bShape: number[],
  outShape: number[],
):
  | { rows: number; n: number; a: [number, number]; b: [number, number] }
  | null {
  const rank = outShape.length;
  const pad = (s: number[]) => [...new Array(rank - s.length).fill(1), ...s];
  const [pa, pb] = [pad(aShape), pad(bShape)];
  const groups: { a: boolean; b: boolean; size: number }[] = [];
  for (let d = 0; d < rank; d++) {
    if (outShape[d] === 1) continue;
    const a = pa[d] !== 1;
    const b = pb[d] !== 1;
    const last = groups.at(-1);
    if (last && last.a === a && last.b === b) last.size *= outShape[d];
    else groups.push({ a, b, size: outShape[d] });
  }
  if (groups.length > 2) return null;
  const [outer, inner] = groups.length === 2 ? groups : [
    { a: false, b: false, size: 1 },
    groups[0] ?? { a: true, b: true, size: 1 },
  ];
  const strides = (full: (g: typeof outer) => boolean): [number, number] => [
    full(outer) ? (full(inner) ? inner.size : 1) : 0,
    full(inner) ? 1 : 0,
  ];
  return {
    rows: outer.size,
    n: inner.size,
    a: strides((g) => g.a),
    b: strides((g) => g.b),
  };
}

/**
 * out[i] = cond[i] ? t[i] : e[i] (cond bytes 0/1), 4 per iteration.
 * Params: cond, t, e, out, n.
 */
const SELECT: WasmFunction = (() => {
  const [COND, TV, EV, OUT, N] = [0, 1, 2, 3, 4];
  const [C, P, Q, O, END, END16] = [5, 6, 7, 8, 9, 10];
  const advance = (bytes: number) => [
    ...addTo(C, i32(bytes / 4)),
    ...addTo(P, i32(bytes)),
    ...addTo(Q, i32(bytes)),
    ...addTo(O, i32(bytes)),
  ];
  return {
    name: "select",
    params: 5,
    locals: new Array(6).fill(T.i32),
    body: [
      ...get(COND),
      ...set(C),
      ...get(TV),
      ...set(P),
      ...get(EV),
      ...set(Q),
      ...get(OUT),
      ...tee(O),
      ...get(N),
      ...i32(2),
      ...I32.shl,
      ...I32.add,
      ...set(END),
      ...get(O),
      ...get(N),
      ...i32(-4),
      ...I32.and,
      ...i32(2),
      ...I32.shl,
      ...I32.add,
      ...set(END16),
      ...whileLoop([...get(O), ...get(END16), ...I32.ltU], [
        ...get(O),
        ...get(P),
        ...V128.load,
        ...get(Q),
        ...V128.load,
        // 4 condition bytes -> 4 lanes of all ones (true) or zeros.
        ...get(C),
        ...SIMD.load32Zero,
        ...SIMD.i16x8ExtendLowI8x16U,
        ...SIMD.i32x4ExtendLowI16x8U,
        ...V128.zero,
        ...SIMD.i32x4Ne,
        ...SIMD.bitselect,
        ...V128.store,
        ...advance(16),
      ]),
      ...whileLoop([...get(O), ...get(END), ...I32.ltU], [
        ...get(O),
        ...get(P),
        ...F32.load,
        ...get(Q),
        ...F32.load,
        ...get(C),
        ...SCALAR.i32Load8U,
        ...select,
        ...F32.store,
        ...advance(4),
      ]),
    ],
  };
})();

/**
 * out = dy - (dy y) y (params: dy, y, out, nBytes): tanh's gradient from
 * its output y, each product and the difference rounded to float32 as
 * the two Multiply kernels and the Sub that compute it separately (so
 * the same bits), in one pass over the memory.
 */
const TANH_GRAD: WasmFunction = (() => {
  const [DY, Y, OUT, NBYTES] = [0, 1, 2, 3];
  const [P, Q, O, END, END16, DV, DS] = [4, 5, 6, 7, 8, 9, 10];
  const advance = (bytes: number) => [
    ...addTo(P, i32(bytes)),
    ...addTo(Q, i32(bytes)),
    ...addTo(O, i32(bytes)),
  ];
  const { wide: f32x4Sub, narrow: f32Sub } = OPS.Sub;
  return {
    name: "tanhGrad",
    params: 4,
    locals: [T.i32, T.i32, T.i32, T.i32, T.i32, T.v128, T.f32],
    body: [
      ...get(DY),
      ...set(P),
      ...get(Y),
      ...set(Q),
      ...get(OUT),
      ...simdBounds(O, NBYTES, END, END16),
      ...whileLoop([...get(O), ...get(END16), ...I32.ltU], [
        ...get(O),
        ...get(P),
        ...V128.load,
        ...tee(DV),
        ...get(DV),
        ...get(Q),
        ...V128.load,
        ...SIMD.f32x4Mul,
        ...get(Q),
        ...V128.load,
        ...SIMD.f32x4Mul,
        ...f32x4Sub,
        ...V128.store,
        ...advance(16),
      ]),
      ...whileLoop([...get(O), ...get(END), ...I32.ltU], [
        ...get(O),
        ...get(P),
        ...F32.load,
        ...tee(DS),
        ...get(DS),
        ...get(Q),
        ...F32.load,
        ...SCALAR.f32Mul,
        ...get(Q),
        ...F32.load,
        ...SCALAR.f32Mul,
        ...f32Sub,
        ...F32.store,
        ...advance(4),
      ]),
    ],
  };
})();

const FUNCTIONS: WasmFunction[] = [
  ...(Object.keys(OPS) as OpName[]).flatMap((op) => [
    rowsFunction(op, false, false),
    rowsFunction(op, false, true),
    rowsFunction(op, true, false),
  ]),
  LEAKY_RELU,
  TANH_GRAD,
  ...(Object.keys(COMPARISONS) as ComparisonName[]).flatMap((name) => [
    compareFunction(name, "none"),
    compareFunction(name, "a"),
    compareFunction(name, "b"),
    compareStridedFunction(name),
  ]),
  SELECT,
];

type Exports = Record<string, (...a: number[]) => void>;
const modules = new WeakMap<WebAssembly.Memory, Exports>();

/** How `a op b` maps onto the SIMD loops, or null for the built-in. */
type Plan = NonNullable<ReturnType<typeof twoLevelBroadcast>>;

/**
 * The plan for float32 a op b with broadcast output shape `out`: any
 * broadcast that folds into [rows, n] with each side full, a row, a column
 * or a scalar (`twoLevelBroadcast`); null otherwise.
 */
export function planBinary(
  aShape: number[],
  bShape: number[],
  outShape: number[],
): Plan | null {
  const plan = twoLevelBroadcast(aShape, bShape, outShape);
  // Both sides one float per row happens only for a 1-element output.
  if (plan && plan.a[1] === 0 && plan.b[1] === 0 && plan.n !== 1) return null;
  return plan;
}

/** `twoLevelBroadcast`'s plan for two operands of one shape with n elements. */
function equalShapesPlan(n: number): Plan {
  return { rows: 1, n, a: [0, 1], b: [0, 1] };
}

function binaryKernel(op: OpName) {
  // The SIMD loop for each operand mode, named once (v: full, s: one
  // float per row), rather than a new string per call.
  const loops = { vv: `${op}_vv`, vs: `${op}_vs`, sv: `${op}_sv` } as const;
  return (args: KernelArgs): tf.TensorInfo => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (a.dtype !== "float32" || b.dtype !== "float32") {
      return builtin(op)(args);
    }
    // Equal shapes (most calls: a gradient's accumulation, an update), a
    // scalar side and a row added to every row of a matrix (a bias) are
    // the plans twoLevelBroadcast gives them, without its bookkeeping.
    const same = tf.util.arraysEqual(a.shape, b.shape);
    const outShape = same
      ? [...a.shape]
      : tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const plan = same
      ? equalShapesPlan(tf.util.sizeFromShape(outShape))
      : directPlan(a.shape, b.shape) ??
        planBinary(a.shape, b.shape, outShape);
    const fns = functionsFor(args.backend);
    if (plan === null || fns === null) return builtin(op)(args);
    const wasm = args.backend as WasmBackendLike;
    const out = wasm.makeOutput(outShape, "float32");
    if (plan.rows * plan.n === 0) return out;
    // A 1-element output: both sides full.
    const one = plan.n === 1 && plan.rows === 1;
    const loop = one || (plan.a[1] !== 0 && plan.b[1] !== 0)
      ? loops.vv
      : plan.a[1] === 0
      ? loops.sv
      : loops.vs;
    fns[loop](
      heapOffset(wasm, a),
      4 * plan.a[0],
      heapOffset(wasm, b),
      4 * plan.b[0],
      heapOffset(wasm, out),
      4 * plan.n,
      plan.rows,
      4 * plan.n,
    );
    return out;
  };
}

/**
 * `twoLevelBroadcast`'s plan for the common broadcasts, made directly: a
 * scalar (any 1-element shape) op a full operand of n > 1 elements, either
 * way round, and a [rows, n] matrix op a row b [n] (rows, n > 1, a bias);
 * null for anything else.
 */
function directPlan(aShape: number[], bShape: number[]): Plan | null {
  const [na, nb] = [
    tf.util.sizeFromShape(aShape),
    tf.util.sizeFromShape(bShape),
  ];
  if (na === 1 && nb > 1) return { rows: 1, n: nb, a: [0, 0], b: [0, 1] };
  if (nb === 1 && na > 1) return { rows: 1, n: na, a: [0, 1], b: [0, 0] };
  if (
    aShape.length !== 2 || bShape.length !== 1 || aShape[1] !== bShape[0] ||
    aShape[0] < 2 || bShape[0] < 2
  ) return null;
  return { rows: aShape[0], n: aShape[1], a: [aShape[1], 1], b: [0, 1] };
}

/** The SIMD functions bound to this backend's memory, or null. */
function functionsFor(backend: unknown): Exports | null {
  const memory = backendMemory(backend);
  return memory === null ? null : instantiateOn(modules, memory, FUNCTIONS);
}

/**
 * LeakyRelu (float32): the built-in ran at ~2 ns per element, 13x slower
 * than Relu (56 µs for 128 x 256); a GAN step runs 10 of them.
 */
function leakyRelu(args: KernelArgs): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const fns = functionsFor(args.backend);
  if (x.dtype !== "float32" || fns === null) return builtin("LeakyRelu")(args);
  const { alpha } = args.attrs as unknown as { alpha: number };
  const wasm = args.backend as WasmBackendLike;
  const out = wasm.makeOutput([...x.shape], "float32");
  const n = tf.util.sizeFromShape(x.shape);
  if (n > 0) {
    fns.leakyRelu(heapOffset(wasm, x), heapOffset(wasm, out), 4 * n, alpha);
  }
  return out;
}

/**
 * The float32 comparisons (Equal, NotEqual, Less, Greater, LessEqual,
 * GreaterEqual): SIMD loops for equal shapes or a scalar side, a strided
 * loop for any broadcast that folds into two levels (e.g. [128, 30, 10]
 * against its row maxima [128, 30, 1]). The built-in's broadcast path took
 * 214 µs for 128 x 256 against a scalar and 5.7 ms for that row-max
 * comparison. Comparisons are exact, so the results are the built-in's.
 */
function comparison(name: ComparisonName) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const fns = functionsFor(args.backend);
    const size = tf.util.sizeFromShape;
    if (a.dtype !== "float32" || b.dtype !== "float32" || fns === null) {
      return builtin(name)(args);
    }
    const outShape = tf.backend_util.assertAndGetBroadcastShape(
      a.shape,
      b.shape,
    );
    const n = size(outShape);
    const [na, nb] = [size(a.shape), size(b.shape)];
    const plan = (na === n || na === 1) && (nb === n || nb === 1)
      ? null
      : twoLevelBroadcast(a.shape, b.shape, outShape);
    if (plan === null && !((na === n || na === 1) && (nb === n || nb === 1))) {
      return builtin(name)(args);
    }
    const wasm = args.backend as WasmBackendLike;
    const out = wasm.makeOutput(outShape, "bool");
    if (n === 0) return out;
    const [pa, pb, po] = [a, b, out].map((t) => heapOffset(wasm, t));
    if (plan === null) {
      const scalar = na === n ? (nb === n ? "none" : "b") : "a";
      fns[`${name}_${scalar}`](pa, pb, po, n);
    } else {
      fns[`${name}_strided`](
        pa,
        4 * plan.a[0],
        4 * plan.a[1],
        pb,
        4 * plan.b[0],
        4 * plan.b[1],
        po,
        plan.rows,
        plan.n,
      );
    }
    return out;
  };
}

/**
 * Select (a bool condition, float32 branches, all of one size): the other
 * half of LeakyRelu's gradient, 165 µs for 128 x 256 in the built-in.
 */
function selectKernel(args: KernelArgs): tf.TensorInfo {
  const { condition, t, e } = args.inputs as Record<string, tf.TensorInfo>;
  const fns = functionsFor(args.backend);
  const size = tf.util.sizeFromShape;
  const n = size(t.shape);
  if (
    fns === null || t.dtype !== "float32" || e.dtype !== "float32" ||
    condition.dtype !== "bool" || size(condition.shape) !== n ||
    size(e.shape) !== n
  ) {
    return builtin("Select")(args);
  }
  const wasm = args.backend as WasmBackendLike;
  const out = wasm.makeOutput([...t.shape], "float32");
  if (n > 0) {
    fns.select(
      heapOffset(wasm, condition),
      heapOffset(wasm, t),
      heapOffset(wasm, e),
      heapOffset(wasm, out),
      n,
    );
  }
  return out;
}

/**
 * The sum of the rows of x [rows, n] into out [n], in order from row 0:
 * the same float32 additions as a loop over rows, in SIMD. For `Sum`
 * over leading axes (kernels/fast_kernels.ts); false when the backend's
 * memory cannot be had.
 */
export function sumRows(
  backend: unknown,
  x: tf.TensorInfo,
  out: tf.TensorInfo,
  rows: number,
  n: number,
): boolean {
  const fns = functionsFor(backend);
  if (fns === null) return false;
  const wasm = backend as WasmBackendLike;
  const o = heapOffset(wasm, out);
  heapF32(wasm).fill(0, o >> 2, (o >> 2) + n);
  fns.Add_vv(o, 0, heapOffset(wasm, x), 4 * n, o, 0, rows, 4 * n);
  return true;
}

/**
 * dy - (dy y) y into `out` for float32 tensors of `n` elements: tanh's
 * gradient in one pass, the bits of Multiply, Multiply and Sub (for the
 * dense gradient kernel, kernels/dense.ts); false when the backend's
 * memory cannot be had.
 */
export function tanhGradInto(
  backend: unknown,
  dy: tf.TensorInfo,
  y: tf.TensorInfo,
  out: tf.TensorInfo,
  n: number,
): boolean {
  const fns = functionsFor(backend);
  if (fns === null) return false;
  if (n > 0) {
    fns.tanhGrad(
      heapOffset(backend, dy),
      heapOffset(backend, y),
      heapOffset(backend, out),
      4 * n,
    );
  }
  return true;
}

/** The elementwise kernels, by name. */
export const ELEMENTWISE_KERNELS: Record<
  string,
  (args: KernelArgs) => tf.TensorInfo
> = {
  Add: binaryKernel("Add"),
  Sub: binaryKernel("Sub"),
  Multiply: binaryKernel("Multiply"),
  RealDiv: binaryKernel("RealDiv"),
  LeakyRelu: leakyRelu,
  ...Object.fromEntries(
    (Object.keys(COMPARISONS) as ComparisonName[]).map((name) => [
      name,
      comparison(name),
    ]),
  ),
  Select: selectKernel,
};

/** The built-ins they fall back to. */
export const ELEMENTWISE_BUILTINS: readonly string[] = Object.keys(
  ELEMENTWISE_KERNELS,
);
