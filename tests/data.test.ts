import { makeTestDir } from "./temp.ts";
import * as tf from "@tensorflow/tfjs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  assert,
  assertEquals,
  assertNoTensorLeak,
  assertRejects,
  assertThrows,
} from "./assert.ts";
import { initBackend } from "../lib/backend.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  batches,
  clearFashionMNISTCache,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_SYSTEM_DIR,
  type IDXDtype,
  IDXFormatError,
  loadFashionMNIST,
  type LoadFashionMNISTOptions,
  parseIDX,
  writeIDX,
} from "../lib/data.ts";

await initBackend();

const SUBSET_DIR = fileURLToPath(
  new URL("../data/fashion-mnist-subset/", import.meta.url),
);
async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

const systemFiles = ["train", "t10k"].flatMap((p) => [
  join(FASHION_MNIST_SYSTEM_DIR, `${p}-images-idx3-ubyte.gz`),
  join(FASHION_MNIST_SYSTEM_DIR, `${p}-labels-idx1-ubyte.gz`),
]);
const HAVE_DEBIAN = (await Promise.all(systemFiles.map(exists))).every(Boolean);

/** Runs `fn` with console.warn captured, so fallback messages can be checked. */
async function captureWarnings<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; lines: string[] }> {
  const lines: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => lines.push(args.map(String).join(" "));
  try {
    return { result: await fn(), lines };
  } finally {
    console.warn = original;
  }
}

// --- IDX -------------------------------------------------------------------

const SAMPLES: Record<IDXDtype, number[]> = {
  uint8: [0, 1, 127, 128, 254, 255],
  int8: [-128, -1, 0, 1, 100, 127],
  int16: [-32768, -300, 0, 1, 258, 32767],
  int32: [-2147483648, -70000, 0, 1, 16909060, 2147483647],
  float32: [-1.5, 0, 0.25, 3.5, -(2 ** 100), 65504],
  float64: [-1e300, Math.PI, 0, -0.1, 1e-300, 2 ** 53],
};

Deno.test("parseIDX/writeIDX round-trip every dtype, plain and gzipped", () => {
  for (
    const [dtype, values] of Object.entries(SAMPLES) as [IDXDtype, number[]][]
  ) {
    for (const gzip of [false, true]) {
      for (const shape of [[6], [2, 3], [3, 1, 2]]) {
        const bytes = writeIDX(values, shape, dtype, { gzip });
        if (gzip) assertEquals([bytes[0], bytes[1]], [0x1f, 0x8b]);
        const parsed = parseIDX(bytes);
        assertEquals(parsed.dtype, dtype);
        assertEquals(parsed.shape, shape);
        assertEquals(Array.from(parsed.data), values, `${dtype} gzip=${gzip}`);
      }
    }
  }
});

Deno.test("writeIDX produces the documented big-endian layout", () => {
  const bytes = writeIDX([1, -2], [2], "int16");
  assertEquals(Array.from(bytes), [
    0,
    0,
    0x0b,
    1,
    0,
    0,
    0,
    2,
    0x00,
    0x01,
    0xff,
    0xfe,
  ]);
  const big = writeIDX(new Uint8Array(300), [300], "uint8");
  assertEquals(Array.from(big.subarray(0, 8)), [0, 0, 8, 1, 0, 0, 1, 44]);
  // Empty arrays are legal IDX (a zero-size dimension), just not zero dimensions.
  assertEquals(parseIDX(writeIDX([], [0, 28], "uint8")).shape, [0, 28]);
});

Deno.test("writeIDX rejects bad arguments by name", () => {
  assertThrows(
    () => writeIDX([1, 2], [3], "uint8"),
    ArgumentError,
    "writeIDX",
    "3",
  );
  assertThrows(
    () => writeIDX([256], [1], "uint8"),
    ArgumentError,
    "writeIDX",
    "array[0]",
  );
  assertThrows(() => writeIDX([1.5], [1], "int32"), ArgumentError, "array[0]");
  assertThrows(
    () => writeIDX([1], [1], "uint16" as IDXDtype),
    ArgumentError,
    "writeIDX",
    "dtype",
  );
  assertThrows(() => writeIDX([1], [], "uint8"), ArgumentError, "shape");
  assertThrows(() => writeIDX([1], [-1], "uint8"), ArgumentError, "shape[0]");
});

