/**
 * The fused Adam update as a tiny WebAssembly function with SIMD, run on
 * the tfjs wasm backend's own memory (no copies).
 *
 * tfjs's Adam runs about twelve kernels per variable per step, each with
 * ~10 µs of bookkeeping; the same arithmetic in plain JavaScript is slower
 * still (~5 ns per element, measured). This function does the whole update
 * in one pass with 4-wide float32 SIMD. WebAssembly's f32 and f32x4 add,
 * mul, div and sqrt are correctly rounded IEEE operations, so in tfjs's
 * operation order the results are the same bits as `tf.train.adam`
 * (tests/optim.test.ts).
 *
 * The module is assembled here from its opcodes (about 500 bytes), so it
 * needs no build step and no binary file in the repository.
 *
 * @module
 */

/** Adam's constants for one step, each already rounded to float32. */
export interface AdamConstants {
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  oneMinusAccBeta1: number;
  oneMinusAccBeta2: number;
  epsilon: number;
  negLearningRate: number;
}

/**
 * Runs the update for `n` float32 elements at byte offsets of `memory`:
 * m' = m b1 + g (1 - b1); v' = v b2 + g^2 (1 - b2);
 * x' = (m' / (1 - b1^t)) / (sqrt(v' / (1 - b2^t)) + eps) (-lr) + x.
 */
export type AdamUpdate = (
  offsets: {
    x: number;
    m: number;
    v: number;
    g: number;
    xOut: number;
    mOut: number;
    vOut: number;
  },
  n: number,
  c: AdamConstants,
) => void;

// Opcodes (WebAssembly core + SIMD proposal, as shipped in V8).
const OP = {
  block: 0x02,
  loop: 0x03,
  br: 0x0c,
  brIf: 0x0d,
  end: 0x0b,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Const: 0x41,
  i32Add: 0x6a,
  i32And: 0x71,
  i32Shl: 0x74,
  i32GeU: 0x4f,
  f32Load: 0x2a,
  f32Store: 0x38,
  f32Sqrt: 0x91,
  f32Add: 0x92,
  f32Mul: 0x94,
  f32Div: 0x95,
  void: 0x40,
} as const;
const SIMD = {
  load: [0xfd, 0x00],
  store: [0xfd, 0x0b],
  splat: [0xfd, 0x13],
  sqrt: [0xfd, 0xe3, 0x01],
  add: [0xfd, 0xe4, 0x01],
  mul: [0xfd, 0xe6, 0x01],
  div: [0xfd, 0xe7, 0x01],
} as const;
const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function str(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
}

// Parameters: 7 byte offsets, n, then the 8 constants.
const [PX, PM, PV, PG, PXO, PMO, PVO, N] = [0, 1, 2, 3, 4, 5, 6, 7];
const CONST0 = 8; // f32 params 8..15, in AdamConstants order
// Locals after the 16 params: i, bytes, bytes4 (i32); g, m, v (v128);
// the 8 splatted constants (v128); gs, ms, vs (f32 for the tail).
const I = 16;
const BYTES = 17;
const BYTES4 = 18;
const VG = 19;
const VM = 20;
const VV = 21;
const SPLAT0 = 22; // 22..29
const SG = 30;
const SM = 31;
const SV = 32;

/** The body of one element step, SIMD (`wide`) or scalar. */
function stepCode(wide: boolean): number[] {
  const load = wide ? [...SIMD.load, 0x00, 0x00] : [OP.f32Load, 0x00, 0x00];
  const store = wide ? [...SIMD.store, 0x00, 0x00] : [OP.f32Store, 0x00, 0x00];
  const add = wide ? [...SIMD.add] : [OP.f32Add];
  const mul = wide ? [...SIMD.mul] : [OP.f32Mul];
  const div = wide ? [...SIMD.div] : [OP.f32Div];
  const sqrt = wide ? [...SIMD.sqrt] : [OP.f32Sqrt];
  const [g, m, v] = wide ? [VG, VM, VV] : [SG, SM, SV];
  // A constant: the splatted vector, or the scalar parameter.
  const k = (
    index: number,
  ) => [OP.localGet, wide ? SPLAT0 + index : CONST0 + index];
  const at = (base: number) => [
    OP.localGet,
    base,
    OP.localGet,
    I,
    OP.i32Add,
  ];
  return [
    // g = G[i]
    ...at(PG),
    ...load,
    OP.localSet,
    g,
    // m' = M[i] * b1 + g * (1 - b1)
    ...at(PM),
    ...load,
    ...k(0),
    ...mul,
    OP.localGet,
    g,
    ...k(1),
    ...mul,
    ...add,
    OP.localSet,
    m,
    // v' = V[i] * b2 + (g * g) * (1 - b2)
    ...at(PV),
    ...load,
    ...k(2),
    ...mul,
    OP.localGet,
    g,
    OP.localGet,
    g,
    ...mul,
    ...k(3),
    ...mul,
    ...add,
    OP.localSet,
    v,
    // MO[i] = m'; VO[i] = v'
    ...at(PMO),
    OP.localGet,
    m,
    ...store,
    ...at(PVO),
    OP.localGet,
    v,
    ...store,
    // XO[i] = ((m' / (1 - b1^t)) / (sqrt(v' / (1 - b2^t)) + eps)) * -lr + X[i]
    ...at(PXO),
    OP.localGet,
    m,
    ...k(4),
    ...div,
    OP.localGet,
    v,
    ...k(5),
    ...div,
    ...sqrt,
    ...k(6),
    ...add,
    ...div,
    ...k(7),
    ...mul,
    ...at(PX),
    ...load,
    ...add,
    ...store,
  ];
}

