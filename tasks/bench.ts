/**
 * `deno task bench`: milliseconds per training step of the course's
 * workloads on every tfjs backend, side by side with PyTorch (when
 * /usr/bin/python3 can import torch; tasks/reference/bench_torch.py).
 *
 * Rounds are interleaved (round 1 of every workload on every backend, then
 * round 2, ...) and the median is reported, so a burst of load from other
 * processes on a shared machine hits every entry alike. Writes the table to
 * build/bench.json as well.
 *
 * Flags:
 *   --quick            2 rounds, shorter timings (CI smoke run)
 *   --rounds=N         rounds (default 3)
 *   --filter=REGEX     only workloads whose name matches
 *   --backends=a,b     backends: wasm+openblas (wasm with its matMuls on
 *                      OpenBLAS and its convolutions on oneDNN, when
 *                      initBackend loaded them), wasm (its own matMul and
 *                      im2col convolutions), cpu (default: all three; cpu
 *                      only runs the workloads whose first step fits
 *                      --cpu-cap-ms)
 *   --cpu-cap-ms=N     skip a cpu workload whose first step is slower (default 10000)
 *   --cpu-all          also run the conv workloads on cpu (minutes per step)
 *   --threads=N        wasm threads (default: initBackend's choice, which
 *                      is 1 on a busy machine); compare runs with 1 and 2
 *   --no-blas          do not load OpenBLAS (then wasm may use 2 threads)
 *   --no-dnnl          do not load oneDNN (convolutions as im2col + matMul)
 *   --no-torch         skip PyTorch
 *   --no-fast-layers   tfjs-layers' own Dense and Conv2D code
 *                      (useFastLayers(false): gradients of every input)
 *   --leak             also check tf.memory().numTensors after 10 and after
 *                      --leak-steps steps (default 1000) of every cheap workload
 *   --profile          also print each workload's kernels (tf.profile of one
 *                      step on the default backend: ms and calls per kernel)
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  activeBlas,
  activeDnnl,
  adam,
  type Blas,
  describeBackend,
  type Dnnl,
  initBackend,
  readInto,
  useBlas,
  useDnnl,
  useFastLayers,
} from "@course/tfjs-fast";
import {
  convDecoder28,
  convEncoder28,
  mlp,
  trainableVariables,
} from "../lib/nn.ts";
import { stopGradient, straightThrough } from "../lib/autodiff.ts";
import { randomNormal, randomUniform } from "../lib/random.ts";

/**
 * One training workload: `step()` runs one step (a promise for the
 * readback, which awaits `data()`), `dispose()` frees it.
 */
export interface Instance {
  step(): void | Promise<void>;
  dispose(): void;
}

/** A named workload, its PyTorch counterpart and how to build it. */
export interface Workload {
  name: string;
  /** What one step is, for the table. */
  what: string;
  /** Name in tasks/reference/bench_torch.py, if it has a counterpart. */
  torch?: string;
  /** FLOPs per step, for a GFLOP/s column. */
  flops?: number;
  /** Too slow for the cpu backend (minutes per step): skipped there unless --cpu-all. */
  slowOnCpu?: boolean;
  /** The ratio to PyTorch the project aims for (default 1.3). */
  target?: number;
  make(): Promise<Instance> | Instance;
}

type CustomGradientFunc = Parameters<typeof tf.customGrad>[0];

function matMulWorkload(n: number): Workload {
  return {
    name: `matMul ${n}x${n}`,
    what: `one ${n}x${n} @ ${n}x${n} product`,
    torch: `matmul${n}`,
    flops: 2 * n ** 3,
    make() {
      const a = randomNormal([n, n], { seed: 1 });
      const b = randomNormal([n, n], { seed: 2 });
      return {
        step: () => tf.matMul(a, b).dispose(),
        dispose: () => tf.dispose([a, b]),
      };
    },
  };
}

/**
 * The reference conv VQ-VAE: convEncoder28 -> nearest of K codes on the 7x7
 * grid (straight-through) -> convDecoder28, MSE + codebook + 0.25
 * commitment, one Adam (packages/tfjs-fast/optim.ts: tf.train.adam fused, same bits).
 * Mirrored exactly in bench_torch.py.
 */
