/**
 * A tiny WebAssembly assembler: enough to write the package's SIMD loops
 * (kernels/conv_wasm.ts) as readable structured code and to bind them to
 * the tfjs wasm backend's own memory, so they work on its tensors in place.
 * No build step and no binary file in the repository: the bytes are
 * assembled when a kernel first runs (kernels/adam_wasm.ts does the same
 * for Adam, by hand).
 *
 * Code is a flat list of bytes; the helpers below return such lists, so a
 * function body reads like the loop it is:
 *
 * ```ts
 * const body = forRange(I, i32(0), get(N), [
 *   ...get(I), ...i32(2), ...I32.shl, ...get(P), ...I32.add, ...f32Zero,
 *   ...F32.store,
 * ]);
 * ```
 *
 * @module
 */

/** Value types. */
export const T = { i32: 0x7f, f32: 0x7d, v128: 0x7b } as const;
/** A value type. */
export type ValueType = typeof T[keyof typeof T];

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

/** Signed LEB128 (i32 constants). */
export function sleb(n: number): number[] {
  const out: number[] = [];
  n |= 0;
  while (true) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) ||
      (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

/** local.get / local.set / local.tee of local `i`. */
export const get = (i: number): number[] => [0x20, ...uleb(i)];
export const set = (i: number): number[] => [0x21, ...uleb(i)];
export const tee = (i: number): number[] => [0x22, ...uleb(i)];
/** i32.const `n`. */
export const i32 = (n: number): number[] => [0x41, ...sleb(n)];

/** i32 arithmetic and comparisons (signed unless the name says u). */
export const I32 = {
  eqz: [0x45],
  eq: [0x46],
  ne: [0x47],
  ltS: [0x48],
  ltU: [0x49],
  gtS: [0x4a],
  leS: [0x4c],
  geS: [0x4e],
  geU: [0x4f],
  add: [0x6a],
  sub: [0x6b],
  mul: [0x6c],
  and: [0x71],
  shl: [0x74],
  /** i32.load at the address on the stack (offset 0). */
  load: [0x28, 0x02, 0x00],
} as const;

/** f32 scalar memory access and arithmetic. */
export const F32 = {
  load: [0x2a, 0x02, 0x00],
  store: [0x38, 0x02, 0x00],
  add: [0x92],
  /** f32.const 0. */
  zero: [0x43, 0, 0, 0, 0],
} as const;

/** v128.load / v128.store at a constant byte offset from the address. */
export const v128LoadAt = (offset: number): number[] => [
  0xfd,
  0x00,
  0x00,
  ...uleb(offset),
];
export const v128StoreAt = (offset: number): number[] => [
  0xfd,
  0x0b,
  0x00,
  ...uleb(offset),
];

/** 128-bit SIMD (4 x f32), unaligned access. */
export const V128 = {
  load: [0xfd, 0x00, 0x00, 0x00],
  store: [0xfd, 0x0b, 0x00, 0x00],
  zero: [0xfd, 0x0c, ...new Array(16).fill(0)],
  f32x4Add: [0xfd, 0xe4, 0x01],
} as const;

/** More SIMD and scalar operations (opcodes of the SIMD proposal). */
export const SIMD = {
  f32x4Splat: [0xfd, 0x13],
  i8x16Splat: [0xfd, 0x0f],
  f32x4Lt: [0xfd, 0x43],
  f32x4Gt: [0xfd, 0x44],
  f32x4Mul: [0xfd, 0xe6, 0x01],
  bitselect: [0xfd, 0x52],
  and: [0xfd, 0x4e],
  i16x8NarrowI32x4S: [0xfd, 0x85, 0x01],
  i8x16NarrowI16x8S: [0xfd, 0x65],
  /** v128.load32_zero (offset 0): 4 bytes into the low lane. */
  load32Zero: [0xfd, 0x5c, 0x00, 0x00],
  i16x8ExtendLowI8x16U: [0xfd, 0x89, 0x01],
  i32x4ExtendLowI16x8U: [0xfd, 0xa9, 0x01],
  i32x4Ne: [0xfd, 0x38],
} as const;

/** f32 comparisons and multiply, and 8-bit memory access (offset 0). */
export const SCALAR = {
  f32Lt: [0x5d],
  f32Gt: [0x5e],
  f32Mul: [0x94],
  i32Load8U: [0x2d, 0x00, 0x00],
  i32Store8: [0x3a, 0x00, 0x00],
} as const;

/** select: the first operand when the condition (last) is non-zero. */
export const select = [0x1b];

const BLOCK = 0x02;
const LOOP = 0x03;
const IF = 0x04;
const ELSE = 0x05;
const END = 0x0b;
const BR = 0x0c;
const BR_IF = 0x0d;
const VOID = 0x40;

/** `while (cond) body` (cond leaves an i32). */
export function whileLoop(cond: number[], body: number[]): number[] {
  return [
    BLOCK,
    VOID,
    LOOP,
    VOID,
    ...cond,
    ...I32.eqz,
    BR_IF,
    1,
    ...body,
    BR,
    0,
    END,
    END,
  ];
}

/** `for (local = from; local < to; local++) body` (signed compare). */
export function forRange(
  local: number,
  from: number[],
  to: number[],
  body: number[],
): number[] {
  return [
    ...from,
    ...set(local),
    ...whileLoop([...get(local), ...to, ...I32.ltS], [
      ...body,
      ...get(local),
      ...i32(1),
      ...I32.add,
      ...set(local),
    ]),
  ];
}

/** `if (cond) then else otherwise` (cond leaves an i32). */
export function ifElse(
  cond: number[],
  then: number[],
  otherwise: number[] = [],
): number[] {
  return [
    ...cond,
    IF,
    VOID,
    ...then,
    ...(otherwise.length ? [ELSE, ...otherwise] : []),
    END,
  ];
}

/**
 * The bounds of a SIMD loop over `nBytes` bytes and its scalar tail, for
 * the loop's start address on the stack: stores it in `start`, sets `end`
 * to start + nBytes and `end16` to start + nBytes rounded down to 16 (the
 * last whole vector).
 */
export function simdBounds(
  start: number,
  nBytes: number,
  end: number,
  end16: number,
): number[] {
  return [
    ...tee(start),
    ...get(nBytes),
    ...I32.add,
    ...set(end),
    ...get(start),
    ...get(nBytes),
    ...i32(-16),
    ...I32.and,
    ...I32.add,
    ...set(end16),
  ];
}

/** `local += amount` (i32). */
export function addTo(local: number, amount: number[]): number[] {
  return [...get(local), ...amount, ...I32.add, ...set(local)];
}

/** One exported function: parameters, typed locals after them. */
export interface WasmFunction {
  name: string;
  /** Number of i32 parameters, or their types. */
  params: number | ValueType[];
  /** Types of the locals that follow the parameters. */
  locals: ValueType[];
  body: number[];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
}

/**
 * The bytes of a module that imports `env.memory` (shared when the
 * backend's is: its threaded build) and exports `functions`, which return
 * nothing.
 */
export function moduleBytes(
  functions: readonly WasmFunction[],
  shared: boolean,
): Uint8Array<ArrayBuffer> {
  const types = functions.map((f) => [
    0x60,
    ...vec(
      (typeof f.params === "number"
        ? new Array(f.params).fill(T.i32)
        : f.params).map((t) => [t]),
    ),
    0x00,
  ]);
  const memoryLimits = shared ? [0x03, 0x00, ...uleb(65536)] : [0x00, 0x00];
  const imports = vec([[
    ...name("env"),
    ...name("memory"),
    0x02,
    ...memoryLimits,
  ]]);
  const bodies = functions.map((f) => {
    // Locals run-length encoded by type.
    const runs: number[][] = [];
    for (const t of f.locals) {
      const last = runs.at(-1);
      if (last && last[1] === t) last[0]++;
      else runs.push([1, t]);
    }
    const code = [
      ...vec(runs.map(([n, t]) => [...uleb(n), t])),
      ...f.body,
      END,
    ];
    return [...uleb(code.length), ...code];
  });
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec(types)),
    ...section(2, imports),
    ...section(3, vec(functions.map((_, i) => uleb(i)))),
    ...section(
      7,
      vec(functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)])),
    ),
    ...section(10, vec(bodies)),
  ]);
}

