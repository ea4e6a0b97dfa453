/**
 * A two-level VQ-VAE (VQ-VAE-2, Razavi, van den Oord and Vinyals 2019) for
 * 28x28 images: a coarse **top** grid of codes (7x7) and a finer **bottom**
 * grid (14x14). The encoder first maps the image to 14x14 features, then
 * to 7x7 features that are quantized with the top codebook; the bottom
 * grid is quantized from the 14x14 features together with what the top
 * codes already say (the top codes upsampled), so the bottom level is free
 * to hold what the top level misses. The decoder sees both quantized grids.
 *
 * Each level is a `VectorQuantizer` (lib/vqvae.ts): nearest code,
 * straight-through gradient, codebook and commitment losses, dead-code
 * restarts. The rate of an image is at most
 * 49 log2 K_top + 196 log2 K_bottom bits.
 *
 * ```ts
 * const model = new TwoLevelVQVAE({ topCodes: 64, bottomCodes: 16, seed: 0 });
 * model.initCodebooks(firstBatch);
 * const optimizer = { networks: adam(2e-3), codebooks: adam(2e-3) };
 * tf.tidy(() => trainStep(model, optimizer, sampler.next()));
 * const { top, bottom } = model.codes(images); // int32 [n, 7, 7], [n, 14, 14]
 * const mixed = model.decodeCodes(top, otherBottom);
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkFinite,
  checkInteger,
  checkNumber,
  checkOptions,
  checkTensor,
} from "./validate.ts";
import type { LossTerms, Trainable } from "./model.ts";
import { trainableVariables } from "./nn.ts";
import { codeUsage, VectorQuantizer } from "./vqvae.ts";

/** Options of `TwoLevelVQVAE`. */
export interface TwoLevelVQVAEOptions {
  /** Codes K of the top (7x7) level (default 64). */
  topCodes?: number;
  /** Codes K of the bottom (14x14) level (default 16). */
  bottomCodes?: number;
  /** Code width d of both levels (default 16). */
  dim?: number;
  /** Channels of the hidden feature maps (default 32). */
  channels?: number;
  /** Commitment weight beta of both levels (default 0.25). */
  beta?: number;
  /** Restart codes idle for this many steps (default 100; 0 never). */
  deadAfter?: number;
  /** Seed of the initial weights, the codebooks and the restarts (default 0). */
  seed?: number;
}

/** The networks of a two-level VQ-VAE. */
interface TwoLevelNetworks {
  /** Image [n, 28, 28, 1] -> bottom features [n, 14, 14, C]. */
  encoderBottom: tf.LayersModel;
  /** Bottom features -> top vectors [n, 7, 7, d] (quantized with the top codebook). */
  encoderTop: tf.LayersModel;
  /** Quantized top grid -> [n, 14, 14, C]: what the top says, at the bottom's resolution. */
  topToBottom: tf.LayersModel;
  /** [bottom features, topToBottom] concatenated -> bottom vectors [n, 14, 14, d]. */
  bottomProjection: tf.LayersModel;
  /** Quantized top grid -> [n, 14, 14, d] for the decoder. */
  topUpsample: tf.LayersModel;
  /** [bottom codes, upsampled top codes] [n, 14, 14, 2d] -> image [n, 28, 28, 1]. */
  decoder: tf.LayersModel;
}

