/**
 * im2col and col2im as WebAssembly SIMD loops on the wasm backend's memory:
 * the data movement of every convolution kernel of kernels/conv_kernels.ts,
 * whose arithmetic is one matMul (OpenBLAS's sgemm, or wasm's own).
 *
 * For an NHWC image x [B, H, W, C] and a filter FH x FW with strides SH, SW
 * and top/left padding PT, PL, the patch matrix has one row per output
 * position (b, oh, ow) and one column per filter tap (fh, fw, c):
 *
 *   patches[(b, oh, ow), (fh, fw, c)] = x[b, oh SH + fh - PT, ow SW + fw - PL, c]
 *
 * (0 outside the image). For fixed (b, oh, ow, fh) the taps fw = 0..FW-1
 * read consecutive pixels of one image row, so each such run of FW x C
 * floats is one contiguous copy (clipped at the image border, zeros
 * beside): `im2col` copies 16 bytes at a time. `col2im` is its adjoint, a
 * scatter-add of the runs back onto a zeroed image (the input gradient of
 * conv2d, the forward pass of conv2dTranspose).
 *
 * Tested through the kernels against the cpu backend
 * (tests/conv_kernels.test.ts).
 *
 * @module
 */
import {
  addTo,
  F32,
  forRange,
  get,
  I32,
  i32,
  ifElse,
  instantiateOn,
  select,
  set,
  T,
  tee,
  V128,
  type WasmFunction,
  whileLoop,
} from "./wasm_module.ts";

/** Geometry of one im2col/col2im call (sizes in elements). */
export interface PatchGeometry {
  batch: number;
  /** The image: height, width, channels. */
  height: number;
  width: number;
  channels: number;
  /** The output grid. */
  outHeight: number;
  outWidth: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
}

// Parameters (all i32): two byte offsets, then the geometry.
const SRC = 0; // x for im2col, the patch matrix for col2im
const DST = 1; // the patch matrix for im2col, the image for col2im
const B = 2;
const H = 3;
const W = 4;
const C = 5;
const OH = 6;
const OW = 7;
const FH = 8;
const FW = 9;
const SH = 10;
const SW = 11;
const PT = 12;
const PL = 13;
const PARAMS = 14;
// Locals.
const L = {
  b: 14,
  oh: 15,
  ow: 16,
  fh: 17,
  iw0: 18, // image column of tap fw = 0
  lo: 19, // first tap inside the image
  hi: 20, // one past the last tap inside the image
  ih: 21,
  row: 22, // byte offset of the current patch run
  cBytes: 23, // C * 4
  runBytes: 24, // FW * C * 4
  p: 25,
  q: 26,
  end: 27,
  end16: 28,
  n: 29,
} as const;
const LOCALS = new Array(16).fill(T.i32);

/** `[p, end)` and `end16` (the last full 16-byte step) from `dst`, `n`. */
function runBounds(dst: number[], n: number[]): number[] {
  return [
    ...dst,
    ...tee(L.p),
    ...n,
    ...tee(L.n),
    ...I32.add,
    ...set(L.end),
    ...get(L.p),
    ...get(L.n),
    ...i32(-16),
    ...I32.and,
    ...I32.add,
    ...set(L.end16),
  ];
}

/** The loops over a run: 16 bytes per step, then 4 (runs are whole floats). */
function runLoops(wide: number[], narrow: number[], withSource: boolean) {
  const advance = (bytes: number) => [
    ...addTo(L.p, i32(bytes)),
    ...(withSource ? addTo(L.q, i32(bytes)) : []),
  ];
  return [
    ...whileLoop([...get(L.p), ...get(L.end16), ...I32.ltU], [
      ...wide,
      ...advance(16),
    ]),
    ...whileLoop([...get(L.p), ...get(L.end), ...I32.ltU], [
      ...narrow,
      ...advance(4),
    ]),
  ];
}

/** dst[0, n) = src[0, n) (bytes). */
function copyRun(dst: number[], src: number[], n: number[]): number[] {
  return [
    ...runBounds(dst, n),
    ...src,
    ...set(L.q),
    ...runLoops(
      [...get(L.p), ...get(L.q), ...V128.load, ...V128.store],
      [...get(L.p), ...get(L.q), ...F32.load, ...F32.store],
      true,
    ),
  ];
}

/** dst[0, n) = 0 (bytes). */
function zeroRun(dst: number[], n: number[]): number[] {
  return [
    ...runBounds(dst, n),
    ...runLoops(
      [...get(L.p), ...V128.zero, ...V128.store],
      [...get(L.p), ...F32.zero, ...F32.store],
      false,
    ),
  ];
}

/** dst[0, n) += src[0, n) (float32, bytes). */
function addRun(dst: number[], src: number[], n: number[]): number[] {
  return [
    ...runBounds(dst, n),
    ...src,
    ...set(L.q),
    ...runLoops(
      [
        ...get(L.p),
        ...get(L.p),
        ...V128.load,
        ...get(L.q),
        ...V128.load,
        ...V128.f32x4Add,
        ...V128.store,
      ],
      [
        ...get(L.p),
        ...get(L.p),
        ...F32.load,
        ...get(L.q),
        ...F32.load,
        ...F32.add,
        ...F32.store,
      ],
      true,
    ),
  ];
}

/** `local * k` in bytes of runs: local * C * 4. */
const taps = (local: number) => [...get(local), ...get(L.cBytes), ...I32.mul];

