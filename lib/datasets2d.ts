/**
 * Seeded synthetic 2D datasets for watching generative models learn: blobs,
 * the ring of Gaussians used to show GAN mode collapse, two moons and
 * spirals. Every generator returns float32 points [n, 2] and int32 labels [n]
 * saying which component each point was drawn from, so a notebook can colour
 * points or count which modes a generator covers. The same `seed` always
 * gives the same data; numbers are drawn in JavaScript by `Rng`, not by the
 * tfjs backend, so the data do not depend on the backend either.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkInteger,
  checkNumber,
  checkOptions,
  MAX_VALUES,
} from "./validate.ts";
import { Rng, rngFrom } from "./random.ts";

/** A labelled 2D point set; the caller disposes both tensors. */
export interface Dataset2D {
  /** float32 [n, 2]. */
  points: tf.Tensor2D;
  /** int32 [n]: the component each point came from (see each generator). */
  labels: tf.Tensor1D;
}

function checkSeed(where: string, seed: unknown): Rng {
  if (seed instanceof Rng) return seed;
  checkNumber(where, "seed", seed);
  return rngFrom(seed as number);
}

function finish(points: Float32Array, labels: Int32Array): Dataset2D {
  return {
    points: tf.tensor2d(points, [labels.length, 2], "float32"),
    labels: tf.tensor1d(labels, "int32"),
  };
}

/**
 * Isotropic Gaussian blobs.
 *
 * Point i belongs to blob `i % k` (so blob sizes differ by at most one and
 * consecutive points cycle through the blobs); `labels` holds that blob index.
 *
 * @param n number of points (positive integer)
 * @param options.centers either the number of blobs, whose centres are then
 *   drawn uniformly from the square [-centerBox, centerBox]^2, or explicit
 *   centres as `[[x, y], ...]`. Default 3.
 * @param options.std standard deviation of each coordinate (>= 0). Default 0.5.
 * @param options.centerBox half-width of the square random centres come from. Default 5.
 * @param options.seed a number or an `Rng`. Default 0.
 * @returns points, labels, and the centres used (plain arrays, nothing to dispose)
 */
export function makeBlobs(
  n: number,
  options: {
    centers?: number | number[][];
    std?: number;
    centerBox?: number;
    seed?: number | Rng;
  } = {},
): Dataset2D & { centers: number[][] } {
  const where = "makeBlobs";
  const { centers = 3, std = 0.5, centerBox = 5, seed = 0 } = checkOptions(
    where,
    options,
    ["centers", "std", "centerBox", "seed"],
  );
  checkInteger(where, "n", n, { min: 1, max: MAX_VALUES / 2 });
  checkNumber(where, "std", std, { min: 0 });
  checkNumber(where, "centerBox", centerBox, { min: 0 });
  const rng = checkSeed(where, seed);
  let mus: number[][];
  if (typeof centers === "number") {
    checkInteger(where, "centers", centers, { min: 1 });
    mus = Array.from(
      { length: centers },
      () => [
        (2 * rng.uniform() - 1) * centerBox,
        (2 * rng.uniform() - 1) * centerBox,
      ],
    );
  } else if (Array.isArray(centers) && centers.length > 0) {
    mus = centers.map((c, i) => {
      if (!Array.isArray(c) || c.length !== 2) {
        throw new ArgumentError(
          where,
          `centers[${i}] must be a point [x, y], got ${JSON.stringify(c)}`,
        );
      }
      checkNumber(where, `centers[${i}][0]`, c[0]);
      checkNumber(where, `centers[${i}][1]`, c[1]);
      return [c[0], c[1]];
    });
  } else {
    throw new ArgumentError(
      where,
      `centers must be a positive integer or a non-empty array of [x, y] points, got ${
        JSON.stringify(centers)
      }`,
    );
  }
  const k = mus.length;
  const points = new Float32Array(2 * n);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % k;
    labels[i] = c;
    points[2 * i] = mus[c][0] + std * rng.normal();
    points[2 * i + 1] = mus[c][1] + std * rng.normal();
  }
  return { ...finish(points, labels), centers: mus };
}

/**
 * The centres of `modes` Gaussians evenly spaced on a circle of `radius`,
 * the first at angle 0 (i.e. at `[radius, 0]`), going anticlockwise.
 */
export function ringCenters(modes = 8, radius = 2): number[][] {
  checkInteger("ringCenters", "modes", modes, {
    min: 1,
    max: MAX_VALUES / 2,
  });
  checkNumber("ringCenters", "radius", radius, { min: 0, minExclusive: true });
  return Array.from({ length: modes }, (_, k) => {
    const angle = (2 * Math.PI * k) / modes;
    return [radius * Math.cos(angle), radius * Math.sin(angle)];
  });
}