function convVQVAEWorkload(batch = 64, d = 16, K = 128): Workload {
  return {
    name: `conv VQ-VAE b${batch}${K === 128 ? "" : ` K${K}`}`,
    what: `train step, 28x28, 4x4/2 convs 32-64, 7x7 grid, d=${d}, K=${K}`,
    torch: K === 128 ? "vqvae" : `vqvae${K}`,
    slowOnCpu: true,
    make() {
      const enc = convEncoder28({ outChannels: d, seed: 1 });
      const dec = convDecoder28({ inChannels: d, seed: 2 });
      const codebook = tf.tidy(() =>
        tf.variable(randomNormal([K, d], { seed: 3 }).mul(0.1))
      );
      const x = randomUniform([batch, 28, 28, 1], { seed: 4 });
      const opt = adam(1e-3);
      const vars = [...trainableVariables(enc, dec), codebook];
      // The lookup as a one-hot matMul inside customGrad: argMin has no
      // gradient, the codebook gets onehot^T @ dy.
      const lookup = tf.customGrad(
        ((h: tf.Tensor, cb: tf.Tensor, save: (t: tf.Tensor[]) => void) => {
          const oneHot = tf.tidy(() => {
            const scores = tf.matMul(h, cb, false, true).mul(-2)
              .add(cb.square().sum(1));
            return tf.oneHot(tf.argMin(scores, 1), K).toFloat();
          });
          save([oneHot]);
          return {
            value: tf.matMul(oneHot, cb),
            gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
              tf.zerosLike(h),
              tf.matMul(saved[0], dy, true, false),
            ],
          };
        }) as unknown as CustomGradientFunc,
      );
      return {
        step() {
          tf.tidy(() => {
            opt.minimize(
              () => {
                const h = enc.apply(x) as tf.Tensor4D;
                const flat = h.reshape([-1, d]);
                const q = lookup(flat, codebook) as tf.Tensor2D;
                const xr = dec.apply(
                  straightThrough(flat, q).reshape(h.shape),
                ) as tf.Tensor;
                const rec = tf.losses.meanSquaredError(x, xr);
                const cb = tf.mean(tf.squaredDifference(q, stopGradient(flat)));
                const commit = tf.mean(
                  tf.squaredDifference(flat, stopGradient(q)),
                );
                return rec.add(cb).add(commit.mul(0.25)) as tf.Scalar;
              },
              false,
              vars,
            );
          });
        },
        dispose() {
          enc.dispose();
          dec.dispose();
          tf.dispose([codebook, x]);
          opt.dispose();
        },
      };
    },
  };
}

/**
 * The reference MLP GAN on flat 28x28 images: G 64-256-256-784 (leaky ReLU,
 * sigmoid), D 784-256-256-1; one D step (real + fake) and one G step
 * (non-saturating), Adam(2e-4, 0.5). Mirrored in bench_torch.py.
 */
function mlpGANWorkload(
  batch = 128,
  z = 64,
  hidden = 256,
  optimizer: "adam()" | "tf.train.adam" = "adam()",
): Workload {
  const plain = optimizer === "tf.train.adam";
  return {
    name: `MLP GAN b${batch}${plain ? " tf.train.adam" : ""}`,
    what: `D + G step, ${z}-${hidden}-${hidden}-784, ${optimizer}`,
    torch: "gan",
    make() {
      const G = mlp([z, hidden, hidden, 784], {
        activation: "leakyRelu",
        outputActivation: "sigmoid",
        seed: 1,
        name: "g",
      });
      const D = mlp([784, hidden, hidden, 1], {
        activation: "leakyRelu",
        seed: 2,
        name: "d",
      });
      const real = randomUniform([batch, 784], { seed: 3 });
      const noise = randomNormal([batch, z], { seed: 4 });
      // Plain tfjs code: what a student writes without the course's adam().
      const makeOptimizer = plain
        ? () => tf.train.adam(2e-4, 0.5)
        : () => adam(2e-4, 0.5);
      const optD = makeOptimizer();
      const optG = makeOptimizer();
      const vD = trainableVariables(D);
      const vG = trainableVariables(G);
      const ones = tf.ones([batch, 1]);
      const zeros = tf.zeros([batch, 1]);
      const bce = (labels: tf.Tensor, logits: tf.Tensor) =>
        tf.losses.sigmoidCrossEntropy(labels, logits);
      return {
        step() {
          tf.tidy(() => {
            optD.minimize(
              () => {
                const fake = G.apply(noise) as tf.Tensor;
                return bce(ones, D.apply(real) as tf.Tensor)
                  .add(bce(zeros, D.apply(fake) as tf.Tensor)) as tf.Scalar;
              },
              false,
              vD,
            );
            optG.minimize(
              () =>
                bce(
                  ones,
                  D.apply(G.apply(noise) as tf.Tensor) as tf.Tensor,
                ) as tf.Scalar,
              false,
              vG,
            );
          });
        },
        dispose() {
          G.dispose();
          D.dispose();
          tf.dispose([real, noise, ones, zeros]);
          optD.dispose();
          optG.dispose();
        },
      };
    },
  };
}