function buildNetworks(
  { channels: c, dim: d, seed }: {
    channels: number;
    dim: number;
    seed: number;
  },
): TwoLevelNetworks {
  let i = 0;
  const init = () =>
    tf.initializers.glorotUniform({ seed: seed * 1000 + 900 + i++ });
  const conv = (
    filters: number,
    kernelSize: number,
    strides: number,
    activation: "relu" | "linear",
    inputShape?: number[],
  ) =>
    tf.layers.conv2d({
      filters,
      kernelSize,
      strides,
      padding: "same",
      activation,
      kernelInitializer: init(),
      ...(inputShape ? { inputShape } : {}),
    });
  const up = (
    filters: number,
    activation: "relu" | "linear",
    inputShape?: number[],
  ) =>
    tf.layers.conv2dTranspose({
      filters,
      kernelSize: 4,
      strides: 2,
      padding: "same",
      activation,
      kernelInitializer: init(),
      ...(inputShape ? { inputShape } : {}),
    });
  const seq = (name: string, layers: tf.layers.Layer[]) =>
    tf.sequential({ name, layers });
  return {
    encoderBottom: seq("vq2_encoder_bottom", [
      conv(c, 4, 2, "relu", [28, 28, 1]),
      conv(c, 3, 1, "relu"),
    ]),
    encoderTop: seq("vq2_encoder_top", [
      conv(c, 4, 2, "relu", [14, 14, c]),
      conv(d, 1, 1, "linear"),
    ]),
    topToBottom: seq("vq2_top_to_bottom", [up(c, "relu", [7, 7, d])]),
    bottomProjection: seq("vq2_bottom_projection", [
      conv(d, 1, 1, "linear", [14, 14, 2 * c]),
    ]),
    topUpsample: seq("vq2_top_upsample", [up(d, "relu", [7, 7, d])]),
    decoder: seq("vq2_decoder", [
      conv(c, 3, 1, "relu", [14, 14, 2 * d]),
      up(1, "linear"),
    ]),
  };
}

/**
 * The two-level loss: encode to 14x14, quantize the 7x7 top, quantize the
 * bottom given the top, decode from both. Reconstruction + both levels'
 * codebook and commitment losses.
 */
function twoLevelLoss(model: TwoLevelVQVAE, x: tf.Tensor4D): LossTerms {
  const n = model.networks;
  const features = n.encoderBottom.apply(x) as tf.Tensor4D;
  const hTop = n.encoderTop.apply(features) as tf.Tensor4D;
  const top = model.top.forward(hTop, { skipFiniteCheck: true });
  const fromTop = n.topToBottom.apply(top.quantized) as tf.Tensor4D;
  const hBottom = n.bottomProjection.apply(
    tf.concat([features, fromTop], -1),
  ) as tf.Tensor4D;
  const bottom = model.bottom.forward(hBottom, { skipFiniteCheck: true });
  const xhat = decodeQuantized(model, top.quantized, bottom.quantized);
  const recon = xhat.sub(x).square().mean() as tf.Scalar;
  return {
    total: recon.add(top.loss).add(bottom.loss) as tf.Scalar,
    terms: { recon, top: top.loss, bottom: bottom.loss },
    saved: {
      hTop,
      topCodes: top.indices,
      hBottom,
      bottomCodes: bottom.indices,
    },
  };
}

/** The decoder's input: the bottom codes next to the top codes upsampled to 14x14. */
function decodeQuantized(
  model: TwoLevelVQVAE,
  top: tf.Tensor,
  bottom: tf.Tensor,
): tf.Tensor4D {
  const n = model.networks;
  const topUp = n.topUpsample.apply(top) as tf.Tensor4D;
  return n.decoder.apply(tf.concat([bottom, topUp], -1)) as tf.Tensor4D;
}

/** What `TwoLevelVQVAE.evaluate` returns: plain numbers. */
export interface TwoLevelEvaluation {
  /** Mean squared pixel error of the reconstructions. */
  mse: number;
  /** Perplexity of the top codes over the set. */
  topPerplexity: number;
  /** Perplexity of the bottom codes over the set. */
  bottomPerplexity: number;
  /** Top codes used at least once. */
  topUsed: number;
  /** Bottom codes used at least once. */
  bottomUsed: number;
}

/**
 * A two-level VQ-VAE for 28x28x1 images (see the module): a 7x7 top grid
 * and a 14x14 bottom grid of codes. Implements `Trainable`: train it with
 * `trainStep` and `{ networks, codebooks }` optimizers. Owns its variables:
 * `dispose()`.
 */
export class TwoLevelVQVAE implements Trainable<tf.Tensor4D> {
  /** The resolved options. */
  readonly config: Required<TwoLevelVQVAEOptions>;
  /** The networks (see `TwoLevelNetworks`). */
  readonly networks: TwoLevelNetworks;
  /** The top (7x7) quantizer. */
  readonly top: VectorQuantizer;
  /** The bottom (14x14) quantizer. */
  readonly bottom: VectorQuantizer;

