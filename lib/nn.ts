/**
 * Small network building blocks on tf.layers, and saving/loading trained
 * weights to files so a notebook reuses a model instead of retraining it.
 *
 * Saving never overwrites: an existing file is an error unless
 * `{ overwrite: true }` is passed; a save is all or nothing.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { dense, type DenseActivation, denseGrad } from "@course/tfjs-fast";
import {
  ArgumentError,
  checkBoolean,
  checkChoice,
  checkInteger,
  checkNumber,
  checkOptions,
  checkTensor,
} from "./validate.ts";

/** Activations accepted by `mlp`. */
export type Activation =
  | "relu"
  | "leakyRelu"
  | "tanh"
  | "sigmoid"
  | "elu"
  | "linear";

/** Every `Activation`, for argument checks. */
export const ACTIVATIONS: readonly Activation[] = [
  "relu",
  "leakyRelu",
  "tanh",
  "sigmoid",
  "elu",
  "linear",
];

/** `channels` of the conv builders: two positive integers. */
function checkChannels(where: string, channels: unknown): [number, number] {
  if (!Array.isArray(channels) || channels.length !== 2) {
    throw new ArgumentError(
      where,
      `channels must be two layer widths like [32, 64], got ${
        JSON.stringify(channels)
      }`,
    );
  }
  channels.forEach((c, i) =>
    checkInteger(where, `channels[${i}]`, c, { min: 1 })
  );
  return channels as [number, number];
}

/** Options for `mlp`. */
export interface MLPOptions {
  /** Hidden activation (default "relu"). */
  activation?: Activation;
  /** Output activation (default "linear": logits or raw values). */
  outputActivation?: Activation;
  /** Seed for the Glorot-uniform initial weights (default 0). */
  seed?: number;
  /** Layer-name prefix (names must be unique within a model). */
  name?: string;
}

function activationLayer(name: Activation, id: string): tf.layers.Layer | null {
  if (name === "linear") return null;
  if (name === "leakyRelu") {
    return tf.layers.leakyReLU({ alpha: 0.2, name: id });
  }
  return tf.layers.activation({ activation: name, name: id });
}

/**
 * A multilayer perceptron `sizes[0] -> sizes[1] -> ... -> sizes.at(-1)`
 * with seeded Glorot-uniform weights and zero biases.
 */
export function mlp(sizes: number[], options: MLPOptions = {}): tf.Sequential {
  if (!Array.isArray(sizes) || sizes.length < 2) {
    throw new ArgumentError(
      "mlp",
      `sizes must list at least an input and an output size, got ${
        JSON.stringify(sizes)
      }`,
    );
  }
  sizes.forEach((s, i) => checkInteger("mlp", `sizes[${i}]`, s, { min: 1 }));
  const {
    activation = "relu",
    outputActivation = "linear",
    seed = 0,
    name = "mlp",
  } = checkOptions("mlp", options, [
    "activation",
    "outputActivation",
    "seed",
    "name",
  ]);
  checkChoice("mlp", "activation", activation, ACTIVATIONS);
  checkChoice("mlp", "outputActivation", outputActivation, ACTIVATIONS);
  checkNumber("mlp", "seed", seed);
  const model = tf.sequential({ name });
  for (let i = 1; i < sizes.length; i++) {
    const last = i === sizes.length - 1;
    model.add(tf.layers.dense({
      units: sizes[i],
      inputShape: i === 1 ? [sizes[0]] : undefined,
      kernelInitializer: tf.initializers.glorotUniform({
        seed: seed * 1000 + i,
      }),
      biasInitializer: "zeros",
      name: `${name}_dense${i}`,
    }));
    const act = activationLayer(
      last ? outputActivation : activation,
      `${name}_act${i}`,
    );
    if (act) model.add(act);
  }
  return model;
}

/** The number of trainable scalars of a model. */
export function countParameters(model: tf.LayersModel): number {
  return model.trainableWeights.reduce(
    (n, w) => n + tf.util.sizeFromShape(w.shape as number[]),
    0,
  );
}