// The notebooks' own training steps, through their lib/ modules and the one
// `trainStep` (lib/model.ts), as the notebooks run them. Imported lazily: a
// module still being written must not stop the other rows.

function vqvaeModuleWorkload(batch = 64): Workload {
  return {
    name: `lib/vqvae VQVAE b${batch}`,
    what: "trainStep(VQVAE) (K=64, d=16, Adam per group)",
    torch: "vqvae_lib",
    slowOnCpu: true,
    async make() {
      const { VQVAE } = await import("../lib/vqvae.ts");
      const { trainStep } = await import("../lib/model.ts");
      const model = new VQVAE({ seed: 0 });
      const x = randomUniform([batch, 28, 28, 1], { seed: 4 }) as tf.Tensor4D;
      model.initCodebook(x);
      const optimizer = { networks: adam(2e-3), codebook: adam(2e-3) };
      return {
        step: () => void tf.tidy(() => trainStep(model, optimizer, x)),
        dispose() {
          model.dispose();
          x.dispose();
          Object.values(optimizer).forEach((o) => o.dispose());
        },
      };
    },
  };
}

function dvaeModuleWorkload(batch = 128): Workload {
  return {
    name: `lib/dvae DVAE b${batch}`,
    what: "trainStep(DVAE), 30x10 Gumbel-softmax (tau 1), Adam",
    torch: "dvae",
    async make() {
      const { DVAE } = await import("../lib/dvae.ts");
      const { trainStep } = await import("../lib/model.ts");
      const model = new DVAE({ seed: 0 });
      const x = randomUniform([batch, 28, 28, 1], { seed: 4 });
      const optimizer = adam(1e-3);
      let seed = 0;
      return {
        step: () =>
          void tf.tidy(() =>
            trainStep(model, optimizer, { images: x, tau: 1, seed: seed++ })
          ),
        dispose() {
          model.dispose();
          x.dispose();
          optimizer.dispose();
        },
      };
    },
  };
}

function ganModuleWorkload(batch = 128): Workload {
  return {
    name: `lib/gan GAN b${batch}`,
    what: "trainStep of D, then of G (non-saturating), MLP 64-256-256-784",
    torch: "gan_lib",
    async make() {
      const { GAN, mlpDiscriminator, mlpGenerator } = await import(
        "../lib/gan.ts"
      );
      const { trainStep } = await import("../lib/model.ts");
      const { batchSampler } = await import("../lib/data.ts");
      const data = randomUniform([1024, 784], { seed: 3 });
      const gan = new GAN({
        generator: mlpGenerator({
          noiseDim: 64,
          outputDim: 784,
          hidden: [256, 256],
          outputActivation: "sigmoid",
          seed: 1,
        }),
        discriminator: mlpDiscriminator({
          inputDim: 784,
          hidden: [256, 256],
          seed: 2,
        }),
        data,
        noiseDim: 64,
        seed: 0,
      });
      const dObjective = gan.discriminatorObjective();
      const gObjective = gan.generatorObjective("nonSaturating");
      const [dOptimizer, gOptimizer] = [adam(2e-4, 0.5), adam(2e-4, 0.5)];
      const sampler = batchSampler(data, batch, { seed: 0 });
      return {
        step() {
          tf.tidy(() => trainStep(dObjective, dOptimizer, sampler.next()));
          tf.tidy(() => trainStep(gObjective, gOptimizer, sampler.next()));
        },
        dispose() {
          gan.dispose();
          data.dispose();
          dOptimizer.dispose();
          gOptimizer.dispose();
        },
      };
    },
  };
}