  /** Builds an untrained model; every option is checked before anything is built. */
  constructor(options: TwoLevelVQVAEOptions = {}) {
    const where = "TwoLevelVQVAE";
    const o = checkOptions(where, options, [
      "topCodes",
      "bottomCodes",
      "dim",
      "channels",
      "beta",
      "deadAfter",
      "seed",
    ]);
    const int = (name: keyof TwoLevelVQVAEOptions, fallback: number, min = 1) =>
      checkInteger(where, name, o[name] ?? fallback, { min });
    this.config = {
      topCodes: int("topCodes", 64),
      bottomCodes: int("bottomCodes", 16),
      dim: int("dim", 16),
      channels: int("channels", 32),
      beta: checkNumber(where, "beta", o.beta ?? 0.25, { min: 0 }),
      deadAfter: int("deadAfter", 100, 0),
      seed: checkNumber(where, "seed", o.seed ?? 0),
    };
    const { topCodes, bottomCodes, dim, beta, deadAfter, seed } = this.config;
    this.top = new VectorQuantizer({
      numCodes: topCodes,
      dim,
      beta,
      deadAfter,
      seed: seed * 7919 + 1,
    });
    this.bottom = new VectorQuantizer({
      numCodes: bottomCodes,
      dim,
      beta,
      deadAfter,
      seed: seed * 7919 + 2,
    });
    this.networks = buildNetworks(this.config);
  }

  /** The variables: `networks` (every network) and `codebooks` (both codebooks). */
  trainableVariables(): { networks: tf.Variable[]; codebooks: tf.Variable[] } {
    return {
      networks: trainableVariables(...Object.values(this.networks)),
      codebooks: [this.top.codebook, this.bottom.codebook],
    };
  }