/** The trainable variables of one or more models (for an optimizer's `varList`). */
export function trainableVariables(...models: tf.LayersModel[]): tf.Variable[] {
  models.forEach((m, i) => {
    if (!(m instanceof tf.LayersModel)) {
      throw new ArgumentError(
        "trainableVariables",
        `models[${i}] must be a tf.LayersModel, got ${String(m)}`,
      );
    }
  });
  return models.flatMap((m) =>
    m.trainableWeights.map((w) => w.read() as tf.Variable)
  );
}

/** The activations `fastMlpApply` differentiates by hand. */
type FastActivation = DenseActivation;

/** One Dense layer of a plain MLP and the activation after it. */
interface FastLayer {
  dense: tf.layers.Layer;
  activation: FastActivation;
  /** LeakyReLU's slope for negative inputs. */
  alpha: number;
}

/** A Sequential of Dense (own activation linear, with bias) + activation layers, or null. */
function plainMlpLayers(model: tf.LayersModel): FastLayer[] | null {
  if (!(model instanceof tf.Sequential)) return null;
  const out: FastLayer[] = [];
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    const config = layer.getConfig() as { activation?: string; alpha?: number };
    if (cls === "Dense") {
      const [kernel, bias] = layer.weights;
      if (
        config.activation !== "linear" || layer.weights.length !== 2 ||
        kernel.dtype !== "float32" || kernel.shape.length !== 2 ||
        bias.dtype !== "float32" || bias.shape.length !== 1 ||
        bias.shape[0] !== kernel.shape[1]
      ) return null;
      out.push({ dense: layer, activation: "linear", alpha: 0 });
      continue;
    }
    // An activation layer: only directly after a Dense layer.
    const last = out.at(-1);
    if (!last || last.activation !== "linear") return null;
    if (cls === "LeakyReLU") {
      const alpha = config.alpha ?? 0.3;
      // alpha >= 0: the output's sign is the input's, so the output tells the slope.
      if (!(alpha >= 0)) return null;
      last.activation = "leakyRelu";
      last.alpha = alpha;
    } else if (
      cls === "Activation" &&
      ["linear", "tanh", "relu", "sigmoid", "elu"].includes(
        config.activation ?? "",
      )
    ) {
      last.activation = config.activation as FastActivation;
    } else {
      return null;
    }
  }
  return out.length > 0 ? out : null;
}

/**
 * A faster `model.apply(x)` for a plain dense MLP such as `mlp()` builds,
 * or null for any other model (then call `model.apply`).
 *
 * Why: tfjs spends ~5 µs of bookkeeping per kernel, and under a gradient
 * tape every op also clones the tensors its gradient needs, and tfjs-core's
 * matMul reshapes its inputs to 3-D and back. On small layers (e.g. a
 * neural ODE's vector field, evaluated dozens of times per training step)
 * that bookkeeping is most of the time. The returned function evaluates the
 * whole network as ONE taped op (`tf.customGrad`) whose inputs are x and
 * every kernel and bias, so the tape holds one node per evaluation. Its
 * forward runs each layer as act(h W + b) on the 2-D tensors (no
 * reshapes): the values of tf.layers' forward pass (tested to 1e-6). Its
 * gradient is written out: per layer, backwards, d_pre = d_out act'(.),
 * dW = h^T d_pre, db = sum over the batch of d_pre, dx = d_pre W^T. Both
 * are the package's `dense` and `denseGrad` (@course/tfjs-fast), one
 * kernel per layer each on wasm, tfjs's ops elsewhere, the same bits.
 * Gradients reach the model's own variables, so optimizers train the
 * model as usual. Measured on the neural-ODE spiral training step
 * (tasks/bench.ts, `lib/ode spiral b20`): ~2.3k kernels and ~8 ms per step
 * with `model.apply`, ~1.4k kernels and ~5 ms with this (and tfjs's
 * separate kernels per layer); see docs/performance.md for the fused
 * layers.
 *
 * Accepted: a `tf.Sequential` of built Dense layers (linear own activation,
 * with bias, float32), each optionally followed by one Activation layer
 * ("linear", "tanh", "relu", "sigmoid", "elu") or a LeakyReLU layer with
 * alpha >= 0. That covers every `mlp()` model.
 *
 * The returned function calls `model.apply` instead when x is not a
 * float32 [batch, features] tensor, when the model's layers changed since,
 * or inside a nested gradient (tf.grad of tf.grad): its gradient is
 * first-order only, and there `model.apply` keeps tfjs's own behaviour (an
 * error: tf.layers' fused Dense has no second derivative either) instead of
 * a silently incomplete second derivative.
 */
