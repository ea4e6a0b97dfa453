/**
 * One seeded source of randomness for the whole package. Every shuffle,
 * initialisation and sample takes a `seed` (a number or an `Rng`), so the
 * same seed gives the same numbers on every backend: random tensors are
 * generated here in JavaScript, not by the backend's own generator.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkInteger,
  checkNumber,
  checkOptions,
  checkSize,
  MAX_VALUES,
} from "./validate.ts";

/**
 * A small, fast, seedable generator (sfc32, seeded through splitmix32 so
 * nearby seeds give unrelated streams).
 */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  #spareNormal: number | null = null;

  /** Creates a generator; `seed` must be a finite number (integers recommended). */
  constructor(seed: number) {
    checkNumber("Rng", "seed", seed);
    let s = (Math.floor(seed) ^ 0x9e3779b9) >>> 0;
    // Spread one seed over four words with splitmix32.
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = next();
    this.#b = next();
    this.#c = next();
    this.#d = next();
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** The next raw 32-bit unsigned integer. */
  nextUint32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** A uniform number in [0, 1) with 32 random bits. */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** A uniform number in the open interval (0, 1): safe to take logs of. */
  uniformOpen(): number {
    return (this.nextUint32() + 0.5) / 4294967296;
  }

  /** A standard normal sample (Box-Muller, caching the second value). */
  normal(): number {
    if (this.#spareNormal !== null) {
      const v = this.#spareNormal;
      this.#spareNormal = null;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniformOpen()));
    const theta = 2 * Math.PI * this.uniform();
    this.#spareNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    checkInteger("Rng.int", "n", n, { min: 1 });
    return Math.floor(this.uniform() * n);
  }

  /** Shuffles `array` in place (Fisher-Yates) and returns it. */
  shuffle<T>(array: T[]): T[] {
    if (!Array.isArray(array)) {
      throw new ArgumentError(
        "Rng.shuffle",
        `array must be an array (it is shuffled in place), got ${
          String(array)
        }`,
      );
    }
    for (let i = array.length - 1; i > 0; i--) {
      const j = Math.floor(this.uniform() * (i + 1));
      [array[i], array[j]] = [array[j], array[i]];
    }
    return array;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    checkInteger("Rng.permutation", "n", n, { min: 0, max: MAX_VALUES });
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.uniform() * (i + 1));
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  /**
   * Draws an index from unnormalised non-negative `weights` (e.g. k-means++
   * seeding, sampling a categorical distribution).
   */
  categorical(weights: ArrayLike<number>): number {
    let total = 0;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i];
      if (!(w >= 0) || !Number.isFinite(w)) {
        throw new ArgumentError(
          "Rng.categorical",
          `weights must be finite and >= 0, but weights[${i}] is ${w}`,
        );
      }
      total += w;
    }
    if (!(total > 0)) {
      throw new ArgumentError(
        "Rng.categorical",
        "weights must not all be zero",
      );
    }
    let u = this.uniform() * total;
    for (let i = 0; i < weights.length; i++) {
      u -= weights[i];
      if (u < 0) return i;
    }
    // Rounding can leave u a hair above zero: return the last positive weight.
    for (let i = weights.length - 1; i >= 0; i--) if (weights[i] > 0) return i;
    return weights.length - 1;
  }

  /** A fresh generator whose stream is determined by this one (for independent sub-streams). */
  fork(): Rng {
    return new Rng(this.nextUint32());
  }
}

/** Normalises a `seed` option: an existing `Rng` is used as is, a number seeds a new one, undefined uses 0. */
export function rngFrom(seed: number | Rng | undefined = 0): Rng {
  if (seed instanceof Rng) return seed;
  return new Rng(checkNumber("rngFrom", "seed", seed));
}

// The stream that draws without a seed advance: seeded, so a run is
// reproducible from a known start, but never the same draw twice.
let stream = new Rng(0);

