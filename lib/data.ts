/**
 * Reading and writing the IDX format, and loading Fashion-MNIST into tensors.
 *
 * The loader looks for the full dataset in the repo's `data/fashion-mnist/`,
 * then in Debian's `dataset-fashion-mnist` package, then tries the official
 * download; if all of those fail it can fall back to the small real subset
 * committed in `data/fashion-mnist-subset/` (see `tasks/make_subset.ts`), so
 * the notebooks and tests still run on a machine without the full files.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { constants as zlibConstants, gunzipSync, gzipSync } from "node:zlib";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ArgumentError,
  checkBoolean,
  checkChoice,
  checkInteger,
  checkNumber,
  checkOptions,
  checkTensor,
  MAX_VALUES,
} from "./validate.ts";
import { Rng, rngFrom } from "./random.ts";

// ---------------------------------------------------------------------------
// IDX format
// ---------------------------------------------------------------------------

/** The element types the IDX format can hold. */
export type IDXDtype =
  | "uint8"
  | "int8"
  | "int16"
  | "int32"
  | "float32"
  | "float64";

/** The typed array that holds IDX values of each dtype. */
export type IDXTypedArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Float32Array
  | Float64Array;

/** A parsed IDX file: its element type, its dimensions and its values in row-major order. */
export interface IDXArray {
  /** Element type from the magic number. */
  dtype: IDXDtype;
  /** Dimension sizes, outermost first. */
  shape: number[];
  /** `shape.reduce(*)` values in row-major order, already converted to native byte order. */
  data: IDXTypedArray;
}

/** Raised for bytes that are not a well-formed (optionally gzipped) IDX file. */
export class IDXFormatError extends Error {
  /** Creates the error; `name` (a file name, if known) is put in front of the message. */
  constructor(message: string, name?: string) {
    super(name ? `${name}: ${message}` : message);
    this.name = "IDXFormatError";
  }
}

const DTYPE_BY_CODE: Record<number, IDXDtype> = {
  0x08: "uint8",
  0x09: "int8",
  0x0b: "int16",
  0x0c: "int32",
  0x0d: "float32",
  0x0e: "float64",
};

const CODE_BY_DTYPE: Record<IDXDtype, number> = {
  uint8: 0x08,
  int8: 0x09,
  int16: 0x0b,
  int32: 0x0c,
  float32: 0x0d,
  float64: 0x0e,
};

const BYTES_PER_ELEMENT: Record<IDXDtype, number> = {
  uint8: 1,
  int8: 1,
  int16: 2,
  int32: 4,
  float32: 4,
  float64: 8,
};

const IDX_DTYPES = Object.keys(CODE_BY_DTYPE) as IDXDtype[];

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The largest IDX file (header and data) this reader inflates: 2 GiB. */
const MAX_IDX_BYTES = 2 ** 31;

/**
 * gunzip, with node:zlib's errors turned into IDXFormatErrors; `limit` caps
 * the output (`tooLarge` says what a larger output means).
 */
function inflate(
  bytes: Uint8Array,
  name: string | undefined,
  { partial = false, limit, tooLarge = "" }: {
    partial?: boolean;
    limit?: number;
    tooLarge?: string;
  },
): Uint8Array {
  let out: Uint8Array;
  try {
    out = gunzipSync(bytes, {
      // A prefix of the compressed bytes: return what it inflates to.
      finishFlush: partial ? zlibConstants.Z_SYNC_FLUSH : undefined,
      maxOutputLength: limit,
    });
  } catch (e) {
    if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw new IDXFormatError(tooLarge, name);
    }
    throw new IDXFormatError(
      `corrupt gzip data (${
        (e as Error).message
      }); delete the file and fetch it again`,
      name,
    );
  }
  // node:zlib hands back a Buffer that may share a pooled ArrayBuffer; expose a plain view.
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Decompresses gzipped IDX bytes, never to more than the IDX header declares:
 * the header is read first from the start of the stream (4 KiB of
 * compressed bytes hold its at most 1,024 bytes, unless the gzip header
 * carries kilobytes of file name or comment), then the whole file
 * is inflated with the declared size as the limit, so a small file that
 * inflates to gigabytes is rejected after the declared size, not after the
 * memory is gone. Bytes that are not gzip are returned unchanged.
 */
function gunzipIDX(bytes: Uint8Array, name?: string): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  const head = inflate(bytes.subarray(0, 4096), name, { partial: true });
  const headerLength = head.length < 4 ? 4 : 4 + 4 * head[3];
  if (head.length < headerLength) {
    // Tiny, truncated or corrupt data: inflated whole (it is short), it
    // gives the real error or the short content for readHeader to explain.
    return inflate(bytes, name, {
      limit: 1 << 16,
      tooLarge: "no IDX header within the first 4 KiB of the gzip data",
    });
  }
  const { shape, dtype, expected } = readHeader(head, name);
  if (expected > MAX_IDX_BYTES) {
    throw new IDXFormatError(
      `the header declares shape [${shape.join(", ")}] of ${dtype}, ` +
        `${expected} bytes: more than the ${MAX_IDX_BYTES} bytes this reader inflates`,
      name,
    );
  }
  return inflate(bytes, name, {
    limit: expected,
    tooLarge:
      `the gzip data inflates to more than the ${expected} bytes its IDX header declares ` +
      `(shape [${
        shape.join(", ")
      }] of ${dtype}); the file is damaged or not an IDX file`,
  });
}