export function fastMlpApply(
  model: tf.LayersModel,
): ((x: tf.Tensor) => tf.Tensor) | null {
  const layers = plainMlpLayers(model);
  if (!layers) return null;
  const n = layers.length;
  const layerCount = model.layers.length;
  const inputSize = layers[0].dense.weights[0].shape[0];
  // args: x, W1, b1, ..., Wn, bn, then customGrad's save function.
  const op = tf.customGrad(
    ((...args: unknown[]) => {
      const save = args.pop() as (tensors: tf.Tensor[]) => void;
      const inputs = args as tf.Tensor[];
      // hs[l]: the input of layer l; hs[n]: the output.
      const hs: tf.Tensor[] = [inputs[0]];
      for (let l = 0; l < n; l++) {
        const { activation, alpha } = layers[l];
        const [w, b] = [inputs[1 + 2 * l], inputs[2 + 2 * l]];
        hs.push(dense(hs[l], w, b, activation, alpha)); // act(h W + b)
      }
      // Backwards needs every layer's input (for dW), and the output when
      // the last layer has an activation (for act'). The outputs of the
      // other layers are the next layers' inputs.
      save(layers[n - 1].activation === "linear" ? hs.slice(0, n) : hs);
      return {
        value: hs[n],
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const grads: tf.Tensor[] = new Array(1 + 2 * n);
          let d = dy;
          for (let l = n - 1; l >= 0; l--) {
            const { activation, alpha } = layers[l];
            const [x, y] = [saved[l], saved[l + 1] ?? null];
            const g = denseGrad(d, x, inputs[1 + 2 * l], y, activation, alpha);
            [grads[1 + 2 * l], grads[2 + 2 * l], d] = [g.dw, g.db, g.dx];
          }
          grads[0] = d;
          return grads;
        },
      };
    }) as Parameters<typeof tf.customGrad>[0],
  );
  return (x: tf.Tensor) => {
    if (
      x.rank !== 2 || x.dtype !== "float32" || x.shape[1] !== inputSize ||
      model.layers.length !== layerCount ||
      tf.engine().state.gradientDepth > 1
    ) {
      return model.apply(x) as tf.Tensor;
    }
    const weights: tf.Tensor[] = [x];
    for (const layer of layers) {
      weights.push(
        layer.dense.weights[0].read(),
        layer.dense.weights[1].read(),
      );
    }
    return op(...weights);
  };
}

/** A random suffix for temporary and lock files (not security-sensitive). */
function uniqueSuffix(): string {
  return `${Date.now().toString(36)}-${
    Math.random().toString(36).slice(2, 10)
  }`;
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i > 0 ? path.slice(0, i) : i === 0 ? "/" : ".";
}

function baseOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** What is at `path` without following a symbolic link there: null when nothing. */
async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Refuses a destination that is a symbolic link (even a dangling one: a
 * write would land wherever it points) or a folder, and, unless
 * `overwrite`, one that exists.
 */
async function checkDestinations(
  where: string,
  paths: string[],
  overwrite: boolean,
): Promise<void> {
  for (const p of paths) {
    const info = await lstatOrNull(p);
    if (info === null) continue;
    if (info.isSymlink) {
      throw new ArgumentError(
        where,
        `${p} is a symbolic link; refusing to write through it (nothing was written)`,
      );
    }
    if (info.isDirectory) {
      throw new ArgumentError(
        where,
        `${p} is a folder (nothing was written)`,
      );
    }
    if (!overwrite) {
      throw new ArgumentError(
        where,
        `${p} already exists; pass { overwrite: true } to replace it (nothing was written)`,
      );
    }
  }
}

