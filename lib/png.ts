/**
 * A tiny PNG encoder (and a decoder for what it writes), so image grids can
 * be shown inline as `data:` URLs and saved to disk without a canvas, which
 * Deno does not have.
 *
 * Only 8-bit, non-interlaced images are supported: that is all the notebooks
 * need, and it keeps the format readable for students who open the bytes.
 *
 * @module
 */
import { deflateSync, inflateSync } from "node:zlib";
import { Buffer } from "node:buffer";
import { ArgumentError, checkInteger } from "./validate.ts";

/** Number of 8-bit channels per pixel: gray, gray+alpha, RGB or RGBA. */
export type PNGChannels = 1 | 2 | 3 | 4;

/** The 8 bytes every PNG file starts with. */
export const PNG_SIGNATURE: Uint8Array = Uint8Array.of(
  0x89,
  0x50,
  0x4e,
  0x47,
  0x0d,
  0x0a,
  0x1a,
  0x0a,
);

// PNG "colour type" per channel count (PNG spec, table 11.1).
const COLOR_TYPE: Record<PNGChannels, number> = { 1: 0, 2: 4, 3: 2, 4: 6 };
const CHANNELS_OF: Record<number, PNGChannels> = { 0: 1, 4: 2, 2: 3, 6: 4 };

let crcTable: Uint32Array | undefined;

function table(): Uint32Array {
  if (crcTable) return crcTable;
  crcTable = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) {
      // 0xedb88320 is the reflected CRC-32 polynomial used by PNG and zlib.
      c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
    crcTable[n] = c >>> 0;
  }
  return crcTable;
}

/**
 * CRC-32 (ISO 3309, as used by PNG chunks) of `bytes`, as an unsigned
 * 32-bit number. `crc32(new TextEncoder().encode("IEND")) === 0xae426082`.
 */