  #check(where: string, images: unknown): tf.Tensor4D {
    const x = checkTensor(where, "images", images, {
      shape: [null, 28, 28, 1],
      dtype: "float32",
    }) as tf.Tensor4D;
    if (x.shape[0] === 0) {
      throw new ArgumentError(where, "images is an empty batch (0 images)");
    }
    return x;
  }

  /**
   * The loss of a batch (`twoLevelLoss`): reconstruction + the top and the
   * bottom quantizer losses. New tensors (`trainStep` frees them).
   */
  loss(images: tf.Tensor4D): LossTerms {
    const where = "TwoLevelVQVAE.loss";
    this.#check(where, images);
    checkFinite(where, "images", images);
    if (!this.top.initialized || !this.bottom.initialized) {
      throw new ArgumentError(
        where,
        "the codebooks are not initialised: call model.initCodebooks(firstBatch) before training",
      );
    }
    return twoLevelLoss(this, images);
  }

  /** Dead-code restarts of both levels; returns each level's batch perplexity. */
  afterStep(
    _images: tf.Tensor4D,
    saved: Record<string, tf.Tensor>,
  ): Record<string, number> {
    const top = codeUsage(saved.topCodes, this.top.numCodes);
    const bottom = codeUsage(saved.bottomCodes, this.bottom.numCodes);
    this.top.restartDeadCodes(top.counts, saved.hTop);
    this.bottom.restartDeadCodes(bottom.counts, saved.hBottom);
    return {
      topPerplexity: top.perplexity,
      bottomPerplexity: bottom.perplexity,
    };
  }

  /**
   * k-means initialisation of both codebooks from one batch: the top from
   * its encoder vectors, then the bottom from its vectors given the
   * initialised top codes. Call once before training.
   */
  initCodebooks(images: tf.Tensor4D): void {
    const where = "TwoLevelVQVAE.initCodebooks";
    this.#check(where, images);
    const need = Math.max(this.top.numCodes / 49, this.bottom.numCodes / 196);
    if (images.shape[0] < need) {
      throw new ArgumentError(
        where,
        `k-means of the codebooks needs at least ${
          Math.ceil(need)
        } images, got ${images.shape[0]}`,
      );
    }
    checkFinite(where, "images", images);
    const n = this.networks;
    const [features, hTop] = tf.tidy(() => {
      const f = n.encoderBottom.apply(images) as tf.Tensor4D;
      return [f, n.encoderTop.apply(f) as tf.Tensor4D];
    });
    try {
      this.top.initFromBatch(hTop);
      const hBottom = tf.tidy(() => {
        const q = this.top.forward(hTop, { skipFiniteCheck: true }).quantized;
        const fromTop = n.topToBottom.apply(q) as tf.Tensor;
        return n.bottomProjection.apply(
          tf.concat([features, fromTop], -1),
        ) as tf.Tensor;
      });
      try {
        this.bottom.initFromBatch(hBottom);
      } finally {
        hBottom.dispose();
      }
    } finally {
      tf.dispose([features, hTop]);
    }
  }

  /** The code grids of images: top int32 [n, 7, 7], bottom int32 [n, 14, 14] (caller disposes). */
  codes(images: tf.Tensor4D): { top: tf.Tensor3D; bottom: tf.Tensor3D } {
    this.#check("TwoLevelVQVAE.codes", images);
    const [top, bottom] = tf.tidy(() => {
      const saved = twoLevelLoss(this, images).saved!;
      return [saved.topCodes as tf.Tensor3D, saved.bottomCodes as tf.Tensor3D];
    });
    return { top, bottom };
  }

  /**
   * Images decoded from a top grid int32 [n, 7, 7] and a bottom grid int32
   * [n, 14, 14], which may come from different images (caller disposes).
   */
  decodeCodes(top: tf.Tensor, bottom: tf.Tensor): tf.Tensor4D {
    const where = "TwoLevelVQVAE.decodeCodes";
    checkCodes(where, "top", top, [7, 7], this.top.numCodes);
    checkCodes(where, "bottom", bottom, [14, 14], this.bottom.numCodes);
    if (top.shape[0] !== bottom.shape[0]) {
      throw new ArgumentError(
        where,
        `top has ${top.shape[0]} grids, bottom ${bottom.shape[0]}`,
      );
    }
    return tf.tidy(() => {
      const { dim } = this.config;
      const e = (q: VectorQuantizer, codes: tf.Tensor, size: number) =>
        tf.gather(q.codebook, codes.reshape([-1])).reshape([
          codes.shape[0],
          size,
          size,
          dim,
        ]);
      return decodeQuantized(
        this,
        e(this.top, top, 7),
        e(this.bottom, bottom, 14),
      );
    });
  }

  /** Reconstructions of images (caller disposes). */
  reconstruct(images: tf.Tensor4D): tf.Tensor4D {
    const { top, bottom } = this.codes(images);
    try {
      return this.decodeCodes(top, bottom);
    } finally {
      tf.dispose([top, bottom]);
    }
  }

  /** Reconstruction MSE and both levels' code usage over a set, in batches of 500. Plain numbers. */
  evaluate(images: tf.Tensor4D): TwoLevelEvaluation {
    this.#check("TwoLevelVQVAE.evaluate", images);
    const n = images.shape[0];
    let squared = 0;
    const tops: number[] = [];
    const bottoms: number[] = [];
    for (let s = 0; s < n; s += 500) {
      const size = Math.min(500, n - s);
      tf.tidy(() => {
        const x = images.slice([s, 0, 0, 0], [size, 28, 28, 1]);
        const { top, bottom } = this.codes(x);
        squared +=
          this.decodeCodes(top, bottom).sub(x).square().sum().dataSync()[0];
        tops.push(...top.dataSync());
        bottoms.push(...bottom.dataSync());
      });
    }
    const t = codeUsage(tops, this.top.numCodes);
    const b = codeUsage(bottoms, this.bottom.numCodes);
    return {
      mse: squared / (n * 784),
      topPerplexity: t.perplexity,
      bottomPerplexity: b.perplexity,
      topUsed: t.used,
      bottomUsed: b.used,
    };
  }

  /** Frees every network and both quantizers. */
  dispose(): void {
    Object.values(this.networks).forEach((m) => m.dispose());
    this.top.dispose();
    this.bottom.dispose();
  }
}

function checkCodes(
  where: string,
  name: string,
  codes: unknown,
  grid: [number, number],
  numCodes: number,
): void {
  checkTensor(where, name, codes, { shape: [null, ...grid], dtype: "int32" });
  const v = (codes as tf.Tensor).dataSync();
  for (let i = 0; i < v.length; i++) {
    if (v[i] < 0 || v[i] >= numCodes) {
      throw new ArgumentError(
        where,
        `${name} codes must be in [0, ${numCodes - 1}], got ${v[i]}`,
      );
    }
  }
}