function odeModuleWorkload(batch = 20, segLen = 10): Workload {
  return {
    name: `lib/ode spiral b${batch}`,
    what: `neural ODE 2-50-2 tanh, RK4 over ${segLen} times`,
    torch: "ode",
    // Small tensors: per-kernel bookkeeping, where tfjs cannot match PyTorch.
    target: 2.0,
    async make() {
      const { neuralVectorField, odeint } = await import("../lib/ode.ts");
      const net = mlp([2, 50, 2], { activation: "tanh", seed: 0 });
      const field = neuralVectorField(net, { features: (y) => tf.pow(y, 3) });
      const times = Array.from({ length: segLen }, (_, i) => i * 0.025);
      const target = randomNormal([segLen, batch, 2], { seed: 5 });
      const y0 = tf.tidy(() => tf.gather(target, 0));
      const opt = adam(1e-2);
      return {
        step() {
          tf.tidy(() => {
            opt.minimize(
              () =>
                tf.mean(
                  tf.abs(
                    tf.sub(
                      odeint(field, y0, times, { method: "rk4" }),
                      target,
                    ),
                  ),
                ) as tf.Scalar,
            );
          });
        },
        dispose() {
          net.dispose();
          tf.dispose([target, y0]);
          opt.dispose();
        },
      };
    },
  };
}

/**
 * Reading a result back: `await c.data()` of a 1024x1024 float32 tensor
 * (4 MB). PyTorch's counterpart copies the same 4 MB out of a tensor
 * (`c.numpy().copy()`): what a new JavaScript array costs at memory speed.
 */
function readbackWorkload(n = 1024): Workload {
  return {
    name: `readback ${(4 * n * n / 2 ** 20).toFixed(0)} MB`,
    what: `await data() of a ${n}x${n} float32 matMul result`,
    torch: `readback${n}`,
    make() {
      const c = tf.tidy(() =>
        tf.matMul(
          randomNormal([n, n], { seed: 1 }),
          randomNormal([n, n], { seed: 2 }),
        )
      );
      return {
        async step() {
          await c.data();
        },
        dispose: () => c.dispose(),
      };
    },
  };
}

/**
 * The same readback into a buffer the caller keeps and reuses
 * (`readInto(c, out)`, the package's export): one copy out of the wasm
 * heap, no new ArrayBuffer per read. PyTorch's row is the same copy out
 * of a tensor as above.
 */
function readIntoWorkload(n = 1024): Workload {
  return {
    name: `readback ${(4 * n * n / 2 ** 20).toFixed(0)} MB, readInto`,
    what: `readInto(c, out) of a ${n}x${n} float32 result, out reused`,
    torch: `readback${n}`,
    make() {
      const c = tf.tidy(() =>
        tf.matMul(
          randomNormal([n, n], { seed: 1 }),
          randomNormal([n, n], { seed: 2 }),
        )
      );
      const out = new Float32Array(n * n);
      return {
        step: () => void readInto(c, out),
        dispose: () => c.dispose(),
      };
    },
  };
}

/** A convolution layer's geometry for the conv-gradient rows. */
interface ConvGeometry {
  kernel: number;
  stride: number;
  pad: "same" | "valid";
  inChannels: number;
  outChannels: number;
  /** Input height and width (square). */
  size: number;
  batch: number;
  /** conv2dTranspose (the decoder's upsampling) instead of conv2d. */
  transposed?: boolean;
}

/** The name bench_torch.py parses: convgrad_k4_s2_same_c32_64_h14_b64. */
function convGeometryKey(g: ConvGeometry): string {
  return `${
    g.transposed ? "convtgrad" : "convgrad"
  }_k${g.kernel}_s${g.stride}_${g.pad}_c${g.inChannels}_${g.outChannels}_h${g.size}_b${g.batch}`;
}

/**
 * One convolution layer's forward pass and both gradients (input and
 * filter) under a random upstream gradient: Conv2D + Conv2DBackpropInput
 * + Conv2DBackpropFilter (for a transposed convolution:
 * Conv2DBackpropInput + Conv2D + Conv2DBackpropFilter).
 */