Deno.test("parseIDX reports each kind of malformed file with IDXFormatError", () => {
  const good = writeIDX([1, 2, 3, 4, 5, 6], [2, 3], "int16");
  const name = "broken-file.idx";
  const cases: [string, Uint8Array, string[]][] = [
    ["empty", new Uint8Array(0), ["too short"]],
    ["3 bytes", new Uint8Array([0, 0, 8]), ["too short", "3 bytes"]],
    ["header cut", good.subarray(0, 9), [
      "too short",
      "2 dimensions",
      "12 bytes",
    ]],
    ["bad magic", Uint8Array.of(1, 2, 8, 1, 0, 0, 0, 0), [
      "bad magic",
      "01 02 08 01",
    ]],
    ["dtype", Uint8Array.of(0, 0, 0x0a, 1, 0, 0, 0, 0), [
      "unknown dtype code 0x0a",
      "0x8",
    ]],
    ["zero dims", Uint8Array.of(0, 0, 8, 0), ["zero dimensions"]],
    [
      "truncated",
      good.subarray(0, good.length - 3),
      ["truncated", "needs 24 bytes", "has 21"],
    ],
    [
      "trailing",
      Uint8Array.from([...good, 9, 9]),
      ["2 bytes of trailing garbage", "26"],
    ],
    ["corrupt gzip", Uint8Array.of(0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6), [
      "corrupt gzip",
    ]],
    [
      "truncated gzip",
      (() => {
        const z = writeIDX(SAMPLES.float64, [6], "float64", { gzip: true });
        return z.subarray(0, z.length - 10);
      })(),
      ["corrupt gzip"],
    ],
    [
      "gzipped truncation",
      new Uint8Array(gzipSync(good.subarray(0, 20))),
      ["truncated"],
    ],
  ];
  for (const [label, bytes, parts] of cases) {
    const err = assertThrows(
      () => parseIDX(bytes, { name }),
      IDXFormatError,
      name,
      ...parts,
    );
    assertEquals(err.name, "IDXFormatError", label);
  }
  // Without a name the message still explains the problem.
  assertThrows(
    () => parseIDX(Uint8Array.of(0, 0, 8, 0)),
    IDXFormatError,
    "zero dimensions",
  );
  assertThrows(
    () => parseIDX("abc" as unknown as Uint8Array),
    ArgumentError,
    "parseIDX",
    "bytes",
  );
});

// --- Fashion-MNIST subset ----------------------------------------------------

Deno.test("loadFashionMNIST({ subset: true }) matches the committed IDX bytes", async () => {
  for (
    const [split, prefix, n] of [["train", "train", 3000], [
      "test",
      "t10k",
      1000,
    ]] as const
  ) {
    const data = await assertNoTensorLeak(
      () => loadFashionMNIST({ split, subset: true }),
      {
        allowed: 2,
      },
    );
    try {
      assertEquals(data.images.shape, [n, 28, 28, 1]);
      assertEquals(data.images.dtype, "float32");
      assertEquals(data.labels.shape, [n]);
      assertEquals(data.labels.dtype, "int32");
      assertEquals(data.classNames, [...FASHION_MNIST_CLASSES]);
      assertEquals(data.classNames.length, 10);
      assert(data.source.includes("fashion-mnist-subset"), data.source);

      const rawImages = parseIDX(
        await Deno.readFile(join(SUBSET_DIR, `${prefix}-images-idx3-ubyte.gz`)),
      );
      const rawLabels = parseIDX(
        await Deno.readFile(join(SUBSET_DIR, `${prefix}-labels-idx1-ubyte.gz`)),
      );
      assertEquals(rawImages.shape, [n, 28, 28]);
      const pixels = data.images.dataSync();
      let min = Infinity, max = -Infinity, mismatches = 0;
      for (let i = 0; i < pixels.length; i++) {
        min = Math.min(min, pixels[i]);
        max = Math.max(max, pixels[i]);
        if (pixels[i] !== Math.fround(rawImages.data[i] / 255)) mismatches++;
      }
      assertEquals(mismatches, 0);
      assertEquals([min, max], [0, 1], "real images use the full 0..255 range");
      const labels = Array.from(data.labels.dataSync());
      assertEquals(labels, Array.from(rawLabels.data));
      assert(labels.every((l) => Number.isInteger(l) && l >= 0 && l <= 9));
      assertEquals(new Set(labels).size, 10, "every class is present");
    } finally {
      tf.dispose([data.images, data.labels]);
    }
  }
});

