import { deflateSync, inflateSync } from "node:zlib";
import {
  crc32,
  decodePNG,
  decodePNGHeader,
  encodePNG,
  PNG_SIGNATURE,
  pngDataURL,
  readPNGChunks,
  savePNG,
} from "../lib/png.ts";
import { ArgumentError } from "../lib/validate.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { makeTestDir } from "./temp.ts";

const ascii = (s: string) => new TextEncoder().encode(s);

Deno.test("crc32 matches the known check values", () => {
  assertEquals(crc32(ascii("IEND")), 0xae426082);
  // The standard CRC-32 check value.
  assertEquals(crc32(ascii("123456789")), 0xcbf43926);
  assertEquals(crc32(new Uint8Array(0)), 0);
});

Deno.test("encodePNG writes signature, IHDR, IDAT, IEND with valid CRCs", () => {
  const width = 3;
  const height = 2;
  const pixels = Uint8Array.of(0, 50, 100, 150, 200, 255);
  const png = encodePNG(pixels, width, height, 1);
  assertEquals(Array.from(png.subarray(0, 8)), Array.from(PNG_SIGNATURE));
  const chunks = readPNGChunks(png);
  assertEquals(chunks.map((c) => c.type), ["IHDR", "IDAT", "IEND"]);
  assert(chunks.every((c) => c.crcOk), "every chunk CRC must verify");
  // The file ends with IEND's length 0, type and its well-known CRC.
  assertEquals(
    Array.from(png.subarray(png.length - 12)),
    [0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82],
  );
  assertEquals(decodePNGHeader(png), {
    width,
    height,
    bitDepth: 8,
    colorType: 0,
    interlace: 0,
  });

  // Inflate IDAT by hand: each row is a filter byte (0) then the raw pixels.
  const raw = new Uint8Array(inflateSync(chunks[1].data));
  assertEquals(raw.length, height * (width + 1));
  assertEquals(Array.from(raw), [0, 0, 50, 100, 0, 150, 200, 255]);
});

Deno.test("RGB and RGBA round-trip through decodePNG", () => {
  for (const channels of [2, 3, 4] as const) {
    const width = 5;
    const height = 4;
    const pixels = new Uint8Array(width * height * channels);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37 + 11) % 256;
    const png = encodePNG(pixels, width, height, channels);
    const header = decodePNGHeader(png);
    assertEquals(header.colorType, { 2: 4, 3: 2, 4: 6 }[channels]);
    const back = decodePNG(png);
    assertEquals(back.width, width);
    assertEquals(back.height, height);
    assertEquals(back.channels, channels);
    assertEquals(Array.from(back.pixels), Array.from(pixels));
  }
});

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(ascii(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("decodePNG undoes all five row filters", () => {
  // Build an RGB PNG by hand whose rows use filters 0, 1, 2, 3, 4, 0, ...
  const width = 4;
  const height = 7;
  const ch = 3;
  const stride = width * ch;
  const pixels = new Uint8Array(stride * height);
  for (let i = 0; i < pixels.length; i++) {
    pixels[i] = (i * i * 7 + 3) % 256;
  }
  const paeth = (a: number, b: number, c: number) => {
    const p = a + b - c;
    const pa = Math.abs(p - a);
    const pb = Math.abs(p - b);
    const pc = Math.abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
  };
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const filter = y % 5;
    raw[y * (stride + 1)] = filter;
    for (let i = 0; i < stride; i++) {
      const x = pixels[y * stride + i];
      const a = i >= ch ? pixels[y * stride + i - ch] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + i] : 0;
      const c = y > 0 && i >= ch ? pixels[(y - 1) * stride + i - ch] : 0;
      const pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][filter];
      raw[y * (stride + 1) + 1 + i] = (x - pred + 256) & 0xff;
    }
  }
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const png = concat([
    PNG_SIGNATURE,
    chunk("IHDR", ihdr),
    chunk("IDAT", new Uint8Array(deflateSync(raw))),
    chunk("IEND", new Uint8Array(0)),
  ]);
  const back = decodePNG(png);
  assertEquals(Array.from(back.pixels), Array.from(pixels));
});

Deno.test("encodePNG rejects bad arguments with clear messages", () => {
  const px = new Uint8Array(4);
  assertThrows(
    () => encodePNG(px, 3, 1, 1),
    ArgumentError,
    "encodePNG",
    "pixels",
    "3 * 1 * 1 = 3 bytes, got 4",
  );
  assertThrows(
    () => encodePNG(px, 0, 4, 1),
    ArgumentError,
    "encodePNG",
    "width",
  );
  assertThrows(
    () => encodePNG(px, 2, 1.5, 1),
    ArgumentError,
    "height",
  );
  assertThrows(
    () => encodePNG(px, 1, 1, 5 as never),
    ArgumentError,
    "channels",
  );
  assertThrows(
    () => encodePNG([1, 2, 3, 4] as never, 2, 2, 1),
    ArgumentError,
    "pixels must be a Uint8Array",
  );
});

Deno.test("decodePNG rejects corrupted files", () => {
  const png = encodePNG(new Uint8Array(16).fill(7), 4, 4, 1);
  const bad = png.slice();
  bad[bad.length - 20] ^= 0xff; // inside IDAT
  assertThrows(() => decodePNG(bad), ArgumentError, "bad CRC");
  assertThrows(
    () => decodePNG(ascii("not a png at all")),
    ArgumentError,
    "PNG signature",
  );
  assertThrows(
    () => readPNGChunks(png.slice(0, 20)),
    ArgumentError,
    "truncated",
  );
});

Deno.test("pngDataURL is a base64 data URL of the exact bytes", () => {
  const png = encodePNG(Uint8Array.of(1, 2, 3), 1, 1, 3);
  const url = pngDataURL(png);
  assert(url.startsWith("data:image/png;base64,"));
  const bytes = Uint8Array.from(
    atob(url.slice("data:image/png;base64,".length)),
    (c) => c.charCodeAt(0),
  );
  assertEquals(Array.from(bytes), Array.from(png));
  assertThrows(
    () => pngDataURL(Uint8Array.of(1, 2, 3)),
    ArgumentError,
    "pngDataURL",
  );
});

Deno.test("savePNG refuses to overwrite unless asked", async () => {
  const dir = await makeTestDir();
  try {
    const path = `${dir}/grid.png`;
    const first = encodePNG(new Uint8Array(4).fill(10), 2, 2, 1);
    const second = encodePNG(new Uint8Array(4).fill(200), 2, 2, 1);
    savePNG(path, first);
    assertThrows(
      () => savePNG(path, second),
      ArgumentError,
      "refusing to overwrite",
      "overwrite: true",
    );
    assertEquals(Array.from(Deno.readFileSync(path)), Array.from(first));
    savePNG(path, second, { overwrite: true });
    assertEquals(Array.from(Deno.readFileSync(path)), Array.from(second));
    assertThrows(
      () => savePNG(`${dir}/missing/dir/x.png`, first),
      ArgumentError,
      "directory does not exist",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