const LOCK_STALE_MS = 30_000;

/**
 * Runs `commit` while holding `<lock>`, a file made with exclusive create,
 * so that two saves to the same path never interleave their renames. A
 * lock older than 30 s is left over from a crashed save and is removed.
 */
async function withSaveLock<T>(
  where: string,
  lock: string,
  commit: () => Promise<T>,
): Promise<T> {
  for (let attempt = 0;; attempt++) {
    try {
      (await Deno.open(lock, { write: true, createNew: true })).close();
      break;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      const info = await lstatOrNull(lock);
      const age = Date.now() - (info?.mtime?.getTime() ?? Date.now());
      if (age > LOCK_STALE_MS) {
        await Deno.remove(lock).catch(() => {});
      } else if (attempt >= 1000) {
        throw new ArgumentError(
          where,
          `another save holds ${lock}; nothing was written`,
        );
      } else {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }
  try {
    return await commit();
  } finally {
    await Deno.remove(lock).catch(() => {});
  }
}

/**
 * Writes several files all or nothing: each goes to a temporary name in its
 * own folder first; then, under a lock, every temporary file takes its
 * place, by exclusive hard link when not overwriting (a file that appeared
 * meanwhile is never replaced) or by rename. The last file is the one a
 * reader opens first (the manifest): it appears only when all the others
 * are in place. On any failure the files of this save are removed.
 */
async function writeAllOrNothing(
  where: string,
  files: { path: string; data: Uint8Array }[],
  overwrite: boolean,
): Promise<void> {
  const paths = files.map((f) => f.path);
  await checkDestinations(where, paths, overwrite);
  const suffix = uniqueSuffix();
  const temps = files.map((f) =>
    `${dirOf(f.path)}/.${baseOf(f.path)}.${suffix}.tmp`
  );
  const placed: string[] = [];
  try {
    for (const dir of new Set(paths.map(dirOf))) {
      await Deno.mkdir(dir, { recursive: true });
    }
    for (let i = 0; i < files.length; i++) {
      await Deno.writeFile(temps[i], files[i].data, { createNew: true });
    }
    const lock = `${dirOf(paths[0])}/.${baseOf(paths[0])}.lock`;
    await withSaveLock(where, lock, async () => {
      await checkDestinations(where, paths, overwrite);
      for (let i = 0; i < files.length; i++) {
        if (overwrite) {
          await Deno.rename(temps[i], paths[i]);
        } else {
          try {
            await Deno.link(temps[i], paths[i]);
          } catch (e) {
            if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
            throw new ArgumentError(
              where,
              `${
                paths[i]
              } appeared while saving (another save?); nothing was written`,
            );
          }
        }
        placed.push(paths[i]);
      }
    });
  } catch (e) {
    // Replaced files cannot be restored, but none of this save is left half-written.
    if (!overwrite) {
      for (const p of placed) await Deno.remove(p).catch(() => {});
    }
    throw e;
  } finally {
    for (const t of temps) await Deno.remove(t).catch(() => {});
  }
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as BufferSource);
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

/** Options of `saveTensors`. */
export interface SaveTensorsOptions {
  /** JSON-serialisable settings stored with the tensors (e.g. a model's options). */
  config?: Record<string, unknown>;
  /** Replace existing files (default false: an existing file is an error). Must be a boolean. */
  overwrite?: boolean;
  /**
   * More files of the same save, by suffix: `{ "history.json": text }` is
   * written as `<path>.history.json`, all or nothing with the tensors.
   */
  files?: Record<string, string | Uint8Array>;
}

/**
 * Saves named tensors (e.g. a codebook and a model's weights) with a JSON
 * `config` to `<path>.json` (config, shapes and a SHA-256 of the data) and
 * `<path>.bin` (the data), plus any extra `files`. All or nothing: every
 * file is written to a temporary name in its folder and then moved into
 * place, so a failed or concurrent save never leaves a mixed or partial
 * set. Refuses to replace an existing file unless `overwrite` is true, and
 * never writes through a symbolic link.
 *
 * ```ts
 * await saveTensors("build/models/k", { codebook }, { config: { k: 8 } });
 * const { tensors, config } = await loadTensors("build/models/k");
 * ```
 *
 * @throws ArgumentError for an existing destination (without overwrite), a
 *   symbolic link, or bad options; nothing is written then
 */
export async function saveTensors(
  path: string,
  tensors: Record<string, tf.Tensor>,
  options?: SaveTensorsOptions,
): Promise<void> {
  const where = "saveTensors";
  const o = checkOptions(where, options, ["config", "overwrite", "files"]);
  if (typeof path !== "string" || path === "" || path.endsWith("/")) {
    throw new ArgumentError(
      where,
      "path must be a non-empty file path (without extension)",
    );
  }
  const overwrite = checkBoolean(where, "overwrite", o.overwrite ?? false);
  const config = o.config ?? {};
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw new ArgumentError(where, "config must be a plain object");
  }
  if (tensors === null || typeof tensors !== "object") {
    throw new ArgumentError(where, "tensors must be a record of named tensors");
  }
  for (const [name, t] of Object.entries(tensors)) {
    checkTensor(where, `tensors.${name}`, t);
  }
  const files = o.files ?? {};
  if (files === null || typeof files !== "object" || Array.isArray(files)) {
    throw new ArgumentError(
      where,
      'files must be an object like { "history.json": text }',
    );
  }
  const extra = Object.entries(files);
  for (const [suffix, content] of extra) {
    if (
      !/^[\w-]+(\.[\w-]+)*$/.test(suffix) || suffix === "json" ||
      suffix === "bin"
    ) {
      throw new ArgumentError(
        where,
        `files: ${
          JSON.stringify(suffix)
        } must be a file suffix like "history.json" (not "json" or "bin")`,
      );
    }
    if (typeof content !== "string" && !(content instanceof Uint8Array)) {
      throw new ArgumentError(
        where,
        `files[${JSON.stringify(suffix)}] must be a string or bytes`,
      );
    }
  }
  const { data, specs } = await tf.io.encodeWeights(tensors);
  const bin = new Uint8Array(data as ArrayBuffer);
  const manifest = JSON.stringify(
    { format: "course-tensors/1", config, specs, sha256: await sha256Hex(bin) },
    null,
    2,
  ) + "\n";
  const text = new TextEncoder();
  await writeAllOrNothing(where, [
    { path: `${path}.bin`, data: bin },
    ...extra.map(([suffix, content]) => ({
      path: `${path}.${suffix}`,
      data: typeof content === "string" ? text.encode(content) : content,
    })),
    // The manifest last: a reader that finds it finds everything else.
    { path: `${path}.json`, data: text.encode(manifest) },
  ], overwrite);
}

/**
 * Loads what `saveTensors` wrote: the named tensors (caller disposes) and the
 * config. Checks the data's size and checksum against the manifest.
 *
 * @throws ArgumentError for a missing, truncated or mismatched pair of files
 */
export async function loadTensors(
  path: string,
): Promise<
  { tensors: Record<string, tf.Tensor>; config: Record<string, unknown> }
> {
  const where = "loadTensors";
  if (typeof path !== "string" || path === "") {
    throw new ArgumentError(
      where,
      "path must be a non-empty file path (without extension)",
    );
  }
  let meta: {
    format?: string;
    config?: Record<string, unknown>;
    specs?: tf.io.WeightsManifestEntry[];
    sha256?: string;
  };
  try {
    meta = JSON.parse(await Deno.readTextFile(`${path}.json`));
  } catch (e) {
    throw new ArgumentError(
      where,
      `cannot read ${path}.json: ${(e as Error).message}`,
    );
  }
  if (meta.format !== "course-tensors/1" || !Array.isArray(meta.specs)) {
    throw new ArgumentError(
      where,
      `${path}.json is not a file written by saveTensors`,
    );
  }
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(`${path}.bin`);
  } catch (e) {
    throw new ArgumentError(
      where,
      `cannot read ${path}.bin: ${(e as Error).message}`,
    );
  }
  const expected = meta.specs.reduce(
    (n, s) =>
      n +
      tf.util.sizeFromShape(s.shape) *
        (s.dtype === "float32" || s.dtype === "int32" ? 4 : 1),
    0,
  );
  if (bytes.byteLength !== expected) {
    throw new ArgumentError(
      where,
      `${path}.bin has ${bytes.byteLength} bytes, the manifest expects ${expected} (truncated or mismatched files)`,
    );
  }
  // Files of older versions have no checksum.
  if (meta.sha256 !== undefined && meta.sha256 !== await sha256Hex(bytes)) {
    throw new ArgumentError(
      where,
      `${path}.bin does not match the checksum in ${path}.json (mismatched or corrupted files)`,
    );
  }
  const buffer = bytes.buffer.slice(
    bytes.byteOffset,
    bytes.byteOffset + bytes.byteLength,
  );
  return {
    tensors: tf.io.decodeWeights(buffer, meta.specs),
    config: meta.config ?? {},
  };
}