function convGradWorkload(g: ConvGeometry): Workload {
  const t = g.transposed ? "T" : "";
  const out = g.transposed
    ? g.size * g.stride
    : g.pad === "same"
    ? Math.ceil(g.size / g.stride)
    : Math.ceil((g.size - g.kernel + 1) / g.stride);
  const flops = 3 * 2 * g.batch * g.kernel ** 2 * g.inChannels *
    g.outChannels * (g.transposed ? g.size ** 2 : out ** 2);
  return {
    name:
      `conv${t} ${g.kernel}x${g.kernel}/${g.stride} ${g.pad} ${g.inChannels}->${g.outChannels} ${g.size}x${g.size} b${g.batch}`,
    what: `conv2d${
      g.transposed ? "Transpose" : ""
    } forward + input and filter gradients`,
    torch: convGeometryKey(g),
    flops,
    slowOnCpu: true,
    make() {
      const x = randomNormal([g.batch, g.size, g.size, g.inChannels], {
        seed: 1,
      }) as tf.Tensor4D;
      // conv2dTranspose's filter is [h, w, out, in].
      const w = tf.tidy(() =>
        randomNormal(
          g.transposed
            ? [g.kernel, g.kernel, g.outChannels, g.inChannels]
            : [g.kernel, g.kernel, g.inChannels, g.outChannels],
          { seed: 2 },
        ).mul(0.1)
      ) as tf.Tensor4D;
      const layer = (a: tf.Tensor4D, b: tf.Tensor4D) =>
        g.transposed
          ? tf.conv2dTranspose(
            a,
            b,
            [g.batch, out, out, g.outChannels],
            g.stride,
            g.pad,
          )
          : tf.conv2d(a, b, g.stride, g.pad);
      const upstream = tf.tidy(() =>
        randomNormal(layer(x, w).shape, { seed: 3 })
      );
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(layer(a as tf.Tensor4D, b as tf.Tensor4D), upstream))
      );
      return {
        step: () => tf.dispose(grads([x, w])),
        dispose: () => tf.dispose([x, w, upstream]),
      };
    },
  };
}

/** The conv-gradient table: the course's layers and common others. */
const CONV_GEOMETRIES: ConvGeometry[] = [
  // The VQ-VAE's encoder (28 -> 14 -> 7) and decoder (7 -> 14 -> 28).
  {
    kernel: 4,
    stride: 2,
    pad: "same",
    inChannels: 1,
    outChannels: 32,
    size: 28,
    batch: 64,
  },
  {
    kernel: 4,
    stride: 2,
    pad: "same",
    inChannels: 32,
    outChannels: 64,
    size: 14,
    batch: 64,
  },
  {
    kernel: 1,
    stride: 1,
    pad: "same",
    inChannels: 64,
    outChannels: 16,
    size: 7,
    batch: 64,
  },
  {
    kernel: 3,
    stride: 1,
    pad: "same",
    inChannels: 16,
    outChannels: 64,
    size: 7,
    batch: 64,
  },
  {
    kernel: 4,
    stride: 2,
    pad: "same",
    inChannels: 64,
    outChannels: 32,
    size: 7,
    batch: 64,
    transposed: true,
  },
  {
    kernel: 4,
    stride: 2,
    pad: "same",
    inChannels: 32,
    outChannels: 1,
    size: 14,
    batch: 64,
    transposed: true,
  },
  // Other common layers.
  {
    kernel: 3,
    stride: 1,
    pad: "same",
    inChannels: 64,
    outChannels: 64,
    size: 14,
    batch: 32,
  },
  {
    kernel: 5,
    stride: 1,
    pad: "same",
    inChannels: 32,
    outChannels: 32,
    size: 14,
    batch: 32,
  },
  {
    kernel: 3,
    stride: 2,
    pad: "valid",
    inChannels: 32,
    outChannels: 64,
    size: 15,
    batch: 32,
  },
  {
    kernel: 2,
    stride: 2,
    pad: "valid",
    inChannels: 64,
    outChannels: 128,
    size: 8,
    batch: 32,
  },
  {
    kernel: 3,
    stride: 1,
    pad: "same",
    inChannels: 256,
    outChannels: 256,
    size: 4,
    batch: 32,
  },
];

export const WORKLOADS: Workload[] = [
  matMulWorkload(1024),
  readbackWorkload(1024),
  readIntoWorkload(1024),
  convVQVAEWorkload(),
  convVQVAEWorkload(64, 16, 256),
  mlpGANWorkload(),
  mlpGANWorkload(128, 64, 256, "tf.train.adam"),
  vqvaeModuleWorkload(),
  dvaeModuleWorkload(),
  ganModuleWorkload(),
  odeModuleWorkload(),
  ...CONV_GEOMETRIES.map(convGradWorkload),
];

// ---------------------------------------------------------------------------

/** The flags above; any other argument is an error. */
const FLAGS = [
  "quick",
  "rounds",
  "filter",
  "backends",
  "cpu-cap-ms",
  "cpu-all",
  "threads",
  "no-blas",
  "no-dnnl",
  "no-torch",
  "no-fast-layers",
  "leak",
  "leak-steps",
  "profile",
];

