/**
 * The oneDNN convolution path (kernels/dnnl.ts): opening it, its thread
 * counts giving the same bits, its plans, and the kernels' fallback when it
 * declines a geometry. Values and gradients against the cpu backend, on
 * every geometry, are in conv_kernels.test.ts (its "oneDNN conv" path).
 */
import * as tf from "@tensorflow/tfjs";
import { describeBackend, initBackend } from "../backend.ts";
import {
  type ConvGeometry,
  type ConvPass,
  FILTER_GRADIENT_PARTS,
  isDirectKernel,
  MAX_PLANS,
  MIN_PART_MACS,
  openDnnl,
  type OpenDnnlOptions,
  partSizes,
  useDnnl,
} from "../kernels/dnnl.ts";
import { DEFAULT_DNNL } from "./matmul_paths.ts";
import { ArgumentError } from "../errors.ts";
import { randomNormal } from "./seeded.ts";
import { runChildScript } from "./child_script.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertThrows,
} from "../../../tests/assert.ts";

await initBackend({ quiet: true });
const dnnl = DEFAULT_DNNL;

Deno.test("openDnnl names the file it could not load and does not throw", () => {
  const result = openDnnl({ paths: ["/nonexistent/libdnnl.so.2"] });
  if (dnnl) {
    // Opened once per process: later calls return it.
    assertEquals(result.ok, true);
  } else {
    assertEquals(result.ok, false);
    if (!result.ok) {
      assert(result.reason.includes("/nonexistent/"), result.reason);
    }
  }
});

Deno.test("openDnnl rejects a bad thread count, an empty path list or an unknown option", () => {
  for (const threads of [0, 1.5, 65]) {
    assertThrows(() => openDnnl({ threads }), ArgumentError, "threads");
  }
  assertThrows(() => openDnnl({ paths: [] }), ArgumentError, "paths");
  assertThrows(
    () => openDnnl({ thread: 2 } as OpenDnnlOptions),
    ArgumentError,
    'openDnnl: unknown option "thread" (did you mean "threads"?)',
  );
});

Deno.test("TFJS_DNNL=0 turns the automatic choice off", () => {
  const before = Deno.env.get("TFJS_DNNL");
  Deno.env.set("TFJS_DNNL", "0");
  try {
    const automatic = openDnnl();
    assertEquals(automatic.ok, false);
    if (!automatic.ok) assertEquals(automatic.reason, "TFJS_DNNL=0");
  } finally {
    if (before === undefined) Deno.env.delete("TFJS_DNNL");
    else Deno.env.set("TFJS_DNNL", before);
  }
});

Deno.test("initBackend rejects a dnnl option that is not a boolean", async () => {
  await assertRejects(
    () => initBackend({ dnnl: "yes" as unknown as boolean, quiet: true }),
    "initBackend: dnnl must be true or false",
  );
});

async function assertRejects(fn: () => Promise<unknown>, message: string) {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof ArgumentError, String(e));
    assert(e.message.includes(message), e.message);
    return;
  }
  throw new Error("expected a rejection");
}

Deno.test("describeBackend says whether the convolutions run on oneDNN", () => {
  const line = describeBackend();
  if (dnnl) {
    assert(
      /conv on oneDNN 2\.\d+\.\d+ \((1 thread|\d threads, the bits of 1)\)$/
        .test(line),
      line,
    );
  } else {
    assert(!line.includes("conv on oneDNN"), line);
  }
});

/** A geometry in the kernels' terms: NHWC, HWIO, explicit padding. */
function geometry(
  batch: number,
  size: number,
  inChannels: number,
  outChannels: number,
  kernel: number,
  stride: number,
  pad: [number, number],
): ConvGeometry {
  const out = Math.floor((size + pad[0] + pad[1] - kernel) / stride) + 1;
  return {
    batch,
    inHeight: size,
    inWidth: size,
    inChannels,
    outHeight: out,
    outWidth: out,
    outChannels,
    filterHeight: kernel,
    filterWidth: kernel,
    strideHeight: stride,
    strideWidth: stride,
    padTop: pad[0],
    padBottom: pad[1],
    padLeft: pad[0],
    padRight: pad[1],
  };
}

/** Seeded operands and a result buffer of each pass of `g`. */
function operands(g: ConvGeometry, seed: number) {
  const x = g.batch * g.inHeight * g.inWidth * g.inChannels;
  const w = g.filterHeight * g.filterWidth * g.inChannels * g.outChannels;
  const y = g.batch * g.outHeight * g.outWidth * g.outChannels;
  const fill = (n: number, s: number) =>
    randomNormal([n], { seed: s }).dataSync() as Float32Array;
  const [xs, ws, ys] = [fill(x, seed), fill(w, seed + 1), fill(y, seed + 2)];
  return {
    forward: { a: xs, b: ws, size: y },
    backwardData: { a: ys, b: ws, size: x },
    backwardWeights: { a: xs, b: ys, size: w },
  } satisfies Record<ConvPass, unknown>;
}