/**
 * Where randomness without a seed comes from: the generator of `seed` as
 * `rngFrom` makes it, or, when `seed` is undefined, the one shared stream of
 * the package (which every unseeded call advances, so two unseeded calls
 * give different numbers). Use it for a `seed` option that is optional;
 * `where` names the caller in the error for a seed that is neither a
 * number nor an `Rng`.
 *
 * ```ts
 * const a = randomNormal([3]); // from the shared stream
 * const b = randomNormal([3]); // the next numbers of that stream: not a
 * ```
 */
export function rngOrStream(seed?: Seed, where = "rngOrStream"): Rng {
  if (seed === undefined) return stream;
  if (seed instanceof Rng) return seed;
  return new Rng(checkNumber(where, "options.seed", seed));
}

/**
 * Restarts the shared stream of unseeded draws at `seed` (default 0, where
 * it starts when the package loads), so a run of unseeded calls repeats.
 */
export function resetRandomStream(seed = 0): void {
  checkNumber("resetRandomStream", "seed", seed);
  stream = new Rng(seed);
}

/** The `seed` option every random function accepts. */
export type Seed = number | Rng;

function fill(shape: number[], sample: () => number): Float32Array {
  const size = tf.util.sizeFromShape(shape);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) values[i] = sample();
  return values;
}

function checkShape(where: string, shape: unknown): number[] {
  if (!Array.isArray(shape)) {
    throw new ArgumentError(
      where,
      `shape must be an array of non-negative integers, got ${String(shape)}`,
    );
  }
  for (const [i, s] of shape.entries()) {
    checkInteger(where, `shape[${i}]`, s, { min: 0 });
  }
  checkSize(where, "the shape's size", tf.util.sizeFromShape(shape));
  return shape;
}

/**
 * A float32 tensor of N(mean, std^2) samples from the seeded generator
 * (without a `seed`, from the shared stream: see `rngOrStream`).
 */
export function randomNormal(
  shape: number[],
  options: { mean?: number; std?: number; seed?: Seed } = {},
): tf.Tensor {
  const where = "randomNormal";
  const { mean = 0, std = 1, seed } = checkOptions(where, options, [
    "mean",
    "std",
    "seed",
  ]);
  checkShape(where, shape);
  checkNumber(where, "mean", mean);
  checkNumber(where, "std", std, { min: 0 });
  const rng = rngOrStream(seed, where);
  return tf.tensor(fill(shape, () => mean + std * rng.normal()), shape);
}

/**
 * A float32 tensor of U(low, high) samples from the seeded generator
 * (without a `seed`, from the shared stream: see `rngOrStream`).
 */
export function randomUniform(
  shape: number[],
  options: { low?: number; high?: number; seed?: Seed } = {},
): tf.Tensor {
  const where = "randomUniform";
  const { low = 0, high = 1, seed } = checkOptions(where, options, [
    "low",
    "high",
    "seed",
  ]);
  checkShape(where, shape);
  checkNumber(where, "low", low);
  checkNumber(where, "high", high, { min: low });
  const rng = rngOrStream(seed, where);
  return tf.tensor(
    fill(shape, () => low + (high - low) * rng.uniform()),
    shape,
  );
}

/**
 * Glorot (Xavier) uniform initial weights for a layer with the given fan-in
 * and fan-out; for convolution kernels pass the receptive-field sizes.
 * Without a `seed` the numbers come from the shared stream.
 */
export function glorotUniform(
  shape: number[],
  options: { fanIn?: number; fanOut?: number; seed?: Seed } = {},
): tf.Tensor {
  const where = "glorotUniform";
  const { fanIn, fanOut, seed } = checkOptions(where, options, [
    "fanIn",
    "fanOut",
    "seed",
  ]);
  checkShape(where, shape);
  const positive = { min: 0, minExclusive: true };
  if (fanIn !== undefined) checkNumber(where, "fanIn", fanIn, positive);
  if (fanOut !== undefined) checkNumber(where, "fanOut", fanOut, positive);
  const receptive = tf.util.sizeFromShape(shape.slice(0, -2));
  const inn = fanIn ?? receptive * (shape.at(-2) ?? 1);
  const out = fanOut ?? receptive * (shape.at(-1) ?? 1);
  const limit = Math.sqrt(6 / (inn + out));
  return randomUniform(shape, { low: -limit, high: limit, seed });
}