/** What the header of an IDX file declares. */
interface IDXHeader {
  dtype: IDXDtype;
  shape: number[];
  /** Number of values: the product of `shape`. */
  size: number;
  /** Bytes of the header: 4 + 4 * dimensions. */
  headerBytes: number;
  /** Bytes of the whole file: header and values. */
  expected: number;
}

/**
 * Reads the header of (decompressed) IDX bytes.
 *
 * @throws IDXFormatError on too few bytes, a bad magic number, an unknown
 *   dtype code or zero dimensions
 */
function readHeader(raw: Uint8Array, name?: string): IDXHeader {
  if (raw.length < 4) {
    throw new IDXFormatError(
      `too short to be an IDX file: ${raw.length} bytes, the header alone needs at least 4`,
      name,
    );
  }
  if (raw[0] !== 0 || raw[1] !== 0) {
    const hex = Array.from(
      raw.subarray(0, 4),
      (b) => b.toString(16).padStart(2, "0"),
    ).join(" ");
    throw new IDXFormatError(
      `bad magic number ${hex}: an IDX file starts with two zero bytes (00 00 <dtype> <ndims>)`,
      name,
    );
  }
  const dtype = DTYPE_BY_CODE[raw[2]];
  if (dtype === undefined) {
    throw new IDXFormatError(
      `unknown dtype code 0x${
        raw[2].toString(16).padStart(2, "0")
      }; expected one of ` +
        Object.entries(DTYPE_BY_CODE).map(([c, d]) =>
          `0x${Number(c).toString(16)} (${d})`
        )
          .join(", "),
      name,
    );
  }
  const nDims = raw[3];
  if (nDims === 0) {
    throw new IDXFormatError(
      "the header declares zero dimensions; expected at least 1",
      name,
    );
  }
  const headerBytes = 4 + 4 * nDims;
  if (raw.length < headerBytes) {
    throw new IDXFormatError(
      `too short: the header declares ${nDims} dimensions, which needs ${headerBytes} bytes, ` +
        `but the file has only ${raw.length}`,
      name,
    );
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const shape: number[] = [];
  let size = 1;
  for (let i = 0; i < nDims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    shape.push(d);
    size *= d;
  }
  const expected = headerBytes + size * BYTES_PER_ELEMENT[dtype];
  return { dtype, shape, size, headerBytes, expected };
}

function allocate(dtype: IDXDtype, size: number): IDXTypedArray {
  switch (dtype) {
    case "uint8":
      return new Uint8Array(size);
    case "int8":
      return new Int8Array(size);
    case "int16":
      return new Int16Array(size);
    case "int32":
      return new Int32Array(size);
    case "float32":
      return new Float32Array(size);
    case "float64":
      return new Float64Array(size);
  }
}

/**
 * Parses an IDX file (the format of the MNIST and Fashion-MNIST files).
 * Gzipped bytes (magic `1f 8b`) are decompressed first, never to more than
 * the IDX header declares. Multi-byte values are big-endian in the file and
 * native in the result; `uint8` data is a view into the (decompressed)
 * input, so copy it before writing to it.
 *
 * ```ts
 * const { dtype, shape, data } = parseIDX(await Deno.readFile("t10k-labels-idx1-ubyte.gz"));
 * ```
 *
 * @param bytes the file contents
 * @param options.name a file name to put in error messages
 * @throws IDXFormatError if the bytes are truncated, have a bad magic number,
 *   an unknown dtype code, no dimensions, trailing bytes, corrupt gzip data,
 *   or gzip data that inflates to more than the header declares
 */
export function parseIDX(
  bytes: Uint8Array,
  options: { name?: string } = {},
): IDXArray {
  const { name } = checkOptions("parseIDX", options, ["name"]);
  if (!(bytes instanceof Uint8Array)) {
    throw new ArgumentError(
      "parseIDX",
      `bytes must be a Uint8Array, got ${typeof bytes}`,
    );
  }
  const raw = gunzipIDX(bytes, name);
  const { dtype, shape, size, headerBytes, expected } = readHeader(raw, name);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const width = BYTES_PER_ELEMENT[dtype];
  if (raw.length < expected) {
    throw new IDXFormatError(
      `truncated payload: shape [${
        shape.join(", ")
      }] of ${dtype} needs ${expected} bytes ` +
        `(${headerBytes} header + ${
          size * width
        } data), but the file has ${raw.length}`,
      name,
    );
  }
  if (raw.length > expected) {
    throw new IDXFormatError(
      `${raw.length - expected} bytes of trailing garbage: shape [${
        shape.join(", ")
      }] of ` +
        `${dtype} needs exactly ${expected} bytes, but the file has ${raw.length}`,
      name,
    );
  }
  let data: IDXTypedArray;
  if (dtype === "uint8") {
    data = raw.subarray(headerBytes, expected);
  } else if (dtype === "int8") {
    data = new Int8Array(raw.buffer, raw.byteOffset + headerBytes, size);
  } else {
    data = allocate(dtype, size);
    const out = data;
    // DataView reads big-endian whatever the host order; typed-array views can't.
    if (dtype === "int16") {
      for (let i = 0, o = headerBytes; i < size; i++, o += 2) {
        out[i] = view.getInt16(o, false);
      }
    } else if (dtype === "int32") {
      for (let i = 0, o = headerBytes; i < size; i++, o += 4) {
        out[i] = view.getInt32(o, false);
      }
    } else if (dtype === "float32") {
      for (let i = 0, o = headerBytes; i < size; i++, o += 4) {
        out[i] = view.getFloat32(o, false);
      }
    } else {
      for (let i = 0, o = headerBytes; i < size; i++, o += 8) {
        out[i] = view.getFloat64(o, false);
      }
    }
  }
  return { dtype, shape, data };
}

/**
 * Encodes values as an IDX file (big-endian), optionally gzipped. Values are
 * stored as `dtype`; integer dtypes require integers in range, so nothing is
 * silently wrapped or rounded.
 *
 * @param array values in row-major order; length must equal the product of `shape`
 * @param shape dimension sizes (1 to 255 of them, each < 2^32)
 * @param dtype element type to store
 * @param options.gzip gzip the result (level 9) as the official files are
 */
export function writeIDX(
  array: ArrayLike<number>,
  shape: number[],
  dtype: IDXDtype,
  options: { gzip?: boolean } = {},
): Uint8Array {
  const where = "writeIDX";
  const { gzip = false } = checkOptions(where, options, ["gzip"]);
  checkBoolean(where, "gzip", gzip);
  checkChoice(where, "dtype", dtype, IDX_DTYPES);
  if (!Array.isArray(shape) || shape.length === 0 || shape.length > 255) {
    throw new ArgumentError(
      where,
      `shape must be an array of 1 to 255 dimension sizes, got ${
        JSON.stringify(shape)
      }`,
    );
  }
  shape.forEach((d, i) =>
    checkInteger(where, `shape[${i}]`, d, { min: 0, max: 0xffffffff })
  );
  const size = tf.util.sizeFromShape(shape);
  if (
    array === null || typeof array !== "object" ||
    typeof array.length !== "number"
  ) {
    throw new ArgumentError(
      where,
      `array must be an array or typed array of numbers`,
    );
  }
  if (array.length !== size) {
    throw new ArgumentError(
      where,
      `array has ${array.length} values but shape [${
        shape.join(", ")
      }] needs ${size}`,
    );
  }
  const width = BYTES_PER_ELEMENT[dtype];
  const headerBytes = 4 + 4 * shape.length;
  const out = new Uint8Array(headerBytes + size * width);
  const view = new DataView(out.buffer);
  out[2] = CODE_BY_DTYPE[dtype];
  out[3] = shape.length;
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const limits: Partial<Record<IDXDtype, [number, number]>> = {
    uint8: [0, 255],
    int8: [-128, 127],
    int16: [-32768, 32767],
    int32: [-2147483648, 2147483647],
  };
  const range = limits[dtype];
  for (let i = 0, o = headerBytes; i < size; i++, o += width) {
    const v = array[i];
    if (range) {
      if (!Number.isInteger(v) || v < range[0] || v > range[1]) {
        throw new ArgumentError(
          where,
          `array[${i}] = ${v} is not an integer in [${range[0]}, ${
            range[1]
          }] as ${dtype} requires`,
        );
      }
    } else if (typeof v !== "number") {
      throw new ArgumentError(
        where,
        `array[${i}] must be a number, got ${typeof v}`,
      );
    }
    switch (dtype) {
      case "uint8":
        out[o] = v;
        break;
      case "int8":
        view.setInt8(o, v);
        break;
      case "int16":
        view.setInt16(o, v, false);
        break;
      case "int32":
        view.setInt32(o, v, false);
        break;
      case "float32":
        view.setFloat32(o, v, false);
        break;
      case "float64":
        view.setFloat64(o, v, false);
        break;
    }
  }
  if (!gzip) return out;
  const z = gzipSync(out, { level: 9 });
  return new Uint8Array(z.buffer, z.byteOffset, z.byteLength);
}

// ---------------------------------------------------------------------------
// Fashion-MNIST
// ---------------------------------------------------------------------------

/** The ten Fashion-MNIST class names, indexed by label. */
export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
]);