/** The weights of a layers model as named tensors (the model keeps ownership). */
export function modelWeights(model: tf.LayersModel): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const w of model.weights) out[w.originalName] = w.read();
  return out;
}

/**
 * Copies named tensors into a model's weights (names and shapes must match
 * exactly; the error lists what differs).
 */
export function setModelWeights(
  model: tf.LayersModel,
  tensors: Record<string, tf.Tensor>,
): void {
  const missing = model.weights.filter((w) => !(w.originalName in tensors)).map(
    (w) => w.originalName,
  );
  if (missing.length) {
    throw new ArgumentError(
      "setModelWeights",
      `no saved tensor for weights: ${missing.join(", ")}`,
    );
  }
  for (const w of model.weights) {
    const t = tensors[w.originalName];
    if (t.shape.join(",") !== w.shape.join(",")) {
      throw new ArgumentError(
        "setModelWeights",
        `weight ${w.originalName} has shape [${w.shape}], the saved tensor [${t.shape}]`,
      );
    }
    w.write(t);
  }
}

/** Options for `convEncoder28`. */
export interface ConvEncoderOptions {
  /** Channels of the two stride-2 convolutions (default [32, 64]). */
  channels?: [number, number];
  /** Channels of the output grid (the latent width d, default 16). */
  outChannels?: number;
  /** Seed for the initial weights (default 0). */
  seed?: number;
  /** Layer-name prefix (default "encoder"). */
  name?: string;
}