/**
 * The ring of Gaussians (8 by default) used to show GAN mode collapse: an
 * equal-weight mixture of narrow isotropic Gaussians centred at
 * `ringCenters(modes, radius)`. Each point's mode is drawn uniformly at
 * random, as sampling the mixture requires; `labels` is that mode index
 * (0..modes-1, matching the order of `ringCenters`).
 *
 * @param options.n number of points. Default 1000.
 * @param options.modes number of Gaussians. Default 8.
 * @param options.radius circle radius. Default 2.
 * @param options.std standard deviation of each Gaussian (>= 0). Default 0.02.
 * @param options.seed a number or an `Rng`. Default 0.
 */
export function makeRing(
  options: {
    n?: number;
    modes?: number;
    radius?: number;
    std?: number;
    seed?: number | Rng;
  } = {},
): Dataset2D {
  const where = "makeRing";
  if (options === null || typeof options !== "object") {
    // makeRing(500) would otherwise silently give the default 1000 points.
    throw new ArgumentError(
      where,
      `expected an options object like { n: 500 }, got ${String(options)}`,
    );
  }
  const { n = 1000, modes = 8, radius = 2, std = 0.02, seed = 0 } =
    checkOptions(where, options, ["n", "modes", "radius", "std", "seed"]);
  checkInteger(where, "n", n, { min: 1, max: MAX_VALUES / 2 });
  checkInteger(where, "modes", modes, { min: 1 });
  checkNumber(where, "radius", radius, { min: 0, minExclusive: true });
  checkNumber(where, "std", std, { min: 0 });
  const rng = checkSeed(where, seed);
  const mus = ringCenters(modes, radius);
  const points = new Float32Array(2 * n);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = rng.int(modes);
    labels[i] = c;
    points[2 * i] = mus[c][0] + std * rng.normal();
    points[2 * i + 1] = mus[c][1] + std * rng.normal();
  }
  return finish(points, labels);
}

/**
 * Two interleaving half-circles. The upper moon (label 0) is the unit
 * half-circle (cos t, sin t), t in [0, pi]; the lower moon (label 1) is
 * (1 - cos t, 0.5 - sin t). Positions along each moon are uniform random
 * (not an even grid), so the data are i.i.d. samples of a distribution.
 * Point i is on moon `i % 2`.
 *
 * @param n number of points (positive integer)
 * @param options.noise standard deviation of Gaussian noise added to each coordinate. Default 0.05.
 * @param options.seed a number or an `Rng`. Default 0.
 */
export function makeMoons(
  n: number,
  options: { noise?: number; seed?: number | Rng } = {},
): Dataset2D {
  const where = "makeMoons";
  const { noise = 0.05, seed = 0 } = checkOptions(where, options, [
    "noise",
    "seed",
  ]);
  checkInteger(where, "n", n, { min: 1, max: MAX_VALUES / 2 });
  checkNumber(where, "noise", noise, { min: 0 });
  const rng = checkSeed(where, seed);
  const points = new Float32Array(2 * n);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const moon = i % 2;
    const t = Math.PI * rng.uniform();
    const x = moon === 0 ? Math.cos(t) : 1 - Math.cos(t);
    const y = moon === 0 ? Math.sin(t) : 0.5 - Math.sin(t);
    labels[i] = moon;
    points[2 * i] = x + noise * rng.normal();
    points[2 * i + 1] = y + noise * rng.normal();
  }
  return finish(points, labels);
}

/**
 * Interleaved Archimedean spiral arms. Arm a (the label, 0..arms-1) is
 * r = radius * s, angle = 2 pi (turns * s + a / arms) for s uniform in
 * [0, 1]; Gaussian noise is then added to each coordinate. Point i is on
 * arm `i % arms`.
 *
 * @param n number of points (positive integer)
 * @param options.turns how many full turns each arm makes (> 0). Default 1.5.
 * @param options.noise noise standard deviation (>= 0). Default 0.02.
 * @param options.arms number of arms (positive integer). Default 2.
 * @param options.radius radius at the end of each arm (> 0). Default 1.
 * @param options.seed a number or an `Rng`. Default 0.
 */
export function makeSpiral(
  n: number,
  options: {
    turns?: number;
    noise?: number;
    arms?: number;
    radius?: number;
    seed?: number | Rng;
  } = {},
): Dataset2D {
  const where = "makeSpiral";
  const { turns = 1.5, noise = 0.02, arms = 2, radius = 1, seed = 0 } =
    checkOptions(where, options, ["turns", "noise", "arms", "radius", "seed"]);
  checkInteger(where, "n", n, { min: 1, max: MAX_VALUES / 2 });
  checkNumber(where, "turns", turns, { min: 0, minExclusive: true });
  checkNumber(where, "noise", noise, { min: 0 });
  checkInteger(where, "arms", arms, { min: 1 });
  checkNumber(where, "radius", radius, { min: 0, minExclusive: true });
  const rng = checkSeed(where, seed);
  const points = new Float32Array(2 * n);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const arm = i % arms;
    const s = rng.uniform();
    const angle = 2 * Math.PI * (turns * s + arm / arms);
    labels[i] = arm;
    points[2 * i] = radius * s * Math.cos(angle) + noise * rng.normal();
    points[2 * i + 1] = radius * s * Math.sin(angle) + noise * rng.normal();
  }
  return finish(points, labels);
}
