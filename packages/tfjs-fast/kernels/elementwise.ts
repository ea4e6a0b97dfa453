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
  I32,
  i32,
  ifElse,
  instantiateOn,
  set,
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
} as const;
type OpName = keyof typeof OPS;

const SPLAT = [0xfd, 0x13]; // f32x4.splat

/**
 * rows x n: out[r, j] = a[r * aRow + j] op b[r * bRow + j] (strides in
 * elements: n for a full operand, 0 for a broadcast row).
 * Params: a, aRowBytes, b, bRowBytes, out, rows, nBytes (byte offsets/sizes).
 */
function rowsFunction(op: OpName): WasmFunction {
  const [A, AROW, B, BROW, OUT, ROWS, NBYTES] = [0, 1, 2, 3, 4, 5, 6];
  const [R, P, Q, O, END, END16, END64] = [7, 8, 9, 10, 11, 12, 13];
  const { wide, narrow } = OPS[op];
  const step = (bytes: number) => [
    ...addTo(P, i32(bytes)),
    ...addTo(Q, i32(bytes)),
    ...addTo(O, i32(bytes)),
  ];
  return {
    name: `${op}_rows`,
    params: 7,
    locals: new Array(7).fill(T.i32),
    body: forRange(R, i32(0), get(ROWS), [
      // p, q: this row of a and b; o: of out (rows are contiguous in out).
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
      ...get(OUT),
      ...get(R),
      ...get(NBYTES),
      ...I32.mul,
      ...I32.add,
      ...tee(O),
      ...get(NBYTES),
      ...I32.add,
      ...set(END),
      ...get(O),
      ...get(NBYTES),
      ...i32(-16),
      ...I32.and,
      ...I32.add,
      ...set(END16),
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
          ...get(P),
          ...v128LoadAt(k),
          ...get(Q),
          ...v128LoadAt(k),
          ...wide,
          ...v128StoreAt(k),
        ]),
        ...step(64),
      ]),
      ...whileLoop([...get(O), ...get(END16), ...I32.ltU], [
        ...get(O),
        ...get(P),
        ...V128.load,
        ...get(Q),
        ...V128.load,
        ...wide,
        ...V128.store,
        ...step(16),
      ]),
      ...whileLoop([...get(O), ...get(END), ...I32.ltU], [
        ...get(O),
        ...get(P),
        ...F32.load,
        ...get(Q),
        ...F32.load,
        ...narrow,
        ...F32.store,
        ...step(4),
      ]),
    ]),
  };
}

/**
 * out[i] = a[i] op s (scalarFirst 0) or s op a[i] (scalarFirst 1), with s
 * the float at byte offset `scalar`. Params: a, scalar, out, nBytes,
 * scalarFirst.
 */
function scalarFunction(op: OpName): WasmFunction {
  const [A, S, OUT, NBYTES, FIRST] = [0, 1, 2, 3, 4];
  const [P, O, END, END16] = [5, 6, 7, 8];
  const [SV, SS] = [9, 10]; // the scalar splatted (v128) and plain (f32)
  const { wide, narrow } = OPS[op];
  const loops = (first: boolean) => {
    const pair = (vector: boolean) => {
      const x = vector ? [...get(P), ...V128.load] : [...get(P), ...F32.load];
      const s = get(vector ? SV : SS);
      return first ? [...s, ...x] : [...x, ...s];
    };
    const advance = (
      bytes: number,
    ) => [...addTo(P, i32(bytes)), ...addTo(O, i32(bytes))];
    return [
      ...whileLoop([...get(O), ...get(END16), ...I32.ltU], [
        ...get(O),
        ...pair(true),
        ...wide,
        ...V128.store,
        ...advance(16),
      ]),
      ...whileLoop([...get(O), ...get(END), ...I32.ltU], [
        ...get(O),
        ...pair(false),
        ...narrow,
        ...F32.store,
        ...advance(4),
      ]),
    ];
  };
  return {
    name: `${op}_scalar`,
    params: 5,
    locals: [T.i32, T.i32, T.i32, T.i32, T.v128, T.f32],
    body: [
      ...get(S),
      ...F32.load,
      ...tee(SS),
      ...SPLAT,
      ...set(SV),
      ...get(A),
      ...set(P),
      ...get(OUT),
      ...tee(O),
      ...get(NBYTES),
      ...I32.add,
      ...set(END),
      ...get(O),
      ...get(NBYTES),
      ...i32(-16),
      ...I32.and,
      ...I32.add,
      ...set(END16),
      ...ifElse(get(FIRST), loops(true), loops(false)),
    ],
  };
}