/** Where the official Fashion-MNIST files are downloaded from (append the file name). */
export const FASHION_MNIST_URL =
  "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

/** Debian's `dataset-fashion-mnist` package installs the four files here. */
export const FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist/";

/**
 * SHA-256 of the *decompressed* official files, keyed by file name. The
 * decompressed bytes are hashed because Debian re-gzips the files, which
 * changes the .gz bytes but not their contents.
 */
export const FASHION_MNIST_SHA256: Readonly<Record<string, string>> = Object
  .freeze({
    "train-images-idx3-ubyte.gz":
      "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz":
      "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz":
      "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz":
      "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
  });

/**
 * SHA-256 of the decompressed files of the committed subset in
 * `data/fashion-mnist-subset/` (its README lists the same digests), so a
 * damaged or replaced subset is caught instead of silently trained on.
 */
const SUBSET_SHA256: Readonly<Record<string, string>> = Object.freeze({
  "train-images-idx3-ubyte.gz":
    "85a0ed91fc149c8f56cbcd4faffd965abbddf9bb83d5e7308ec20af22a3a8c87",
  "train-labels-idx1-ubyte.gz":
    "d91bcde777777d8b779ccfade8da8df64050ef1cde830c67b3036ee13e26ec28",
  "t10k-images-idx3-ubyte.gz":
    "7a6d8e07ea021ec5bc73135ebd0a5770799557ec6f8242d8749c4f32a3cf4643",
  "t10k-labels-idx1-ubyte.gz":
    "b40abac7ec8228f434940f579deb7cf7b6e3103b5274cb91d1545771f5ef1c8b",
});