/** Throws for an argument that is not one of FLAGS (a typo is not ignored). */
function checkFlags(args: readonly string[]): void {
  for (const a of args) {
    const name = a.startsWith("--") ? a.slice(2).split("=")[0] : null;
    if (name === null || !FLAGS.includes(name)) {
      throw new Error(
        `bench: unknown argument ${JSON.stringify(a)}; the flags are ${
          FLAGS.map((f) => `--${f}`).join(", ")
        }`,
      );
    }
  }
}

function flag(name: string): string | undefined {
  const hit = Deno.args.find((a) =>
    a === `--${name}` || a.startsWith(`--${name}=`)
  );
  if (hit === undefined) return undefined;
  return hit.includes("=") ? hit.slice(hit.indexOf("=") + 1) : "";
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function loadAverage(): string {
  try {
    return Deno.loadavg().map((v) => v.toFixed(2)).join(" ");
  } catch {
    return "?";
  }
}

/** Runs the PyTorch counterparts once (one round); null when torch is missing. */
async function torchRound(
  names: string[],
  budgetMs: number,
): Promise<
  { info: Record<string, unknown>; ms: Record<string, number> } | null
> {
  const script = new URL("./reference/bench_torch.py", import.meta.url)
    .pathname;
  try {
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [
        script,
        "--json",
        `--only=${names.join(",")}`,
        `--budget-ms=${budgetMs}`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      const err = new TextDecoder().decode(out.stderr).trim().split("\n").at(
        -1,
      );
      console.log(`PyTorch: skipped (${err})`);
      return null;
    }
    const parsed = JSON.parse(new TextDecoder().decode(out.stdout));
    return { info: parsed.info, ms: parsed.ms };
  } catch (e) {
    console.log(`PyTorch: skipped (${(e as Error).message})`);
    return null;
  }
}

interface Entry {
  workload: Workload;
  backend: string;
  instance: Instance | null;
  samples: number[];
  skipped?: string;
}

/** Times `instance.step` for about `budgetMs` (at least one step); ms/step. */
async function timeSteps(
  instance: Instance,
  estimate: number,
  budgetMs: number,
): Promise<number> {
  const reps = Math.max(
    1,
    Math.min(50, Math.round(budgetMs / Math.max(estimate, 1e-3))),
  );
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await instance.step();
  // Steps read back nothing; one tiny read makes sure queued work finished.
  tf.tidy(() => tf.scalar(0).dataSync());
  return (performance.now() - t0) / reps;
}

async function leakCheck(
  entries: Entry[],
  steps: number,
): Promise<
  {
    workload: string;
    backend: string;
    steps: number;
    after10: number;
    after: number;
  }[]
> {
  const out = [];
  for (const e of entries) {
    if (!e.instance || e.samples.length === 0) continue;
    const ms = median(e.samples);
    // Cap the check at ~10 s per entry; report the steps actually run.
    const n = Math.max(20, Math.min(steps, Math.floor(10000 / ms)));
    await selectBackend(e.backend);
    for (let i = 0; i < 10; i++) await e.instance.step();
    const after10 = tf.memory().numTensors;
    for (let i = 10; i < n; i++) await e.instance.step();
    const after = tf.memory().numTensors;
    out.push({
      workload: e.workload.name,
      backend: e.backend,
      steps: n,
      after10,
      after,
    });
    console.log(
      `leak check ${e.workload.name} on ${e.backend}: ${after10} tensors after 10 steps, ${after} after ${n}${
        after === after10 ? "" : "  <-- LEAK"
      }`,
    );
  }
  return out;
}

/** The OpenBLAS initBackend loaded, if any ("wasm+openblas" uses it). */
let loadedBlas: Blas | null = null;

/** The oneDNN initBackend loaded, if any ("wasm+openblas" uses it). */
let loadedDnnl: Dnnl | null = null;

/** Makes `name` the active backend: wasm+openblas, wasm or cpu. */
async function selectBackend(name: string): Promise<boolean> {
  if (name === "wasm+openblas") {
    if (!loadedBlas || !(await tf.setBackend("wasm"))) return false;
    useBlas(loadedBlas);
    useDnnl(loadedDnnl);
    return true;
  }
  useBlas(null);
  useDnnl(null);
  return await tf.setBackend(name);
}

function describe(name: string): string {
  const line = describeBackend();
  if (name !== "wasm" || !loadedBlas) return line;
  return line.replace(/ \+ matMul on .*$/, ", its own matMul and convolutions");
}

async function main() {
  checkFlags(Deno.args);
  const quick = flag("quick") !== undefined;
  const rounds = Number(flag("rounds") ?? (quick ? 2 : 3));
  const budgetMs = quick ? 300 : 1000;
  const filter = new RegExp(flag("filter") ?? ".", "i");
  const backends = (flag("backends") ?? "wasm+openblas,wasm,cpu").split(",")
    .filter(Boolean);
  const cpuCapMs = Number(flag("cpu-cap-ms") ?? 10000);
  const cpuAll = flag("cpu-all") !== undefined;
  const useTorch = flag("no-torch") === undefined;
  const workloads = WORKLOADS.filter((w) => filter.test(w.name));

  const threadsFlag = flag("threads");
  const wasmName = await initBackend({
    ...(threadsFlag ? { threads: Number(threadsFlag) } : {}),
    blas: flag("no-blas") === undefined,
    dnnl: flag("no-dnnl") === undefined,
  });
  if (flag("no-fast-layers") !== undefined) useFastLayers(false);
  loadedBlas = activeBlas();
  loadedDnnl = activeDnnl();
  const home = loadedBlas ? "wasm+openblas" : wasmName;
  const descriptions: Record<string, string> = {};
  const entries: Entry[] = [];
  console.log(`load average at start: ${loadAverage()}`);
  for (const backend of backends) {
    if (!(await selectBackend(backend))) {
      console.log(`backend ${backend}: not available, skipped`);
      continue;
    }
    descriptions[backend] = describe(backend);
    for (const workload of workloads) {
      const entry: Entry = { workload, backend, instance: null, samples: [] };
      entries.push(entry);
      if (backend === "cpu" && workload.slowOnCpu && !cpuAll) {
        entry.skipped = "minutes per step on cpu (--cpu-all runs it)";
        continue;
      }
      try {
        entry.instance = await workload.make();
        const t0 = performance.now();
        await entry.instance.step(); // first step: compiles, allocates, inits
        const first = performance.now() - t0;
        if (backend === "cpu" && first > cpuCapMs) {
          entry.skipped = `first step ${Math.round(first)} ms > --cpu-cap-ms`;
          entry.instance.dispose();
          entry.instance = null;
          continue;
        }
        await entry.instance.step();
      } catch (e) {
        entry.skipped = (e as Error).message.split("\n")[0].slice(0, 100);
        entry.instance?.dispose();
        entry.instance = null;
      }
    }
  }
  await selectBackend(home);

  const torchNames = [
    ...new Set(workloads.map((w) => w.torch).filter((t): t is string => !!t)),
  ];
  const torchSamples: Record<string, number[]> = {};
  let torchInfo: Record<string, unknown> | null = null;
  let torchOk = useTorch && torchNames.length > 0;
  for (let r = 0; r < rounds; r++) {
    for (const backend of backends) {
      if (!(await selectBackend(backend))) continue;
      for (const e of entries) {
        if (e.backend !== backend || !e.instance) continue;
        const estimate = e.samples.length ? median(e.samples) : 50;
        e.samples.push(await timeSteps(e.instance, estimate, budgetMs));
      }
    }
    if (torchOk) {
      const res = await torchRound(torchNames, budgetMs);
      if (!res) torchOk = false;
      else {
        torchInfo = res.info;
        for (const [k, v] of Object.entries(res.ms)) {
          (torchSamples[k] ??= []).push(v);
        }
      }
    }
    console.log(`round ${r + 1}/${rounds} done (load ${loadAverage()})`);
  }
  await selectBackend(home);

  const profiles: Record<string, { kernels: number; top: string[] }> = {};
  if (flag("profile") !== undefined) {
    for (const e of entries) {
      if (e.backend !== home || !e.instance) continue;
      const instance = e.instance;
      const profile = await tf.profile(async () => {
        await instance.step();
      });
      const byKernel = new Map<string, { ms: number; calls: number }>();
      for (const k of profile.kernels) {
        const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
        entry.ms += k.kernelTimeMs as number;
        entry.calls++;
        byKernel.set(k.name, entry);
      }
      const top = [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 8)
        .map(([name, { ms, calls }]) => `${name} ${ms.toFixed(2)} ms/${calls}`);
      profiles[e.workload.name] = { kernels: profile.kernels.length, top };
      console.log(
        `profile ${e.workload.name}: ${profile.kernels.length} kernels; ${
          top.join(", ")
        }`,
      );
    }
  }

  let leaks: Awaited<ReturnType<typeof leakCheck>> = [];
  if (flag("leak") !== undefined) {
    leaks = await leakCheck(entries, Number(flag("leak-steps") ?? 1000));
    await selectBackend(home);
  }

  // The table.
  const rows = entries.map((e) => {
    const ms = e.samples.length ? median(e.samples) : null;
    const torchMs = e.workload.torch && torchSamples[e.workload.torch]
      ? median(torchSamples[e.workload.torch])
      : null;
    const best = e.samples.length ? Math.min(...e.samples) : null;
    const torchBest = e.workload.torch && torchSamples[e.workload.torch]
      ? Math.min(...torchSamples[e.workload.torch])
      : null;
    const ratio = ms && torchMs ? ms / torchMs : null;
    const target = e.workload.target ?? 1.3;
    return {
      workload: e.workload.name,
      what: e.workload.what,
      backend: e.backend,
      msPerStep: ms,
      bestMs: best,
      samples: e.samples,
      gflops: ms && e.workload.flops ? e.workload.flops / ms / 1e6 : null,
      torchMs,
      torchBestMs: torchBest,
      torchSamples: e.workload.torch ? torchSamples[e.workload.torch] : null,
      ratioToTorch: ratio,
      bestRatioToTorch: best && torchBest ? best / torchBest : null,
      // The target applies to the default path (wasm + OpenBLAS when loaded).
      target: e.backend === home ? target : null,
      meetsTarget: e.backend === home && ratio !== null
        ? ratio <= target
        : null,
      skipped: e.skipped ?? null,
    };
  });
  const fmt = (v: number | null, d = 1) => v === null ? "-" : v.toFixed(d);
  console.log(
    `\nbackends: ${
      Object.entries(descriptions).map(([k, v]) => `${k} = ${v}`).join("; ")
    }`,
  );
  if (torchInfo) {
    console.log(
      `PyTorch ${torchInfo.version}, ${torchInfo.threads} threads, BLAS: ${torchInfo.blas}, malloc: ${torchInfo.malloc}`,
    );
  }
  const header = [
    "workload",
    "backend",
    "ms/step",
    "best",
    "GFLOP/s",
    "PyTorch ms",
    "best",
    "x PyTorch",
    "best x",
    "target",
  ];
  const times = (v: number | null) => v === null ? "-" : `${v.toFixed(2)}x`;
  const lines = rows.map((r) => [
    r.workload,
    r.backend,
    r.skipped ? `skipped: ${r.skipped}` : fmt(r.msPerStep, 2),
    fmt(r.bestMs, 2),
    fmt(r.gflops),
    fmt(r.torchMs, 2),
    fmt(r.torchBestMs, 2),
    times(r.ratioToTorch),
    times(r.bestRatioToTorch),
    r.target === null || r.meetsTarget === null
      ? ""
      : `${r.meetsTarget ? "ok" : "OVER"} (${r.target}x)`,
  ]);
  const widths = header.map((h, i) =>
    Math.max(h.length, ...lines.map((l) => l[i].length))
  );
  const show = (l: string[]) =>
    "| " + l.map((c, i) => c.padEnd(widths[i])).join(" | ") + " |";
  console.log(show(header));
  console.log("| " + widths.map((w) => "-".repeat(w)).join(" | ") + " |");
  for (const l of lines) console.log(show(l));
  console.log(
    `(median and best of ${rounds} interleaved rounds, PyTorch's likewise; target: the median ratio on ${home}; load average at end: ${loadAverage()})`,
  );

  for (const e of entries) e.instance?.dispose();
  const report = {
    date: new Date().toISOString(),
    command: `deno task bench ${Deno.args.join(" ")}`.trim(),
    tfjs: tf.version.tfjs,
    backends: descriptions,
    cpus: navigator.hardwareConcurrency,
    loadAverageAtEnd: loadAverage(),
    rounds,
    torch: torchInfo,
    rows,
    leaks,
    profiles,
  };
  await Deno.mkdir(new URL("../build/", import.meta.url), { recursive: true });
  const path = new URL("../build/bench.json", import.meta.url);
  await Deno.writeTextFile(path, JSON.stringify(report, null, 2) + "\n");
  console.log(`wrote ${path.pathname}`);
}

if (import.meta.main) {
  await main();
  // Worker threads of a threaded wasm build would keep the process alive.
  Deno.exit(0);
}