/**
 * A small convolutional encoder for 28x28x1 images: two 4x4 stride-2
 * convolutions (28 -> 14 -> 7) with ReLU and a 1x1 convolution to
 * `outChannels`, giving a 7x7 grid of d-dimensional vectors (the h in
 * R^{l x d} of the lecture, l = 49). Input [n, 28, 28, 1], output [n, 7, 7, d].
 */
export function convEncoder28(options: ConvEncoderOptions = {}): tf.Sequential {
  const { channels = [32, 64], outChannels = 16, seed = 0, name = "encoder" } =
    checkOptions("convEncoder28", options, [
      "channels",
      "outChannels",
      "seed",
      "name",
    ]);
  checkChannels("convEncoder28", channels);
  checkNumber("convEncoder28", "seed", seed);
  checkInteger("convEncoder28", "outChannels", outChannels, { min: 1 });
  const init = (i: number) =>
    tf.initializers.glorotUniform({ seed: seed * 1000 + i });
  return tf.sequential({
    name,
    layers: [
      tf.layers.conv2d({
        inputShape: [28, 28, 1],
        filters: channels[0],
        kernelSize: 4,
        strides: 2,
        padding: "same",
        activation: "relu",
        kernelInitializer: init(1),
        name: `${name}_conv1`,
      }),
      tf.layers.conv2d({
        filters: channels[1],
        kernelSize: 4,
        strides: 2,
        padding: "same",
        activation: "relu",
        kernelInitializer: init(2),
        name: `${name}_conv2`,
      }),
      tf.layers.conv2d({
        filters: outChannels,
        kernelSize: 1,
        padding: "same",
        kernelInitializer: init(3),
        name: `${name}_proj`,
      }),
    ],
  });
}