/** Options of `loadFashionMNIST`. */
export interface LoadFashionMNISTOptions {
  /** `"train"` (60,000 examples) or `"test"` (10,000, the `t10k` files). Default `"train"`. */
  split?: "train" | "test";
  /** Keep only the first `limit` examples (a positive integer). Default: all. */
  limit?: number;
  /**
   * Use the committed subset in `data/fashion-mnist-subset/` (first 3,000
   * train / 1,000 test examples) without looking for the full files: fast and
   * the same on every machine, which is what tests want. Default false.
   */
  subset?: boolean;
  /**
   * Folder holding `fashion-mnist/` (searched first, and where downloads go).
   * Default: the repo's `data/` folder.
   */
  dataDir?: string | URL;
  /** Also look in `/usr/share/datasets/fashion-mnist/` (Debian). Default true. */
  searchSystem?: boolean;
  /** Try the official download if no local copy is found. Default true. */
  download?: boolean;
  /**
   * Milliseconds to wait for the download server to start answering before
   * giving up (the transfer itself gets 20x this). Default 5000.
   */
  downloadTimeoutMs?: number;
  /**
   * Base URL to download from (the file name is appended). Default
   * `FASHION_MNIST_URL`; a mirror must serve the same bytes, which are verified.
   */
  downloadUrl?: string;
  /**
   * Check the SHA-256 of the files (the full set's against the official
   * release, the subset's against the committed one) the first time they
   * are read. Default true.
   */
  verify?: boolean;
  /**
   * Folder of the subset (default: the committed `data/fashion-mnist-subset/`),
   * e.g. a copy next to a handout; its files must be the committed ones.
   */
  subsetDir?: string | URL;
}

const LOAD_OPTIONS = [
  "split",
  "limit",
  "subset",
  "dataDir",
  "searchSystem",
  "download",
  "downloadTimeoutMs",
  "downloadUrl",
  "verify",
  "subsetDir",
] as const;

/** What `loadFashionMNIST` returns; the caller disposes `images` and `labels`. */
export interface FashionMNIST {
  /** float32 [n, 28, 28, 1], pixel intensity / 255 in [0, 1] (0 = background). */
  images: tf.Tensor4D;
  /** int32 [n], class indices 0..9 into `classNames`. */
  labels: tf.Tensor1D;
  /** The ten class names (a copy of `FASHION_MNIST_CLASSES`). */
  classNames: string[];
  /** Where the data came from: the folder read, and whether it is the full set or the subset. */
  source: string;
}

const SPLIT_PREFIX = { train: "train", test: "t10k" } as const;
const SUBSET_DIR = new URL("../data/fashion-mnist-subset/", import.meta.url);
const DEFAULT_DATA_DIR = new URL("../data/", import.meta.url);

function toPath(dir: string | URL): string {
  if (dir instanceof URL) {
    return dir.protocol === "file:" ? fileURLToPath(dir) : dir.href;
  }
  return dir;
}

/**
 * Parsed files kept in memory, keyed by path (and the digest they were
 * checked against), with the size, mtime, ctime and inode the file had when
 * it was read: a file replaced on disk is read again (a rename changes the
 * inode; a rewrite changes the size or the millisecond mtime).
 */
const cache = new Map<string, { stamp: string; parsed: Promise<IDXArray> }>();

/** Forgets every parsed file `loadFashionMNIST` has kept in memory. */
export function clearFashionMNISTCache(): void {
  cache.clear();
}

/** The SHA-256 digest of `bytes` as lowercase hex. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    bytes as Uint8Array<ArrayBuffer>,
  );
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/** A digest a file's decompressed contents must have, and what to do when it differs. */
interface Expected {
  sha256: string;
  /** What the file should be and how to get it back, for the error message. */
  remedy: string;
}