const PASSES: ConvPass[] = ["forward", "backwardData", "backwardWeights"];

Deno.test("partSizes cuts a filter gradient by its geometry only, and the other passes by threads", () => {
  const big = geometry(32, 14, 32, 32, 5, 1, [2, 2]);
  for (const threads of [1, 2, 3, 8]) {
    assertEquals(
      partSizes("backwardWeights", big, threads),
      [16, 16],
      `${threads} threads`,
    );
    const forward = partSizes("forward", big, threads);
    assertEquals(forward.length, threads);
    assertEquals(forward.reduce((p, q) => p + q), 32);
    assert(forward[0] - forward[threads - 1] <= 1, `${forward}`);
  }
  assertEquals(FILTER_GRADIENT_PARTS, 2);
  assertEquals(partSizes("backwardWeights", { ...big, batch: 7 }, 1), [4, 3]);
  // Parts of fewer than MIN_PART_MACS multiply-adds, or of no image, are not made.
  const small = geometry(64, 7, 64, 16, 1, 1, [0, 0]);
  assert(64 * 49 * 16 * 64 < 2 * MIN_PART_MACS);
  for (const pass of PASSES) assertEquals(partSizes(pass, small, 2), [64]);
  assertEquals(partSizes("forward", { ...big, batch: 1 }, 2), [1]);
});