/**
 * The image byte offset of pixel (b, ih, iw0 + lo): where the inside part
 * of the current run starts.
 */
function pixelOffset(image: number): number[] {
  return [
    ...get(image),
    ...get(L.b),
    ...get(H),
    ...I32.mul,
    ...get(L.ih),
    ...I32.add,
    ...get(W),
    ...I32.mul,
    ...get(L.iw0),
    ...I32.add,
    ...get(L.lo),
    ...I32.add,
    ...get(L.cBytes),
    ...I32.mul,
    ...I32.add,
  ];
}

/**
 * The loop nest shared by both functions: for each output position and
 * filter row, `run` handles one run of FW taps at `row` (the patch
 * matrix's byte offset), with `[lo, hi)` the taps inside the image and
 * `ih` the image row (inside when `ih <u H`).
 */
function patchLoops(rowStart: number, run: number[]): number[] {
  const ow = [
    // iw0 = ow SW - PL; lo = clamp(-iw0, 0, FW); hi = clamp(W - iw0, lo, FW)
    ...get(L.ow),
    ...get(SW),
    ...I32.mul,
    ...get(PL),
    ...I32.sub,
    ...set(L.iw0),
    ...i32(0),
    ...get(L.iw0),
    ...I32.sub,
    ...i32(0),
    ...get(L.iw0),
    ...i32(0),
    ...I32.ltS,
    ...select,
    ...set(L.lo),
    ...get(FW),
    ...get(L.lo),
    ...get(L.lo),
    ...get(FW),
    ...I32.gtS,
    ...select,
    ...set(L.lo),
    ...get(W),
    ...get(L.iw0),
    ...I32.sub,
    ...set(L.hi),
    ...get(FW),
    ...get(L.hi),
    ...get(L.hi),
    ...get(FW),
    ...I32.gtS,
    ...select,
    ...set(L.hi),
    ...get(L.lo),
    ...get(L.hi),
    ...get(L.hi),
    ...get(L.lo),
    ...I32.ltS,
    ...select,
    ...set(L.hi),
    ...forRange(L.fh, i32(0), get(FH), [
      // ih = oh SH + fh - PT
      ...get(L.oh),
      ...get(SH),
      ...I32.mul,
      ...get(L.fh),
      ...I32.add,
      ...get(PT),
      ...I32.sub,
      ...set(L.ih),
      ...run,
      ...addTo(L.row, get(L.runBytes)),
    ]),
  ];
  return [
    ...get(C),
    ...i32(2),
    ...I32.shl,
    ...set(L.cBytes),
    ...get(FW),
    ...get(L.cBytes),
    ...I32.mul,
    ...set(L.runBytes),
    ...get(rowStart),
    ...set(L.row),
    ...forRange(
      L.b,
      i32(0),
      get(B),
      forRange(L.oh, i32(0), get(OH), forRange(L.ow, i32(0), get(OW), ow)),
    ),
  ];
}

const inside = [...get(L.ih), ...get(H), ...I32.ltU];

const IM2COL: WasmFunction = {
  name: "im2col",
  params: PARAMS,
  locals: LOCALS,
  body: patchLoops(
    DST,
    ifElse(
      inside,
      [
        ...zeroRun(get(L.row), taps(L.lo)),
        ...copyRun(
          [...get(L.row), ...taps(L.lo), ...I32.add],
          pixelOffset(SRC),
          [...taps(L.hi), ...taps(L.lo), ...I32.sub],
        ),
        ...zeroRun(
          [...get(L.row), ...taps(L.hi), ...I32.add],
          [...get(L.runBytes), ...taps(L.hi), ...I32.sub],
        ),
      ],
      zeroRun(get(L.row), get(L.runBytes)),
    ),
  ),
};

const COL2IM: WasmFunction = {
  name: "col2im",
  params: PARAMS,
  locals: LOCALS,
  body: patchLoops(
    SRC,
    ifElse(
      inside,
      addRun(
        pixelOffset(DST),
        [...get(L.row), ...taps(L.lo), ...I32.add],
        [...taps(L.hi), ...taps(L.lo), ...I32.sub],
      ),
    ),
  ),
};

type Exports = Record<string, (...a: number[]) => void>;
const modules = new WeakMap<WebAssembly.Memory, Exports>();

function args(g: PatchGeometry): number[] {
  return [
    g.batch,
    g.height,
    g.width,
    g.channels,
    g.outHeight,
    g.outWidth,
    g.filterHeight,
    g.filterWidth,
    g.strideHeight,
    g.strideWidth,
    g.padTop,
    g.padLeft,
  ];
}

/**
 * Writes the patch matrix [B OH OW, FH FW C] of the image at byte offset
 * `image` to byte offset `patches` of `memory` (both float32).
 */
export function im2col(
  memory: WebAssembly.Memory,
  image: number,
  patches: number,
  g: PatchGeometry,
): void {
  instantiateOn(modules, memory, [IM2COL, COL2IM]).im2col(
    image,
    patches,
    ...args(g),
  );
}

/**
 * Adds each run of the patch matrix at byte offset `patches` onto the image
 * at byte offset `image` (which the caller zeroes first): the adjoint of
 * `im2col`.
 */
export function col2im(
  memory: WebAssembly.Memory,
  patches: number,
  image: number,
  g: PatchGeometry,
): void {
  instantiateOn(modules, memory, [IM2COL, COL2IM]).col2im(
    patches,
    image,
    ...args(g),
  );
}