/**
 * The byte offset of a tensor's data in the wasm backend's memory: what
 * `typedArrayFromHeap(t).byteOffset` gives, without making the view (a
 * kernel on small tensors called it for every input and output, and the
 * views were ~5% of a neural-ODE step's allocations).
 */
export function heapOffset(backend: unknown, t: { dataId: object }): number {
  return (backend as {
    dataIdMap: { get(dataId: object): { memoryOffset: number } };
  }).dataIdMap.get(t.dataId).memoryOffset;
}

/**
 * The wasm backend's whole memory as float32 or int32 elements, to read
 * or write a few values at `heapOffset(t) >> 2` without making a view
 * per tensor: Emscripten's own views (`HEAPF32`, `HEAP32`), or new ones
 * when those no longer cover the memory (after a growth they have not
 * seen yet).
 */
export function heapF32(backend: unknown): Float32Array {
  return heapView(backend, "HEAPF32", Float32Array);
}

/** `heapF32` for int32 elements. */
export function heapI32(backend: unknown): Int32Array {
  return heapView(backend, "HEAP32", Int32Array);
}

function heapView<T extends Float32Array | Int32Array>(
  backend: unknown,
  name: "HEAPF32" | "HEAP32",
  type: { new (buffer: ArrayBufferLike): T },
): T {
  const view = (backend as { wasm: Record<string, T | undefined> }).wasm[name];
  const memory = backendMemory(backend)!;
  return view !== undefined && view.buffer === memory.buffer
    ? view
    : new type(memory.buffer);
}

/**
 * The wasm backend's memory, where its tensors live: exported by the
 * single-threaded build, `wasmMemory` on the threaded one; null for
 * another backend.
 */
export function backendMemory(backend: unknown): WebAssembly.Memory | null {
  const module = (backend as {
    wasm?: { asm?: { memory?: unknown }; wasmMemory?: unknown };
  })?.wasm;
  const memory = module?.asm?.memory ?? module?.wasmMemory;
  return memory instanceof WebAssembly.Memory ? memory : null;
}

/**
 * Instantiates `functions` on `memory` once per memory and returns their
 * exports (each takes i32 arguments: byte offsets and sizes).
 */
export function instantiateOn(
  cache: WeakMap<WebAssembly.Memory, Record<string, (...a: number[]) => void>>,
  memory: WebAssembly.Memory,
  functions: readonly WasmFunction[],
): Record<string, (...a: number[]) => void> {
  let exports = cache.get(memory);
  if (!exports) {
    const shared = typeof SharedArrayBuffer !== "undefined" &&
      memory.buffer instanceof SharedArrayBuffer;
    const instance = new WebAssembly.Instance(
      new WebAssembly.Module(moduleBytes(functions, shared)),
      { env: { memory } },
    );
    exports = instance.exports as Record<string, (...a: number[]) => void>;
    cache.set(memory, exports);
  }
  return exports;
}