/**
 * Reads, verifies (optionally) and parses one file, once per version of the
 * file: a notebook that reloads the data many times pays for the gunzip only
 * the first time, and a file replaced on disk is read again.
 */
async function readIDXCached(
  path: string,
  expected?: Expected,
): Promise<IDXArray> {
  const key = `${path}\0${expected?.sha256 ?? ""}`;
  const info = await Deno.stat(path);
  const stamp = [
    info.size,
    info.mtime?.getTime(),
    info.ctime?.getTime(),
    info.ino,
  ]
    .join(":");
  const hit = cache.get(key);
  if (hit?.stamp === stamp) return hit.parsed;
  const parsed = (async () => {
    const raw = gunzipIDX(await Deno.readFile(path), path);
    if (expected) {
      const got = await sha256Hex(raw);
      if (got !== expected.sha256) {
        throw new IDXFormatError(
          `SHA-256 of the decompressed contents is ${got}, expected ${expected.sha256}: ` +
            expected.remedy,
          path,
        );
      }
    }
    return parseIDX(raw, { name: path });
  })();
  cache.set(key, { stamp, parsed });
  // A failed read should be retried next time (the user may have fixed the file).
  parsed.catch(() => {
    if (cache.get(key)?.parsed === parsed) cache.delete(key);
  });
  return parsed;
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** The first of `<dir>/<file>` and the uncompressed `<dir>/<file without .gz>` that exists. */
async function findFile(dir: string, file: string): Promise<string | null> {
  for (
    const candidate of [join(dir, file), join(dir, file.replace(/\.gz$/, ""))]
  ) {
    if (await exists(candidate)) return candidate;
  }
  return null;
}

/**
 * Downloads one official file into `dir`, verifying it before it becomes
 * visible under its real name; an existing file is never replaced.
 */
async function downloadFile(
  baseUrl: string,
  dir: string,
  file: string,
  timeoutMs: number,
): Promise<string> {
  const url = new URL(file, baseUrl).href;
  const answered = new AbortController();
  const timer = setTimeout(
    () => answered.abort(new Error(`no answer within ${timeoutMs} ms`)),
    timeoutMs,
  );
  let body: Uint8Array;
  try {
    const response = await fetch(url, {
      signal: AbortSignal.any([
        answered.signal,
        AbortSignal.timeout(timeoutMs * 20),
      ]),
    });
    clearTimeout(timer);
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`HTTP ${response.status} ${response.statusText}`);
    }
    body = new Uint8Array(await response.arrayBuffer());
  } catch (e) {
    // fetch's own message is just "fetch failed"; the cause says why (DNS, refused, ...).
    const cause = (e as Error).cause as Error | undefined;
    const why = cause?.message ? ` (${cause.message})` : "";
    throw new Error(`${url}: ${(e as Error).message}${why}`);
  } finally {
    clearTimeout(timer);
  }
  const raw = gunzipIDX(body, url);
  const got = await sha256Hex(raw);
  if (got !== FASHION_MNIST_SHA256[file]) {
    throw new Error(
      `SHA-256 mismatch for ${url}: got ${got}, expected ${
        FASHION_MNIST_SHA256[file]
      }`,
    );
  }
  await Deno.mkdir(dir, { recursive: true });
  const target = join(dir, file);
  const temp = join(dir, `.${file}.${Deno.pid}.${Date.now()}.part`);
  await Deno.writeFile(temp, body);
  try {
    // link() fails if the target exists, so a file that appeared meanwhile is kept.
    await Deno.link(temp, target);
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  } finally {
    await Deno.remove(temp).catch(() => {});
  }
  return target;
}

interface Located {
  images: string;
  labels: string;
  dir: string;
  how: string;
}

async function locateFull(
  split: "train" | "test",
  dataDir: string,
  searchSystem: boolean,
  download: boolean,
  baseUrl: string,
  timeoutMs: number,
  looked: string[],
): Promise<Located | null> {
  const prefix = SPLIT_PREFIX[split];
  const imageFile = `${prefix}-images-idx3-ubyte.gz`;
  const labelFile = `${prefix}-labels-idx1-ubyte.gz`;
  const localDir = join(dataDir, "fashion-mnist");
  const dirs: [string, string][] = [[localDir, "local copy"]];
  if (searchSystem) {
    dirs.push([FASHION_MNIST_SYSTEM_DIR, "Debian dataset-fashion-mnist"]);
  }
  for (const [dir, how] of dirs) {
    const images = await findFile(dir, imageFile);
    const labels = await findFile(dir, labelFile);
    if (images && labels) return { images, labels, dir, how };
    const missing = [images ? null : imageFile, labels ? null : labelFile]
      .filter(Boolean);
    looked.push(`${join(dir, "/")} (missing ${missing.join(" and ")})`);
  }
  if (!download) {
    looked.push(`${baseUrl} (download disabled)`);
    return null;
  }
  try {
    const images = (await findFile(localDir, imageFile)) ??
      await downloadFile(baseUrl, localDir, imageFile, timeoutMs);
    const labels = (await findFile(localDir, labelFile)) ??
      await downloadFile(baseUrl, localDir, labelFile, timeoutMs);
    return {
      images,
      labels,
      dir: localDir,
      how: `downloaded from ${baseUrl}`,
    };
  } catch (e) {
    looked.push(
      `${baseUrl} (download failed: ${(e as Error).message})`,
    );
    return null;
  }
}