/** i += step; the loop over [start, limit). */
function loopCode(wide: boolean, limit: number): number[] {
  return [
    OP.block,
    OP.void,
    OP.loop,
    OP.void,
    OP.localGet,
    I,
    OP.localGet,
    limit,
    OP.i32GeU,
    OP.brIf,
    1,
    ...stepCode(wide),
    OP.localGet,
    I,
    OP.i32Const,
    wide ? 16 : 4,
    OP.i32Add,
    OP.localSet,
    I,
    OP.br,
    0,
    OP.end,
    OP.end,
  ];
}

function moduleBytes(shared: boolean): Uint8Array<ArrayBuffer> {
  const params = [...new Array(8).fill(I32), ...new Array(8).fill(F32)];
  const type = [0x60, ...vec(params.map((p) => [p])), 0x00];
  const memoryLimits = shared ? [0x03, 0x00, ...uleb(65536)] : [0x00, 0x00];
  const imports = vec([[
    ...str("env"),
    ...str("memory"),
    0x02,
    ...memoryLimits,
  ]]);
  const body = [
    // locals: 3 i32, 3 v128, 8 v128, 3 f32
    ...vec([[3, I32], [3, V128], [8, V128], [3, F32]]),
    // bytes = n << 2; bytes4 = (n & ~3) << 2
    OP.localGet,
    N,
    OP.i32Const,
    2,
    OP.i32Shl,
    OP.localSet,
    BYTES,
    OP.localGet,
    N,
    OP.i32Const,
    0x7c, // -4 as a signed LEB128
    OP.i32And,
    OP.i32Const,
    2,
    OP.i32Shl,
    OP.localSet,
    BYTES4,
    ...Array.from({ length: 8 }, (_, j) => [
      OP.localGet,
      CONST0 + j,
      ...SIMD.splat,
      OP.localSet,
      SPLAT0 + j,
    ]).flat(),
    ...loopCode(true, BYTES4),
    ...loopCode(false, BYTES),
    OP.end,
  ];
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec([type])),
    ...section(2, imports),
    ...section(3, vec([[0]])),
    ...section(7, vec([[...str("adam"), 0x00, 0x00]])),
    ...section(10, vec([[...uleb(body.length), ...body]])),
  ]);
}

const instances = new WeakMap<WebAssembly.Memory, AdamUpdate>();

/**
 * The fused update bound to `memory` (the wasm backend's), compiled once
 * per memory.
 */
export function adamUpdateFor(memory: WebAssembly.Memory): AdamUpdate {
  let update = instances.get(memory);
  if (!update) {
    const shared = typeof SharedArrayBuffer !== "undefined" &&
      memory.buffer instanceof SharedArrayBuffer;
    const instance = new WebAssembly.Instance(
      new WebAssembly.Module(moduleBytes(shared)),
      { env: { memory } },
    );
    const adam = instance.exports.adam as (...args: number[]) => void;
    update = (o, n, c) =>
      adam(
        o.x,
        o.m,
        o.v,
        o.g,
        o.xOut,
        o.mOut,
        o.vOut,
        n,
        c.beta1,
        c.oneMinusBeta1,
        c.beta2,
        c.oneMinusBeta2,
        c.oneMinusAccBeta1,
        c.oneMinusAccBeta2,
        c.epsilon,
        c.negLearningRate,
      );
    instances.set(memory, update);
  }
  return update;
}