const FUNCTIONS: WasmFunction[] = (Object.keys(OPS) as OpName[]).flatMap((
  op,
) => [rowsFunction(op), scalarFunction(op)]);

type Exports = Record<string, (...a: number[]) => void>;
const modules = new WeakMap<WebAssembly.Memory, Exports>();

/** How `a op b` maps onto the SIMD loops, or null for the built-in. */
type Plan =
  | { kind: "rows"; rows: number; n: number; aRow: number; bRow: number }
  | { kind: "scalar"; scalarFirst: boolean; n: number };

/** The plan for float32 a op b with broadcast output shape `out`. */
export function planBinary(
  aShape: number[],
  bShape: number[],
  outShape: number[],
): Plan | null {
  const size = tf.util.sizeFromShape;
  const n = size(outShape);
  const na = size(aShape);
  const nb = size(bShape);
  if (na === n && nb === n) {
    return { kind: "rows", rows: 1, n, aRow: 0, bRow: 0 };
  }
  if (nb === 1 && na === n) return { kind: "scalar", scalarFirst: false, n };
  if (na === 1 && nb === n) return { kind: "scalar", scalarFirst: true, n };
  // A trailing row: the smaller operand's shape, without leading 1s, is the
  // end of the output shape.
  const trailing = (small: number[]) => {
    const s = small.slice(small.findIndex((d) => d !== 1));
    return s.length > 0 && s.length <= outShape.length &&
      s.every((d, i) => d === outShape[outShape.length - s.length + i]);
  };
  if (na === n && nb > 0 && trailing(bShape)) {
    return { kind: "rows", rows: n / nb, n: nb, aRow: nb, bRow: 0 };
  }
  if (nb === n && na > 0 && trailing(aShape)) {
    return { kind: "rows", rows: n / na, n: na, aRow: 0, bRow: na };
  }
  return null;
}

function binaryKernel(op: OpName) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (a.dtype !== "float32" || b.dtype !== "float32") {
      return builtin(op)(args);
    }
    const outShape = tf.backend_util.assertAndGetBroadcastShape(
      a.shape,
      b.shape,
    );
    const plan = planBinary(a.shape, b.shape, outShape);
    const memory = backendMemory(args.backend);
    if (plan === null || memory === null) return builtin(op)(args);
    const wasm = args.backend as WasmBackendLike;
    const out = wasm.makeOutput(outShape, "float32");
    if (plan.n === 0) return out;
    const fns = instantiateOn(modules, memory, FUNCTIONS);
    const at = (t: tf.TensorInfo) => wasm.typedArrayFromHeap(t).byteOffset;
    if (plan.kind === "scalar") {
      const [x, s] = plan.scalarFirst ? [b, a] : [a, b];
      fns[`${op}_scalar`](
        at(x),
        at(s),
        at(out),
        4 * plan.n,
        plan.scalarFirst ? 1 : 0,
      );
    } else {
      fns[`${op}_rows`](
        at(a),
        4 * plan.aRow,
        at(b),
        4 * plan.bRow,
        at(out),
        plan.rows,
        4 * plan.n,
      );
    }
    return out;
  };
}

/** The elementwise kernels, by name. */
export const ELEMENTWISE_KERNELS = {
  Add: binaryKernel("Add"),
  Sub: binaryKernel("Sub"),
  Multiply: binaryKernel("Multiply"),
};

/** The built-ins they fall back to. */
export const ELEMENTWISE_BUILTINS: readonly string[] = Object.keys(OPS);