export function crc32(bytes: Uint8Array): number {
  const t = table();
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) {
    c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  // The CRC covers the type and the data, not the length.
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * Encodes 8-bit pixels (row-major, channels interleaved, `width * height *
 * channels` bytes) as a PNG file: signature, IHDR, one zlib-compressed IDAT,
 * IEND. Every row uses filter type 0 (none): simple to inspect, and zlib
 * already compresses the flat backgrounds of digit images well.
 */
export function encodePNG(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: PNGChannels,
): Uint8Array {
  const where = "encodePNG";
  if (!(pixels instanceof Uint8Array)) {
    throw new ArgumentError(
      where,
      `pixels must be a Uint8Array, got ${
        pixels === null
          ? "null"
          : (pixels as object)?.constructor?.name ?? typeof pixels
      }`,
    );
  }
  checkInteger(where, "width", width, { min: 1, max: 2 ** 31 - 1 });
  checkInteger(where, "height", height, { min: 1, max: 2 ** 31 - 1 });
  if (![1, 2, 3, 4].includes(channels)) {
    throw new ArgumentError(
      where,
      `channels must be 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA), got ${
        String(channels)
      }`,
    );
  }
  const expected = width * height * channels;
  if (pixels.length !== expected) {
    throw new ArgumentError(
      where,
      `pixels must hold width * height * channels = ${width} * ${height} * ${channels} = ${expected} bytes, got ${pixels.length}`,
    );
  }

  const header = new Uint8Array(13);
  const hv = new DataView(header.buffer);
  hv.setUint32(0, width);
  hv.setUint32(4, height);
  header[8] = 8; // bit depth
  header[9] = COLOR_TYPE[channels];
  header[10] = 0; // compression: deflate
  header[11] = 0; // filter method 0
  header[12] = 0; // no interlace

  const stride = width * channels;
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0; // filter type: none
    raw.set(
      pixels.subarray(y * stride, (y + 1) * stride),
      y * (stride + 1) + 1,
    );
  }
  const idat = new Uint8Array(deflateSync(raw));

  const parts = [
    PNG_SIGNATURE,
    chunk("IHDR", header),
    chunk("IDAT", idat),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `data:image/png;base64,...` URL for PNG bytes, for `<img>`/`<image>` hrefs. */
export function pngDataURL(png: Uint8Array): string {
  if (!(png instanceof Uint8Array) || !isPNG(png)) {
    throw new ArgumentError(
      "pngDataURL",
      "png must be a Uint8Array holding a PNG file (starting with the PNG signature)",
    );
  }
  return "data:image/png;base64," + Buffer.from(png).toString("base64");
}

function isPNG(bytes: Uint8Array): boolean {
  if (bytes.length < PNG_SIGNATURE.length) return false;
  return PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

/** One chunk of a PNG file, as found by `readPNGChunks`. */
export interface PNGChunk {
  /** Four-letter chunk type, e.g. "IHDR". */
  type: string;
  /** The chunk's data bytes (a view into the file). */
  data: Uint8Array;
  /** CRC stored in the file. */
  crc: number;
  /** Whether the stored CRC matches the CRC of type + data. */
  crcOk: boolean;
}

/** Splits a PNG file into its chunks (checking the signature and bounds). */
export function readPNGChunks(png: Uint8Array): PNGChunk[] {
  const where = "readPNGChunks";
  if (!(png instanceof Uint8Array) || !isPNG(png)) {
    throw new ArgumentError(
      where,
      "png must be a Uint8Array starting with the PNG signature",
    );
  }
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const chunks: PNGChunk[] = [];
  let at = PNG_SIGNATURE.length;
  while (at < png.length) {
    if (at + 12 > png.length) {
      throw new ArgumentError(where, `truncated chunk header at byte ${at}`);
    }
    const length = view.getUint32(at);
    if (at + 12 + length > png.length) {
      throw new ArgumentError(
        where,
        `chunk at byte ${at} claims ${length} data bytes, past the end of the file (truncated?)`,
      );
    }
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    const data = png.subarray(at + 8, at + 8 + length);
    const crc = view.getUint32(at + 8 + length);
    const crcOk = crc32(png.subarray(at + 4, at + 8 + length)) === crc;
    chunks.push({ type, data, crc, crcOk });
    at += 12 + length;
    if (type === "IEND") break;
  }
  return chunks;
}

/** The fields of a PNG's IHDR chunk. */
export interface PNGHeader {
  /** Image width in pixels. */
  width: number;
  /** Image height in pixels. */
  height: number;
  /** Bits per sample (this module writes 8). */
  bitDepth: number;
  /** PNG colour type: 0 gray, 2 RGB, 4 gray+alpha, 6 RGBA. */
  colorType: number;
  /** Interlace method (0 = none). */
  interlace: number;
}

/** Reads the IHDR chunk (which must come first) of a PNG file. */
export function decodePNGHeader(png: Uint8Array): PNGHeader {
  const chunks = readPNGChunks(png);
  const ihdr = chunks[0];
  if (!ihdr || ihdr.type !== "IHDR" || ihdr.data.length !== 13) {
    throw new ArgumentError(
      "decodePNGHeader",
      "the first chunk must be a 13-byte IHDR",
    );
  }
  const v = new DataView(
    ihdr.data.buffer,
    ihdr.data.byteOffset,
    ihdr.data.byteLength,
  );
  return {
    width: v.getUint32(0),
    height: v.getUint32(4),
    bitDepth: ihdr.data[8],
    colorType: ihdr.data[9],
    interlace: ihdr.data[12],
  };
}

/** A decoded 8-bit image: row-major, channels interleaved. */
export interface DecodedPNG {
  /** Image width in pixels. */
  width: number;
  /** Image height in pixels. */
  height: number;
  /** Samples per pixel. */
  channels: PNGChannels;
  /** `width * height * channels` bytes. */
  pixels: Uint8Array;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/**
 * Decodes an 8-bit, non-interlaced gray/gray+alpha/RGB/RGBA PNG (all five
 * row filters), checking every chunk CRC. Enough to read back what
 * `encodePNG` writes and most simple PNGs; palettes and 16-bit are rejected.
 */
export function decodePNG(png: Uint8Array): DecodedPNG {
  const where = "decodePNG";
  const header = decodePNGHeader(png);
  const chunks = readPNGChunks(png);
  const bad = chunks.find((c) => !c.crcOk);
  if (bad) throw new ArgumentError(where, `chunk ${bad.type} has a bad CRC`);
  const channels = CHANNELS_OF[header.colorType];
  if (header.bitDepth !== 8 || channels === undefined || header.interlace) {
    throw new ArgumentError(
      where,
      `only 8-bit non-interlaced gray/RGB(A) PNGs are supported, got bit depth ${header.bitDepth}, colour type ${header.colorType}, interlace ${header.interlace}`,
    );
  }
  const idats = chunks.filter((c) => c.type === "IDAT");
  const joined = new Uint8Array(idats.reduce((n, c) => n + c.data.length, 0));
  let at = 0;
  for (const c of idats) {
    joined.set(c.data, at);
    at += c.data.length;
  }
  const raw = new Uint8Array(inflateSync(joined));
  const { width, height } = header;
  const stride = width * channels;
  if (raw.length !== (stride + 1) * height) {
    throw new ArgumentError(
      where,
      `image data holds ${raw.length} bytes, expected ${(stride + 1) * height}`,
    );
  }
  const pixels = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = pixels.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : null;
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? row[i - channels] : 0;
      const b = prev ? prev[i] : 0;
      const c = prev && i >= channels ? prev[i - channels] : 0;
      let predictor: number;
      switch (filter) {
        case 0:
          predictor = 0;
          break;
        case 1:
          predictor = a;
          break;
        case 2:
          predictor = b;
          break;
        case 3:
          predictor = (a + b) >> 1;
          break;
        case 4:
          predictor = paeth(a, b, c);
          break;
        default:
          throw new ArgumentError(
            where,
            `row ${y} has unknown filter type ${filter}`,
          );
      }
      row[i] = (src[i] + predictor) & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

/**
 * Writes `data` to `path`, refusing to replace an existing file unless
 * `overwrite` is true, so nothing a student saved is lost without asking.
 * `where` names the calling function in the error.
 */
export function writeNewFile(
  where: string,
  path: string,
  data: Uint8Array,
  { overwrite = false }: { overwrite?: boolean } = {},
): void {
  if (typeof path !== "string" || path.length === 0) {
    throw new ArgumentError(
      where,
      `path must be a non-empty string, got ${String(path)}`,
    );
  }
  try {
    // createNew makes the existence check and the write one atomic step.
    Deno.writeFileSync(path, data, { createNew: !overwrite });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new ArgumentError(
        where,
        `refusing to overwrite existing file ${path}; pass { overwrite: true } to replace it`,
      );
    }
    if (e instanceof Deno.errors.NotFound) {
      throw new ArgumentError(
        where,
        `cannot write ${path}: its directory does not exist`,
      );
    }
    throw e;
  }
}

/** Saves PNG bytes to `path`; refuses to overwrite unless `{ overwrite: true }`. */
export function savePNG(
  path: string,
  png: Uint8Array,
  options: { overwrite?: boolean } = {},
): void {
  if (!(png instanceof Uint8Array) || !isPNG(png)) {
    throw new ArgumentError(
      "savePNG",
      "png must be a Uint8Array holding a PNG file",
    );
  }
  writeNewFile("savePNG", path, png, options);
}