/** Checks the two parsed files describe the same n 28x28 images with labels 0..9. */
function checkPair(images: IDXArray, labels: IDXArray, located: Located): void {
  const { shape: s } = images;
  if (
    images.dtype !== "uint8" || s.length !== 3 || s[1] !== 28 || s[2] !== 28
  ) {
    throw new IDXFormatError(
      `expected uint8 images of shape [n, 28, 28], got ${images.dtype} [${
        s.join(", ")
      }]`,
      located.images,
    );
  }
  if (labels.dtype !== "uint8" || labels.shape.length !== 1) {
    throw new IDXFormatError(
      `expected uint8 labels of shape [n], got ${labels.dtype} [${
        labels.shape.join(", ")
      }]`,
      located.labels,
    );
  }
  if (labels.shape[0] !== s[0]) {
    throw new IDXFormatError(
      `${labels.shape[0]} labels but ${
        s[0]
      } images in ${located.images}; the files do not belong together`,
      located.labels,
    );
  }
  const l = labels.data;
  for (let i = 0; i < l.length; i++) {
    if (l[i] > 9) {
      throw new IDXFormatError(
        `label ${i} is ${l[i]}, expected a class index 0..9`,
        located.labels,
      );
    }
  }
}

/**
 * Loads Fashion-MNIST (Xiao, Rasul & Vollgraf 2017; MIT licence) as tensors.
 *
 * Search order for the full files (`train-images-idx3-ubyte.gz`,
 * `train-labels-idx1-ubyte.gz`, or the `t10k-` pair for `split: "test"`;
 * uncompressed copies without `.gz` are accepted too):
 * 1. `<dataDir>/fashion-mnist/` (default `data/fashion-mnist/` in this repo);
 * 2. `/usr/share/datasets/fashion-mnist/` (`apt-get install dataset-fashion-mnist`),
 *    unless `searchSystem: false`;
 * 3. the official download into `<dataDir>/fashion-mnist/` (needs
 *    `--allow-net` and write access), unless `download: false`.
 *
 * If none works and `limit` is at most the size of the committed subset, the
 * subset is used instead (one line is logged); otherwise the error lists every
 * place searched and how to get the files. `subset: true` skips the search.
 * The files' decompressed SHA-256 is checked (the full set's against the
 * official release, the subset's against the committed one) unless
 * `verify: false`. Parsed files are cached in memory per path, size and
 * modification time, so a replaced file is read again.
 *
 * ```ts
 * const { images, labels } = await loadFashionMNIST({ split: "test", limit: 1000 });
 * ```
 *
 * @returns images float32 [n, 28, 28, 1] in [0, 1] and labels int32 [n]
 *   (the caller disposes both), the class names and a description of the source
 * @throws ArgumentError for bad options (e.g. a non-integer `limit`, or one
 *   larger than the data, or an unknown key), IDXFormatError for damaged or
 *   altered files, Error if no data is found
 */