if (dnnl) {
  Deno.test("oneDNN: every pass gives the same bits on 1, 2 and 3 threads", async () => {
    const before = dnnl.threads ?? 1;
    try {
      for (
        const g of [
          geometry(32, 14, 32, 32, 5, 1, [2, 2]),
          geometry(64, 14, 32, 64, 4, 2, [1, 1]),
          geometry(32, 4, 256, 256, 3, 1, [1, 1]),
          geometry(64, 7, 64, 16, 1, 1, [0, 0]),
          geometry(7, 15, 3, 5, 3, 2, [0, 0]),
        ]
      ) {
        const ops = operands(g, 1);
        for (const pass of PASSES) {
          const { a, b, size } = ops[pass];
          const results: Float32Array[] = [];
          for (const threads of [1, 2, 3]) {
            await dnnl.setThreads(threads);
            const out = new Float32Array(size);
            assert(dnnl.convolve(pass, g, a, b, out), `${pass} ran`);
            results.push(out);
          }
          assert(results[0].some((v) => v !== 0), `${pass} wrote`);
          for (const r of results.slice(1)) {
            assertEquals(
              new Uint32Array(r.buffer),
              new Uint32Array(results[0].buffer),
              `${pass} of ${JSON.stringify(g)}`,
            );
          }
        }
      }
    } finally {
      await dnnl.setThreads(before);
    }
  });

  Deno.test("oneDNN: helper threads compute parts of the large passes", async () => {
    const before = dnnl.threads ?? 1;
    try {
      await dnnl.setThreads(2);
      if (dnnl.threads !== 2) return; // OpenMP could not be held at one thread
      const g = geometry(32, 14, 32, 32, 5, 1, [2, 2]);
      const { a, b, size } = operands(g, 3).backwardWeights;
      const out = new Float32Array(size);
      // The main thread takes a part nobody claimed: on a busy machine
      // the helper may miss a few.
      for (let i = 0; i < 200 && dnnl.partsOnHelpers === 0; i++) {
        assert(dnnl.convolve("backwardWeights", g, a, b, out));
      }
      assert(dnnl.partsOnHelpers > 0, "no part ran on the helper");
    } finally {
      await dnnl.setThreads(before);
    }
  });

  for (
    const [name, g] of [
      // An asymmetric padding and a stride that leaves a pixel out.
      ["one part", geometry(2, 8, 3, 4, 3, 2, [1, 0])],
      // Large enough to be cut: the filter gradient adds its parts.
      ["parts", geometry(17, 16, 32, 32, 3, 2, [1, 0])],
    ] as const
  ) {
    Deno.test(`oneDNN: the forward pass is the convolution's sum, and the gradients its transposes (${name})`, async () => {
      const before = dnnl.threads ?? 1;
      try {
        for (const threads of [1, 2]) {
          await dnnl.setThreads(threads);
          checkByDefinition(g);
        }
      } finally {
        await dnnl.setThreads(before);
      }
    });
  }

  /** Each pass of `g` against its sum, in float64. */
  const checkByDefinition = (g: ConvGeometry) => {
    const dnnl = DEFAULT_DNNL!;
    const ops = operands(g, 5);
    const { a: x, b: w } = ops.forward;
    const dy = ops.backwardWeights.b;
    const at = (n: number, h: number, v: number, c: number, ch: number) =>
      ((n * g.inHeight + h) * g.inWidth + v) * ch + c;
    // y = conv(x, w) by its definition; then <dy, conv(x, w)> equals
    // <backwardData(dy), x> and <backwardWeights(x, dy), w>.
    const y = new Float64Array(ops.forward.size);
    const dx = new Float64Array(x.length);
    const dw = new Float64Array(w.length);
    for (let n = 0; n < g.batch; n++) {
      for (let oh = 0; oh < g.outHeight; oh++) {
        for (let ow = 0; ow < g.outWidth; ow++) {
          for (let co = 0; co < g.outChannels; co++) {
            const yi = ((n * g.outHeight + oh) * g.outWidth + ow) *
                g.outChannels + co;
            for (let fh = 0; fh < g.filterHeight; fh++) {
              for (let fw = 0; fw < g.filterWidth; fw++) {
                const ih = oh * g.strideHeight + fh - g.padTop;
                const iw = ow * g.strideWidth + fw - g.padLeft;
                if (ih < 0 || iw < 0 || ih >= g.inHeight || iw >= g.inWidth) {
                  continue;
                }
                for (let ci = 0; ci < g.inChannels; ci++) {
                  const xi = at(n, ih, iw, ci, g.inChannels);
                  const wi = ((fh * g.filterWidth + fw) * g.inChannels + ci) *
                      g.outChannels + co;
                  y[yi] += x[xi] * w[wi];
                  dx[xi] += dy[yi] * w[wi];
                  dw[wi] += dy[yi] * x[xi];
                }
              }
            }
          }
        }
      }
    }
    const expected = { forward: y, backwardData: dx, backwardWeights: dw };
    for (const pass of PASSES) {
      const { a, b, size } = ops[pass];
      const out = new Float32Array(size);
      assert(dnnl.convolve(pass, g, a, b, out));
      assertAllClose(out, Float32Array.from(expected[pass]), {
        rtol: 1e-5,
        atol: 1e-4,
        message: `${pass} of ${JSON.stringify(g)}`,
      });
    }
  };

  Deno.test("oneDNN: more geometries than it keeps plans for still compute right", () => {
    // More batch sizes of one layer than plans are kept: plans are made,
    // dropped and made again.
    for (const round of [0, 1]) {
      for (let batch = 1; batch <= MAX_PLANS + 10; batch++) {
        const g = geometry(batch, 3, 2, 2, 3, 1, [1, 1]);
        const { a, b, size } = operands(g, batch).forward;
        const out = new Float32Array(size);
        assert(dnnl.convolve("forward", g, a, b, out));
        // The centre pixel sees the whole 3x3 image.
        for (let n = 0; n < batch; n++) {
          for (let co = 0; co < 2; co++) {
            let sum = 0;
            for (let p = 0; p < 9; p++) {
              for (let ci = 0; ci < 2; ci++) {
                sum += a[(n * 9 + p) * 2 + ci] * b[(p * 2 + ci) * 2 + co];
              }
            }
            const got = out[(n * 9 + 4) * 2 + co];
            assert(
              Math.abs(got - sum) < 1e-5,
              `round ${round}, batch ${batch}: ${got} vs ${sum}`,
            );
          }
        }
      }
    }
  });

  Deno.test("oneDNN: its implementations are the fast ones, not the reference code", () => {
    const g = geometry(32, 14, 32, 32, 5, 1, [2, 2]);
    for (const pass of PASSES) {
      const impl = dnnl.implementation(pass, g);
      assert(impl !== null && isDirectKernel(impl), `${pass}: ${impl}`);
    }
    for (const name of ["jit:avx2", "jit_1x1:avx512_core", "jit:sse41"]) {
      assert(isDirectKernel(name), name);
    }
    for (
      const name of [
        "ref:any",
        "x64:gemm:jit",
        "gemm:jit",
        "brgconv:avx512_core",
      ]
    ) {
      assert(!isDirectKernel(name), name);
    }
  });

  Deno.test("oneDNN held below AVX2 declines its gemm-based passes instead of failing on a helper thread", async () => {
    // DNNL_MAX_CPU_ISA=SSE41 makes oneDNN choose what a CPU without AVX2
    // gets: direct forward kernels, gemm-based ("x64:gemm:jit") gradients,
    // which fail on the package's helper threads (status 2).
    const script = `
      import { openDnnl } from ${
      JSON.stringify(new URL("../kernels/dnnl.ts", import.meta.url))
    };
      const opened = openDnnl({ threads: 2 });
      if (!opened.ok) throw new Error(opened.reason);
      await opened.dnnl.ready;
      const g = { batch: 64, inHeight: 14, inWidth: 14, inChannels: 32,
        outHeight: 7, outWidth: 7, outChannels: 64, filterHeight: 4,
        filterWidth: 4, strideHeight: 2, strideWidth: 2, padTop: 1,
        padBottom: 2, padLeft: 1, padRight: 2 };
      const x = new Float32Array(64 * 14 * 14 * 32).fill(0.5);
      const w = new Float32Array(4 * 4 * 32 * 64).fill(0.25);
      const y = new Float32Array(64 * 7 * 7 * 64);
      const ran = [
        opened.dnnl.convolve("forward", g, x, w, y),
        opened.dnnl.convolve("backwardData", g, y, w, x),
        opened.dnnl.convolve("backwardWeights", g, x, y, w),
      ];
      console.log(JSON.stringify({
        ran,
        y: y[0],
        implementation: opened.dnnl.implementation("forward", g),
        threads: opened.dnnl.threads,
      }));
      await opened.dnnl.setThreads(1);
    `;
    const out = await runChildScript(script, {
      env: { DNNL_MAX_CPU_ISA: "SSE41" },
    });
    assertEquals(out.code, 0, out.stderr);
    const got = JSON.parse(out.stdout.trim());
    assertEquals(got.threads, 2);
    assertEquals(got.implementation, "jit:sse41");
    // Every input of y's first element is 0.5 x 0.25, 9 of 16 taps inside.
    assertEquals(got.y, 9 * 32 * 0.5 * 0.25);
    assertEquals(got.ran, [true, false, false]);
  });

  Deno.test("the convolution kernels fall back to im2col when oneDNN declines a geometry", () => {
    let asked = 0;
    useDnnl({
      ...dnnl,
      convolve: () => (asked++, false),
      implementation: () => null,
    });
    try {
      const x = randomNormal([2, 9, 9, 4], { seed: 1 }) as tf.Tensor4D;
      const w = randomNormal([3, 3, 4, 4], { seed: 2 }) as tf.Tensor4D;
      const f = (p: tf.Tensor, q: tf.Tensor) =>
        tf.conv2d(p as tf.Tensor4D, q as tf.Tensor4D, 2, "same").sum();
      const before = tf.memory().numTensors;
      const [dx, dw] = tf.grads(f)([x, w]);
      const y = tf.conv2d(x, w, 2, "same");
      assertEquals(asked, 4, "forward twice, both gradients once");
      useDnnl(dnnl);
      const [dx1, dw1] = tf.grads(f)([x, w]);
      const y1 = tf.conv2d(x, w, 2, "same");
      for (const [p, q] of [[y, y1], [dx, dx1], [dw, dw1]]) {
        assertAllClose(
          p.dataSync() as Float32Array,
          q.dataSync() as Float32Array,
          { rtol: 1e-5, atol: 1e-5 },
        );
      }
      tf.dispose([dx, dw, y, dx1, dw1, y1]);
      assertEquals(tf.memory().numTensors, before);
      tf.dispose([x, w]);
    } finally {
      useDnnl(dnnl);
    }
  });
}