Deno.test("loadFashionMNIST limit takes the first examples and is validated", async () => {
  const all = await loadFashionMNIST({ subset: true, split: "test" });
  const few = await loadFashionMNIST({ subset: true, split: "test", limit: 7 });
  try {
    assertEquals(few.images.shape, [7, 28, 28, 1]);
    assertEquals(
      Array.from(few.labels.dataSync()),
      Array.from(all.labels.dataSync()).slice(0, 7),
    );
    const head = tf.tidy(() => all.images.slice([0, 0, 0, 0], [7, 28, 28, 1]));
    assertEquals(
      Array.from(few.images.dataSync()),
      Array.from(head.dataSync()),
    );
    head.dispose();
  } finally {
    tf.dispose([all.images, all.labels, few.images, few.labels]);
  }
  await assertNoTensorLeak(async () => {
    for (const limit of [0, -3, 2.5, NaN, "10"]) {
      await assertRejects(
        () => loadFashionMNIST({ subset: true, limit: limit as number }),
        ArgumentError,
        "loadFashionMNIST",
        "limit",
      );
    }
    await assertRejects(
      () => loadFashionMNIST({ subset: true, limit: 3001 }),
      ArgumentError,
      "limit must be at most 3000",
    );
    await assertRejects(
      () => loadFashionMNIST({ split: "valid" as "train", subset: true }),
      ArgumentError,
      "split",
    );
    await assertRejects(
      () => loadFashionMNIST({ subset: "yes" as unknown as boolean }),
      ArgumentError,
      "subset",
    );
  });
});

Deno.test("loadFashionMNIST caches parsed files: a repeat load is fast and equal", async () => {
  clearFashionMNISTCache();
  const a = await loadFashionMNIST({ subset: true, limit: 50 });
  const t0 = performance.now();
  const b = await loadFashionMNIST({ subset: true, limit: 50 });
  const elapsed = performance.now() - t0;
  try {
    assertEquals(
      Array.from(a.labels.dataSync()),
      Array.from(b.labels.dataSync()),
    );
    assert(
      a.images !== b.images,
      "each load returns fresh tensors the caller may dispose",
    );
    assert(elapsed < 200, `cached load took ${elapsed.toFixed(0)} ms`);
  } finally {
    tf.dispose([a.images, a.labels, b.images, b.labels]);
  }
});

// --- Search order, fallback and errors ---------------------------------------