export async function loadFashionMNIST(
  options: LoadFashionMNISTOptions = {},
): Promise<FashionMNIST> {
  const where = "loadFashionMNIST";
  const {
    split = "train",
    limit,
    subset = false,
    dataDir = DEFAULT_DATA_DIR,
    searchSystem = true,
    download = true,
    downloadTimeoutMs = 5000,
    downloadUrl = FASHION_MNIST_URL,
    verify = true,
    subsetDir: subsetFolder = SUBSET_DIR,
  } = checkOptions(where, options, LOAD_OPTIONS);
  checkChoice(where, "split", split, ["train", "test"] as const);
  if (limit !== undefined) checkInteger(where, "limit", limit, { min: 1 });
  for (
    const [key, value] of Object.entries({
      subset,
      searchSystem,
      download,
      verify,
    })
  ) {
    if (typeof value !== "boolean") {
      throw new ArgumentError(
        where,
        `${key} must be true or false, got ${String(value)}`,
      );
    }
  }
  for (
    const [key, dir] of Object.entries({ dataDir, subsetDir: subsetFolder })
  ) {
    if (typeof dir !== "string" && !(dir instanceof URL)) {
      throw new ArgumentError(
        where,
        `${key} must be a path string or file URL, got ${dir}`,
      );
    }
    let isFile = false;
    try {
      isFile = !Deno.statSync(toPath(dir)).isDirectory;
    } catch { /* missing: made or reported when it is looked in */ }
    if (isFile) {
      throw new ArgumentError(
        where,
        `${key} must be a folder, but ${toPath(dir)} is a file`,
      );
    }
  }
  checkNumber(where, "downloadTimeoutMs", downloadTimeoutMs, {
    min: 0,
    minExclusive: true,
  });
  if (typeof downloadUrl !== "string" || !URL.canParse(downloadUrl)) {
    throw new ArgumentError(
      where,
      `downloadUrl must be an absolute URL, got ${String(downloadUrl)}`,
    );
  }

  const subsetDir = toPath(subsetFolder);
  const prefix = SPLIT_PREFIX[split];
  const subsetLocated: Located = {
    images: join(subsetDir, `${prefix}-images-idx3-ubyte.gz`),
    labels: join(subsetDir, `${prefix}-labels-idx1-ubyte.gz`),
    dir: subsetDir,
    how: "committed subset",
  };

  let located: Located;
  let full = false;
  if (subset) {
    located = subsetLocated;
  } else {
    const looked: string[] = [];
    const found = await locateFull(
      split,
      toPath(dataDir),
      searchSystem,
      download,
      downloadUrl.endsWith("/") ? downloadUrl : downloadUrl + "/",
      downloadTimeoutMs,
      looked,
    );
    if (found) {
      located = found;
      full = true;
    } else {
      const subsetSize = await subsetCount(subsetLocated, verify);
      if (limit !== undefined && subsetSize !== null && limit <= subsetSize) {
        console.warn(
          `loadFashionMNIST: full Fashion-MNIST not found, using the committed ${subsetSize}-example ` +
            `${split} subset in ${subsetDir} (limit ${limit} fits)`,
        );
        located = subsetLocated;
      } else {
        const reason = limit === undefined
          ? "no limit was given, so the full split is needed"
          : subsetSize === null
          ? "the committed subset is missing too"
          : `limit ${limit} is more than the ${subsetSize} examples of the committed subset`;
        throw new Error(
          `${where}: could not find the Fashion-MNIST ${split} files ` +
            `(${prefix}-images-idx3-ubyte.gz and ${prefix}-labels-idx1-ubyte.gz). Looked in:\n` +
            looked.map((l) => `  - ${l}\n`).join("") +
            `The committed subset (${subsetDir}) was not used: ${reason}.\n` +
            `To get the full data, either run \`sudo apt-get install dataset-fashion-mnist\` ` +
            `(installs to ${FASHION_MNIST_SYSTEM_DIR}) or copy the four .gz files from ` +
            `${FASHION_MNIST_URL} into ${
              join(toPath(dataDir), "fashion-mnist", "/")
            }; ` +
            `or pass { subset: true } (or a limit of at most ${
              subsetSize ?? 0
            }) to use the subset.`,
        );
      }
    }
  }

  const expect = (file: string) =>
    !verify ? undefined : full ? official(file) : committedSubset(file);
  const [images, labels] = await Promise.all([
    readIDXCached(located.images, expect(`${prefix}-images-idx3-ubyte.gz`)),
    readIDXCached(located.labels, expect(`${prefix}-labels-idx1-ubyte.gz`)),
  ]);
  checkPair(images, labels, located);
  const available = images.shape[0];
  if (limit !== undefined && limit > available) {
    throw new ArgumentError(
      where,
      `limit must be at most ${available} (the ${located.how} ${split} split in ${located.dir} ` +
        `has ${available} examples), got ${limit}`,
    );
  }
  const n = limit ?? available;
  const pixels = images.data as Uint8Array;
  const count = n * 28 * 28;
  const floats = new Float32Array(count);
  for (let i = 0; i < count; i++) floats[i] = pixels[i] / 255;
  const labelInts = Int32Array.from(labels.data.subarray(0, n));
  return {
    images: tf.tensor4d(floats, [n, 28, 28, 1], "float32"),
    labels: tf.tensor1d(labelInts, "int32"),
    classNames: [...FASHION_MNIST_CLASSES],
    source: `${located.dir} (${located.how}, ${full ? "full" : "subset"}: ` +
      `${n} of ${available} ${split} examples)`,
  };
}

/** The digest of an official Fashion-MNIST file. */
function official(file: string): Expected {
  return {
    sha256: FASHION_MNIST_SHA256[file],
    remedy:
      "this is not the official Fashion-MNIST file (or it is damaged); replace it",
  };
}

/** The digest of a file of the committed subset. */
function committedSubset(file: string): Expected {
  return {
    sha256: SUBSET_SHA256[file],
    remedy: "this is not the subset committed in data/fashion-mnist-subset/ " +
      "(or it is damaged); restore it with `git checkout -- data/fashion-mnist-subset`",
  };
}

/** Number of examples in the committed subset for a split, or null if it is missing. */
async function subsetCount(
  located: Located,
  verify: boolean,
): Promise<number | null> {
  if (!(await exists(located.images)) || !(await exists(located.labels))) {
    return null;
  }
  const labels = await readIDXCached(
    located.labels,
    verify ? committedSubset(basename(located.labels)) : undefined,
  );
  return labels.shape[0];
}

/**
 * Yields batches of example indices for one epoch: `Int32Array`s of length
 * `batchSize` (the last may be shorter unless `dropRemainder`). With
 * `shuffle` (default) the order is a seeded random permutation, so the same
 * seed gives the same batches. Use with `tf.gather(images, batch)`.
 */