if (dnnl) {
  Deno.test("only input gradients into fewer than 4 channels stay on im2col", () => {
    const asked: ConvPass[] = [];
    useDnnl({
      ...dnnl,
      convolve: (
        pass,
        ...rest
      ) => (asked.push(pass), dnnl.convolve(pass, ...rest)),
    });
    try {
      tf.tidy(() => {
        const f = (p: tf.Tensor, q: tf.Tensor) =>
          tf.conv2d(p as tf.Tensor4D, q as tf.Tensor4D, 2, "same").sum();
        const passesOf = (cin: number, cout: number) => {
          asked.length = 0;
          const x = randomNormal([2, 8, 8, cin], { seed: 1 });
          const w = randomNormal([4, 4, cin, cout], { seed: 2 });
          tf.grads(f)([x, w]);
          return [...asked].sort();
        };
        // The VQ-VAE's first layer (1 -> 32): its input gradient on im2col.
        assertEquals(passesOf(1, 32), ["backwardWeights", "forward"]);
        assertEquals(passesOf(3, 32), ["backwardWeights", "forward"]);
        for (const [cin, cout] of [[32, 3], [4, 4]]) {
          assertEquals(
            passesOf(cin, cout),
            ["backwardData", "backwardWeights", "forward"],
            `${cin} -> ${cout}`,
          );
        }
      });
    } finally {
      useDnnl(dnnl);
    }
  });
}

Deno.test("a oneDNN file that does not load is named once in the backend line", async () => {
  const backend = new URL("../backend.ts", import.meta.url).href;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { initBackend } from "${backend}"; await initBackend();`,
    ],
    env: { TFJS_DNNL: "/nonexistent/libdnnl.so.2" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const line = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  assert(
    line.includes(
      "; oneDNN not used: cannot load /nonexistent/libdnnl.so.2: ",
    ),
    line,
  );
  assert(!line.includes("Could not open library"), line);
});