Deno.test("loadFashionMNIST: not found anywhere lists every place it looked", async () => {
  const dataDir = await makeTestDir("fmnist-empty-");
  try {
    const err = await assertRejects(
      () => loadFashionMNIST({ dataDir, searchSystem: false, download: false }),
      Error,
      "loadFashionMNIST",
      join(dataDir, "fashion-mnist"),
      "train-images-idx3-ubyte.gz",
      "download disabled",
      "apt-get install dataset-fashion-mnist",
      "no limit was given",
    );
    assert(
      !err.message.includes(FASHION_MNIST_SYSTEM_DIR + " ("),
      "system dir was disabled",
    );
    await assertRejects(
      () =>
        loadFashionMNIST({
          dataDir,
          searchSystem: false,
          download: false,
          limit: 5000,
        }),
      Error,
      "limit 5000 is more than the 3000 examples",
    );
    // With the system dir enabled but (possibly) absent, it must be listed when missing.
    if (!HAVE_DEBIAN) {
      await assertRejects(
        () => loadFashionMNIST({ dataDir, download: false }),
        Error,
        FASHION_MNIST_SYSTEM_DIR,
      );
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("loadFashionMNIST falls back to the subset when limit fits, with one log line", async () => {
  const dataDir = await makeTestDir("fmnist-empty-");
  try {
    const { result, lines } = await captureWarnings(() =>
      loadFashionMNIST({
        dataDir,
        searchSystem: false,
        download: false,
        limit: 20,
        split: "test",
      })
    );
    try {
      assertEquals(lines.length, 1);
      assert(lines[0].includes("subset"), lines[0]);
      assertEquals(result.images.shape, [20, 28, 28, 1]);
      assert(result.source.includes("subset"), result.source);
    } finally {
      tf.dispose([result.images, result.labels]);
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("loadFashionMNIST reads <dataDir>/fashion-mnist first and checks the files", async () => {
  const dataDir = await makeTestDir("fmnist-local-");
  const dir = join(dataDir, "fashion-mnist");
  await Deno.mkdir(dir);
  try {
    // Tiny look-alike files: readable with verify off, rejected by the SHA-256 check.
    const images = new Uint8Array(4 * 28 * 28).map((_, i) => i % 256);
    await Deno.writeFile(
      join(dir, "t10k-images-idx3-ubyte.gz"),
      writeIDX(images, [4, 28, 28], "uint8", { gzip: true }),
    );
    // Uncompressed labels are accepted too.
    await Deno.writeFile(
      join(dir, "t10k-labels-idx1-ubyte"),
      writeIDX([3, 1, 4, 1], [4], "uint8"),
    );
    const opts = {
      dataDir,
      split: "test" as const,
      searchSystem: false,
      download: false,
    };
    await assertRejects(
      () => loadFashionMNIST(opts),
      IDXFormatError,
      "SHA-256",
      dir,
    );
    const data = await loadFashionMNIST({ ...opts, verify: false });
    try {
      assertEquals(data.images.shape, [4, 28, 28, 1]);
      assertEquals(Array.from(data.labels.dataSync()), [3, 1, 4, 1]);
      assert(data.source.startsWith(dir), data.source);
      assertEquals(data.images.dataSync()[255], 1);
    } finally {
      tf.dispose([data.images, data.labels]);
    }

    // Mismatched counts, bad labels and wrong image sizes are caught.
    const bad: [string, Uint8Array, Uint8Array, string][] = [
      [
        "count",
        writeIDX(images, [4, 28, 28], "uint8"),
        writeIDX([1, 2, 3], [3], "uint8"),
        "3 labels but 4 images",
      ],
      [
        "label",
        writeIDX(images, [4, 28, 28], "uint8"),
        writeIDX([1, 2, 10, 3], [4], "uint8"),
        "label 2 is 10",
      ],
      [
        "dims",
        writeIDX(new Uint8Array(4 * 27 * 29), [4, 27, 29], "uint8"),
        writeIDX([1, 2, 3, 4], [4], "uint8"),
        "[n, 28, 28]",
      ],
    ];
    for (const [label, img, lbl, message] of bad) {
      const sub = join(dataDir, label);
      await Deno.mkdir(join(sub, "fashion-mnist"), { recursive: true });
      await Deno.writeFile(
        join(sub, "fashion-mnist", "train-images-idx3-ubyte"),
        img,
      );
      await Deno.writeFile(
        join(sub, "fashion-mnist", "train-labels-idx1-ubyte"),
        lbl,
      );
      await assertRejects(
        () =>
          loadFashionMNIST({
            dataDir: sub,
            searchSystem: false,
            download: false,
            verify: false,
          }),
        IDXFormatError,
        message,
      );
    }
  } finally {
    clearFashionMNISTCache();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test({
  name:
    "loadFashionMNIST on the Debian files (or the documented fallback without them)",
  fn: async () => {
    const dataDir = await makeTestDir("fmnist-sys-");
    try {
      if (HAVE_DEBIAN) {
        const t0 = performance.now();
        const test = await loadFashionMNIST({
          dataDir,
          split: "test",
          download: false,
        });
        const train = await loadFashionMNIST({
          dataDir,
          split: "train",
          download: false,
        });
        const elapsed = performance.now() - t0;
        try {
          assertEquals(test.images.shape, [10000, 28, 28, 1]);
          assertEquals(train.images.shape, [60000, 28, 28, 1]);
          assertEquals(train.labels.shape, [60000]);
          assert(train.source.includes(FASHION_MNIST_SYSTEM_DIR), train.source);
          assert(train.source.includes("full"), train.source);
          const counts = new Array(10).fill(0);
          for (const l of train.labels.dataSync()) counts[l]++;
          assertEquals(
            counts,
            new Array(10).fill(6000),
            "the official train split is balanced",
          );
          // The committed subset is the first 1000 test examples.
          const sub = await loadFashionMNIST({ split: "test", subset: true });
          const head = tf.tidy(() =>
            test.images.slice([0, 0, 0, 0], [1000, 28, 28, 1])
          );
          const headLabels = tf.tidy(() => test.labels.slice([0], [1000]));
          assertEquals(
            Array.from(sub.labels.dataSync()),
            Array.from(headLabels.dataSync()),
          );
          assertEquals(
            Array.from(sub.images.dataSync()),
            Array.from(head.dataSync()),
          );
          tf.dispose([sub.images, sub.labels, head, headLabels]);
          assert(
            elapsed < 20_000,
            `loading both splits took ${elapsed.toFixed(0)} ms`,
          );
        } finally {
          tf.dispose([test.images, test.labels, train.images, train.labels]);
        }
      } else {
        await assertRejects(
          () => loadFashionMNIST({ dataDir, download: false }),
          Error,
          FASHION_MNIST_SYSTEM_DIR,
          "apt-get install dataset-fashion-mnist",
        );
        const { result, lines } = await captureWarnings(() =>
          loadFashionMNIST({ dataDir, download: false, limit: 100 })
        );
        assertEquals(lines.length, 1);
        assertEquals(result.images.shape, [100, 28, 28, 1]);
        tf.dispose([result.images, result.labels]);
      }
    } finally {
      clearFashionMNISTCache();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

// --- batches -------------------------------------------------------------------

Deno.test("batches covers every index once per epoch and is seeded", () => {
  const collect = (opts: Parameters<typeof batches>[2]) =>
    Array.from(batches(10, 4, opts), (b) => Array.from(b));
  const a = collect({ seed: 1 });
  assertEquals(a.map((b) => b.length), [4, 4, 2]);
  assertEquals(a.flat().sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assertEquals(collect({ seed: 1 }), a);
  assert(JSON.stringify(collect({ seed: 2 })) !== JSON.stringify(a));
  assertEquals(collect({ shuffle: false }), [[0, 1, 2, 3], [4, 5, 6, 7], [
    8,
    9,
  ]]);
  assertEquals(collect({ shuffle: false, dropRemainder: true }).length, 2);
  assertThrows(
    () => batches(10, 0).next(),
    ArgumentError,
    "batches",
    "batchSize",
  );
  assertThrows(() => batches(-1, 2).next(), ArgumentError, "batches", "n");
});

Deno.test("loadFashionMNIST downloads into dataDir, verifies, keeps nothing unverified (local mirror)", async () => {
  const served: Record<string, Uint8Array> = {};
  if (HAVE_DEBIAN) {
    for (
      const f of ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    ) {
      served[`/good/${f}`] = await Deno.readFile(
        join(FASHION_MNIST_SYSTEM_DIR, f),
      );
    }
  }
  // Well-formed IDX files with the wrong contents must fail the SHA-256 check.
  served["/bad/t10k-images-idx3-ubyte.gz"] = writeIDX(
    new Uint8Array(784),
    [1, 28, 28],
    "uint8",
    {
      gzip: true,
    },
  );
  served["/bad/t10k-labels-idx1-ubyte.gz"] = writeIDX([0], [1], "uint8", {
    gzip: true,
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      const body = served[new URL(req.url).pathname];
      return body
        ? new Response(body as Uint8Array<ArrayBuffer>)
        : new Response("no", { status: 404 });
    },
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const dataDir = await makeTestDir("fmnist-dl-");
  const local = join(dataDir, "fashion-mnist");
  const opts = { dataDir, split: "test" as const, searchSystem: false };
  try {
    const bad = await assertRejects(
      () => loadFashionMNIST({ ...opts, downloadUrl: `${base}/bad/` }),
      Error,
      "download failed",
      "SHA-256 mismatch",
    );
    assert(bad.message.includes(`${base}/bad/`), bad.message);
    await assertRejects(
      () => loadFashionMNIST({ ...opts, downloadUrl: `${base}/missing` }),
      Error,
      "HTTP 404",
    );
    const leftovers = await Array.fromAsync(Deno.readDir(dataDir));
    assert(
      leftovers.every((e) => e.name === "fashion-mnist"),
      `unexpected files ${leftovers.map((e) => e.name)}`,
    );
    if (await exists(local)) {
      assertEquals(
        await Array.fromAsync(Deno.readDir(local)),
        [],
        "nothing unverified is kept",
      );
    }
    if (HAVE_DEBIAN) {
      const data = await loadFashionMNIST({
        ...opts,
        downloadUrl: `${base}/good`,
        limit: 10,
      });
      tf.dispose([data.images, data.labels]);
      assert(data.source.includes("downloaded from"), data.source);
      const names = (await Array.fromAsync(Deno.readDir(local))).map((e) =>
        e.name
      ).sort();
      assertEquals(names, [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
      ]);
      // Second load finds the local copy and does not download again.
      const again = await loadFashionMNIST({
        ...opts,
        download: false,
        limit: 10,
      });
      tf.dispose([again.images, again.labels]);
      assert(again.source.includes("local copy"), again.source);
    }
  } finally {
    clearFashionMNISTCache();
    await server.shutdown();
    await Deno.remove(dataDir, { recursive: true });
  }
});

// --- Issue 18: bounded gunzip, a cache that sees replaced files, a checked subset

/** gzip members concatenated: gunzip inflates them one after the other. */
function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("a gzipped IDX file never inflates past the size its header declares", async () => {
  // 263 KiB of gzip (deflate's ratio is at most ~1032): an 18-byte IDX file
  // ([10] uint8), then 256 MiB of zeros.
  const mib = new Uint8Array(gzipSync(new Uint8Array(1 << 20), { level: 9 }));
  const bomb = concatBytes([
    writeIDX(new Uint8Array(10), [10], "uint8", { gzip: true }),
    ...Array.from({ length: 256 }, () => mib),
  ]);
  assert(bomb.length < 270 * 1024, `bomb is ${bomb.length} bytes`);
  const t0 = performance.now();
  assertThrows(
    () => parseIDX(bomb, { name: "bomb.gz" }),
    IDXFormatError,
    "bomb.gz",
    "more than the 18 bytes its IDX header declares",
    "[10] of uint8",
  );
  const ms = performance.now() - t0;
  assert(ms < 1000, `rejecting the bomb took ${ms.toFixed(0)} ms`);
  // A header that declares more than this reader inflates: 4 GiB of uint8.
  const huge = new Uint8Array(
    gzipSync(Uint8Array.of(0, 0, 8, 2, 0, 1, 0, 0, 0, 1, 0, 0)),
  );
  assertThrows(
    () => parseIDX(huge),
    IDXFormatError,
    "[65536, 65536]",
    "more than",
  );
  // The loader reads through the same limit.
  const dataDir = await makeTestDir("fmnist-bomb-");
  try {
    const dir = join(dataDir, "fashion-mnist");
    await Deno.mkdir(dir);
    await Deno.writeFile(
      join(dir, "t10k-images-idx3-ubyte.gz"),
      writeIDX(new Uint8Array(10 * 28 * 28), [10, 28, 28], "uint8", {
        gzip: true,
      }),
    );
    await Deno.writeFile(join(dir, "t10k-labels-idx1-ubyte.gz"), bomb);
    await assertRejects(
      () =>
        loadFashionMNIST({
          dataDir,
          split: "test",
          searchSystem: false,
          download: false,
          verify: false,
        }),
      IDXFormatError,
      "t10k-labels-idx1-ubyte.gz",
      "more than the 18 bytes",
    );
  } finally {
    clearFashionMNISTCache();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a file replaced on disk is read again (the cache is keyed by path, size and mtime)", async () => {
  const dataDir = await makeTestDir("fmnist-replaced-");
  const dir = join(dataDir, "fashion-mnist");
  await Deno.mkdir(dir);
  const opts = {
    dataDir,
    split: "test" as const,
    searchSystem: false,
    download: false,
    verify: false,
  };
  const images = join(dir, "t10k-images-idx3-ubyte");
  const labels = join(dir, "t10k-labels-idx1-ubyte");
  const write = async (n: number, classes: number[]) => {
    await Deno.writeFile(
      images,
      writeIDX(new Uint8Array(n * 784), [n, 28, 28], "uint8"),
    );
    await Deno.writeFile(labels, writeIDX(classes, [n], "uint8"));
  };
  const load = async () => {
    const d = await loadFashionMNIST(opts);
    const out = Array.from(d.labels.dataSync());
    tf.dispose([d.images, d.labels]);
    return out;
  };
  try {
    clearFashionMNISTCache();
    await write(4, [3, 1, 4, 1]);
    assertEquals(await load(), [3, 1, 4, 1]);
    // Same size, new contents, a later mtime.
    await write(4, [2, 7, 1, 8]);
    const later = new Date(Date.now() + 5000);
    await Deno.utime(labels, later, later);
    assertEquals(await load(), [2, 7, 1, 8]);
    // Another size.
    await write(5, [9, 9, 9, 9, 9]);
    assertEquals(await load(), [9, 9, 9, 9, 9]);
    // Unchanged files come from the cache: the same parsed values.
    assertEquals(await load(), [9, 9, 9, 9, 9]);
  } finally {
    clearFashionMNISTCache();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("the committed subset is checked against its recorded SHA-256", async () => {
  const copy = await makeTestDir("fmnist-subset-copy-");
  const empty = await makeTestDir("fmnist-empty-");
  try {
    for (const e of Deno.readDirSync(SUBSET_DIR)) {
      if (e.name.endsWith(".gz")) {
        await Deno.copyFile(join(SUBSET_DIR, e.name), join(copy, e.name));
      }
    }
    clearFashionMNISTCache();
    // An intact copy loads.
    const ok = await loadFashionMNIST({
      subset: true,
      split: "test",
      subsetDir: copy,
      limit: 3,
    });
    tf.dispose([ok.images, ok.labels]);
    // One label changed: a well-formed file, but not the committed one.
    const file = join(copy, "t10k-labels-idx1-ubyte.gz");
    const parsed = parseIDX(await Deno.readFile(file));
    const changed = Array.from(parsed.data);
    changed[0] = (changed[0] + 1) % 10;
    await Deno.writeFile(
      file,
      writeIDX(changed, parsed.shape, "uint8", { gzip: true }),
    );
    // (mtime has millisecond resolution: written within the same one as the
    // copy, the file would look unchanged to the cache.)
    const later = new Date(Date.now() + 5000);
    await Deno.utime(file, later, later);
    for (
      const options of [
        { subset: true, split: "test" as const, subsetDir: copy },
        // The fallback path checks it too.
        {
          dataDir: empty,
          searchSystem: false,
          download: false,
          limit: 20,
          split: "test" as const,
          subsetDir: copy,
        },
      ]
    ) {
      await assertRejects(
        () => loadFashionMNIST(options),
        IDXFormatError,
        "t10k-labels-idx1-ubyte.gz",
        "SHA-256",
        "git checkout",
      );
    }
    // verify: false reads it as it is.
    const unchecked = await loadFashionMNIST({
      subset: true,
      split: "test",
      subsetDir: copy,
      verify: false,
      limit: 1,
    });
    assertEquals(Array.from(unchecked.labels.dataSync()), [changed[0]]);
    tf.dispose([unchecked.images, unchecked.labels]);
  } finally {
    clearFashionMNISTCache();
    await Deno.remove(copy, { recursive: true });
    await Deno.remove(empty, { recursive: true });
  }
});

Deno.test("loader options are key-checked: typos name the closest key, null is an ArgumentError", async () => {
  await assertRejects(
    () => loadFashionMNIST({ spilt: "test" } as LoadFashionMNISTOptions),
    ArgumentError,
    "loadFashionMNIST",
    "spilt",
    "split",
  );
  await assertRejects(
    () => loadFashionMNIST(null as unknown as LoadFashionMNISTOptions),
    ArgumentError,
    "loadFashionMNIST",
    "options",
  );
  await assertRejects(
    () => loadFashionMNIST({ subset: true, subsetDir: 3 as unknown as string }),
    ArgumentError,
    "subsetDir",
  );
  const bytes = writeIDX([1, 2], [2], "uint8");
  assertThrows(
    () => parseIDX(bytes, { nmae: "x" } as { name?: string }),
    ArgumentError,
    "parseIDX",
    "nmae",
    "name",
  );
  assertThrows(
    () => writeIDX([1], [1], "uint8", { gzip: "yes" as unknown as boolean }),
    ArgumentError,
    "writeIDX",
    "gzip",
  );
  assertThrows(
    () => writeIDX([1], [1], "uint8", { zip: true } as { gzip?: boolean }),
    ArgumentError,
    "writeIDX",
    "zip",
  );
});