export function batches(
  n: number,
  batchSize: number,
  options: {
    seed?: number | Rng;
    shuffle?: boolean;
    dropRemainder?: boolean;
  } = {},
): Generator<Int32Array, void, undefined> {
  // Checked here, not in the generator: a generator's body runs only at the
  // first next(), so a bad call would throw far from where it was made.
  const { seed = 0, shuffle = true, dropRemainder = false } = checkOptions(
    "batches",
    options,
    ["seed", "shuffle", "dropRemainder"],
  );
  checkInteger("batches", "n", n, { min: 0, max: MAX_VALUES });
  checkInteger("batches", "batchSize", batchSize, { min: 1 });
  if (typeof seed === "number") checkNumber("batches", "seed", seed);
  else if (!(seed instanceof Rng)) {
    throw new ArgumentError(
      "batches",
      `seed must be a number or an Rng, got ${seed}`,
    );
  }
  checkBoolean("batches", "shuffle", shuffle);
  checkBoolean("batches", "dropRemainder", dropRemainder);
  return epochBatches(n, batchSize, seed, shuffle, dropRemainder);
}

function* epochBatches(
  n: number,
  batchSize: number,
  seed: number | Rng,
  shuffle: boolean,
  dropRemainder: boolean,
): Generator<Int32Array, void, undefined> {
  let order: Int32Array;
  if (shuffle) {
    order = rngFrom(seed).permutation(n);
  } else {
    order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
  }
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(start + batchSize, n);
    if (dropRemainder && end - start < batchSize) return;
    yield order.slice(start, end);
  }
}

/** What `batchSampler` returns: an endless stream of training batches. */
export interface BatchSampler<T extends tf.Tensor | tf.Tensor[]> {
  /** The next batch (new tensors the caller disposes): rows of each input at the same indices. */
  next(): T;
  /** The epoch the last batch came from (0-based; -1 before the first). */
  readonly epoch: number;
}

/**
 * The course's one training-batch sampler: an endless stream of batches of
 * `batchSize` rows of `data` (one tensor, or several with the same first
 * axis, e.g. `[images, labels]`, sampled at the same indices). Epoch e goes
 * through `batches(n, batchSize, { seed: seed + e, dropRemainder: true })`:
 * a seeded random order, reshuffled every epoch, every batch full (the short
 * last one is dropped, so every step has the same batch size).
 *
 * ```ts
 * const sampler = batchSampler(train.images, 128, { seed: 0 });
 * const x = sampler.next(); // [128, 28, 28, 1]
 * ```
 *
 * @throws ArgumentError when the tensors' first axes differ or batchSize exceeds them
 */
export function batchSampler<T extends tf.Tensor | tf.Tensor[]>(
  data: T,
  batchSize: number,
  options: { seed?: number } = {},
): BatchSampler<T> {
  const where = "batchSampler";
  const { seed = 0 } = checkOptions(where, options, ["seed"]);
  const tensors = Array.isArray(data) ? data : [data];
  if (tensors.length === 0) {
    throw new ArgumentError(
      where,
      "data must be a tensor or a non-empty array of tensors",
    );
  }
  tensors.forEach((t, i) =>
    checkTensor(where, Array.isArray(data) ? `data[${i}]` : "data", t, {
      minRank: 1,
    })
  );
  const n = tensors[0].shape[0];
  const mismatch = tensors.findIndex((t) => t.shape[0] !== n);
  if (mismatch >= 0) {
    throw new ArgumentError(
      where,
      `every tensor needs the same number of rows: data[0] has ${n}, data[${mismatch}] has ${
        tensors[mismatch].shape[0]
      }`,
    );
  }
  if (n === 0) throw new ArgumentError(where, "data has no rows");
  checkInteger(where, "batchSize", batchSize, { min: 1, max: n });
  checkNumber(where, "options.seed", seed);
  let epoch = -1;
  let epochBatches: Iterator<Int32Array> = [][Symbol.iterator]();
  const nextIndices = (): Int32Array => {
    let r = epochBatches.next();
    if (r.done) {
      epoch++;
      epochBatches = batches(n, batchSize, {
        seed: seed + epoch,
        dropRemainder: true,
      });
      r = epochBatches.next();
    }
    return r.value as Int32Array;
  };
  return {
    next(): T {
      const gone = tensors.findIndex((t) => t.isDisposed);
      if (gone >= 0) {
        throw new ArgumentError(
          "batchSampler.next",
          `${
            Array.isArray(data) ? `data[${gone}]` : "data"
          } has been disposed since the sampler was made`,
        );
      }
      const indices = nextIndices();
      const rows = tf.tidy(() => {
        const idx = tf.tensor1d(indices, "int32");
        return tensors.map((t) => tf.gather(t, idx));
      });
      return (Array.isArray(data) ? rows : rows[0]) as T;
    },
    get epoch() {
      return epoch;
    },
  };
}