/**
 * The two 4x4 stride-2 transposed convolutions that take a 7x7 feature map
 * to a 28x28 image (7 -> 14 -> 28): the last layers of `convDecoder28` and
 * of the GAN's `convGenerator28`. The first has `hiddenChannels` channels
 * and ReLU, the second one channel and `outputActivation`; their kernels
 * are initialised with `init(2)` and `init(3)`, and they are named
 * `${name}_up1` and `${name}_up2`.
 */
export function upsample7to28Layers(
  { hiddenChannels, outputActivation, init, name }: {
    hiddenChannels: number;
    outputActivation: "linear" | "sigmoid";
    init: (layer: number) => ReturnType<typeof tf.initializers.glorotUniform>;
    name: string;
  },
): tf.layers.Layer[] {
  checkInteger("upsample7to28Layers", "hiddenChannels", hiddenChannels, {
    min: 1,
  });
  return [
    tf.layers.conv2dTranspose({
      filters: hiddenChannels,
      kernelSize: 4,
      strides: 2,
      padding: "same",
      activation: "relu",
      kernelInitializer: init(2),
      name: `${name}_up1`,
    }),
    tf.layers.conv2dTranspose({
      filters: 1,
      kernelSize: 4,
      strides: 2,
      padding: "same",
      activation: outputActivation,
      kernelInitializer: init(3),
      name: `${name}_up2`,
    }),
  ];
}

/** Options for `convDecoder28`. */
export interface ConvDecoderOptions {
  /** Channels of the 7x7 input grid (default 16). */
  inChannels?: number;
  /** Channels of the hidden layers (default [64, 32]). */
  channels?: [number, number];
  /** Output activation: "linear" for logits or raw values (default), "sigmoid" for [0, 1]. */
  outputActivation?: "linear" | "sigmoid";
  /** Seed for the initial weights (default 0). */
  seed?: number;
  /** Layer-name prefix (default "decoder"). */
  name?: string;
}

/**
 * The mirror of `convEncoder28`: a 3x3 convolution on the 7x7 grid, then two
 * 4x4 stride-2 transposed convolutions (7 -> 14 -> 28). Input
 * [n, 7, 7, inChannels], output [n, 28, 28, 1].
 */
export function convDecoder28(options: ConvDecoderOptions = {}): tf.Sequential {
  const {
    inChannels = 16,
    channels = [64, 32],
    outputActivation = "linear",
    seed = 0,
    name = "decoder",
  } = checkOptions("convDecoder28", options, [
    "inChannels",
    "channels",
    "outputActivation",
    "seed",
    "name",
  ]);
  checkInteger("convDecoder28", "inChannels", inChannels, { min: 1 });
  checkChannels("convDecoder28", channels);
  checkChoice("convDecoder28", "outputActivation", outputActivation, [
    "linear",
    "sigmoid",
  ]);
  checkNumber("convDecoder28", "seed", seed);
  const init = (i: number) =>
    tf.initializers.glorotUniform({ seed: seed * 1000 + 100 + i });
  return tf.sequential({
    name,
    layers: [
      tf.layers.conv2d({
        inputShape: [7, 7, inChannels],
        filters: channels[0],
        kernelSize: 3,
        padding: "same",
        activation: "relu",
        kernelInitializer: init(1),
        name: `${name}_conv`,
      }),
      ...upsample7to28Layers({
        hiddenChannels: channels[1],
        outputActivation,
        init,
        name,
      }),
    ],
  });
}
