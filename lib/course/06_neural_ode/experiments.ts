/**
 * The experiments of notebook 06, each returning plain numbers for a chart
 * or a printed line: solutions as rows, convergence orders, dopri5's cost
 * per tolerance, trajectory windows for training, grids, gradient
 * comparisons, and the memory and time of backprop against the adjoint.
 * Built on lib/ode.ts; no tensor is left behind unless a function says so.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  type AdjointDynamics,
  ODE_METHODS,
  odeint,
  odeintAdjoint,
  type OdeintOptions,
  odeintWithStats,
  type OdeMethod,
  type VectorField,
} from "../../ode.ts";
import {
  ArgumentError,
  checkChoice,
  checkInteger,
  checkNumber,
  checkOptions,
  checkTensor,
  toMatrix,
} from "../../validate.ts";

/** An initial state given as a tensor (read, not disposed) or as numbers. */
export type InitialState = tf.Tensor | number | number[] | number[][];

function toInitial(where: string, y0: unknown): tf.Tensor {
  if (y0 instanceof tf.Tensor) return y0.clone();
  const ok = typeof y0 === "number" ||
    (Array.isArray(y0) && y0.length > 0 &&
      (y0.every((v) => typeof v === "number") ||
        y0.every((r) =>
          Array.isArray(r) && r.length > 0 &&
          r.every((v) => typeof v === "number")
        )));
  if (!ok) {
    throw new ArgumentError(
      where,
      `y0 must be a tf.Tensor, a number, a number[] or a number[][], got ${
        Array.isArray(y0) ? "an unsupported array" : String(y0)
      }`,
    );
  }
  if (typeof y0 === "number") return tf.scalar(y0);
  return Array.isArray((y0 as unknown[])[0])
    ? tf.tensor2d(y0 as number[][])
    : tf.tensor1d(y0 as number[]);
}

/**
 * `odeint` as plain numbers: row i is the state at `ts[i]`, flattened
 * (a scalar state gives rows of length 1). No tensor is left behind; a
 * tensor `y0` is only read.
 *
 * @example
 * odeintArray((t, y) => tf.neg(y), 1, [0, 1], { method: "rk4" }) // [[1], [0.3679]]
 */
export function odeintArray(
  f: VectorField,
  y0: InitialState,
  ts: number[] | ArrayLike<number>,
  options?: OdeintOptions,
): number[][] {
  const where = "odeintArray";
  return tf.tidy(() => {
    const states = odeint(f, toInitial(where, y0), ts, options);
    const flat = states.reshape([states.shape[0], -1]);
    return flat.arraySync() as number[][];
  });
}

/**
 * Solves the same problem with each method of `methods` (sharing `options`,
 * e.g. `{ step: 0.5 }`) and returns, per method, the rows of `odeintArray`.
 * Plain arrays; no tensor is left behind.
 */
export function odeintMethods<M extends OdeMethod>(
  f: VectorField,
  y0: InitialState,
  ts: number[] | ArrayLike<number>,
  methods: readonly M[],
  options: Omit<OdeintOptions, "method"> = {},
): Record<M, number[][]> {
  const where = "odeintMethods";
  checkOptions(where, options, [
    "step",
    "rtol",
    "atol",
    "tolerance",
    "maxSteps",
    "firstStep",
    "safety",
    "minFactor",
    "maxFactor",
  ]);
  if (!Array.isArray(methods) || methods.length === 0) {
    throw new ArgumentError(
      where,
      `methods must be a non-empty array of ${ODE_METHODS.join(", ")}`,
    );
  }
  methods.forEach((m, i) =>
    checkChoice(where, `methods[${i}]`, m, ODE_METHODS)
  );
  const out = {} as Record<M, number[][]>;
  for (const method of methods as readonly M[]) {
    out[method] = odeintArray(f, y0, ts, { ...options, method });
  }
  return out;
}

/**
 * Least-squares slope of log(ys) against log(xs): the order p of a method
 * whose error behaves like C h^p. Needs at least two positive points with
 * distinct xs.
 */
export function logLogSlope(
  xs: readonly number[],
  ys: readonly number[],
): number {
  const where = "logLogSlope";
  if (!Array.isArray(xs) || !Array.isArray(ys) || xs.length !== ys.length) {
    throw new ArgumentError(where, "xs and ys must be arrays of equal length");
  }
  checkInteger(where, "xs.length", xs.length, { min: 2 });
  xs.forEach((x, i) =>
    checkNumber(where, `xs[${i}]`, x, { min: 0, minExclusive: true })
  );
  ys.forEach((y, i) =>
    checkNumber(where, `ys[${i}]`, y, { min: 0, minExclusive: true })
  );
  const pts = xs.map((x, i) => [Math.log(x), Math.log(ys[i])]);
  const mx = pts.reduce((s, p) => s + p[0], 0) / pts.length;
  const my = pts.reduce((s, p) => s + p[1], 0) / pts.length;
  const sxx = pts.reduce((s, p) => s + (p[0] - mx) ** 2, 0);
  if (sxx === 0) throw new ArgumentError(where, "xs must not all be equal");
  return pts.reduce((s, p) => s + (p[0] - mx) * (p[1] - my), 0) / sxx;
}

/** One measurement of `convergenceStudy`. */
export interface ConvergenceRow {
  /** The solver. */
  method: OdeMethod;
  /** The step size. */
  h: number;
  /** Euclidean norm of (final state - exact final state). */
  error: number;
}

/**
 * Convergence order by experiment: for each method and each step size of
 * `stepRanges` (e.g. `{ euler: [0.02, 0.01], rk4: [0.4, 0.2] }`), solves
 * from `span[0]` to `span[1]`, measures the Euclidean error of the final
 * state against `exact` (the flattened exact final state) and fits the
 * log-log slope per method. Plain numbers; no tensor is left behind.
 */
export function convergenceStudy(
  f: VectorField,
  y0: InitialState,
  span: [number, number],
  exact: readonly number[],
  stepRanges: Partial<Record<OdeMethod, readonly number[]>>,
): { rows: ConvergenceRow[]; slopes: Record<string, number> } {
  const where = "convergenceStudy";
  if (!Array.isArray(exact) || exact.length === 0) {
    throw new ArgumentError(where, "exact must be a non-empty number[]");
  }
  exact.forEach((v, i) => checkNumber(where, `exact[${i}]`, v));
  checkOptions(where, stepRanges, ODE_METHODS, "stepRanges");
  const rows: ConvergenceRow[] = [];
  const slopes: Record<string, number> = {};
  for (const [m, hs] of Object.entries(stepRanges ?? {})) {
    const method = m as OdeMethod;
    if (!Array.isArray(hs) || hs.length < 2) {
      throw new ArgumentError(
        where,
        `stepRanges.${method} must hold at least two step sizes`,
      );
    }
    const errors = hs.map((h, i) => {
      checkNumber(where, `stepRanges.${method}[${i}]`, h, {
        min: 0,
        minExclusive: true,
      });
      const states = odeintArray(f, y0, span, { method, step: h });
      const last = states[states.length - 1];
      if (last.length !== exact.length) {
        throw new ArgumentError(
          where,
          `exact has ${exact.length} values but the state has ${last.length}`,
        );
      }
      const error = Math.hypot(...last.map((v, j) => v - exact[j]));
      rows.push({ method, h, error });
      return error;
    });
    slopes[method] = logLogSlope(hs, errors);
  }
  return { rows, slopes };
}

/** Largest |a[i][j] - b[i][j]| of two equally shaped number[][] (a loop: any size). */
export function maxAbsDifference(a: number[][], b: number[][]): number {
  checkSameRows("maxAbsDifference", a, b);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = 0; j < a[i].length; j++) {
      worst = Math.max(worst, Math.abs(a[i][j] - b[i][j]));
    }
  }
  return worst;
}

/**
 * Mean squared difference over every entry of two equally shaped number[][]
 * (e.g. a learned and a true trajectory, one row per time).
 */
export function trajectoryMSE(a: number[][], b: number[][]): number {
  checkSameRows("trajectoryMSE", a, b);
  let sum = 0;
  let count = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = 0; j < a[i].length; j++) {
      sum += (a[i][j] - b[i][j]) ** 2;
      count++;
    }
  }
  return sum / count;
}

function checkSameRows(where: string, a: unknown, b: unknown): void {
  const ok = (m: unknown): m is number[][] =>
    Array.isArray(m) && m.length > 0 && m.every((r) => Array.isArray(r));
  if (!ok(a) || !ok(b)) {
    throw new ArgumentError(where, "a and b must be non-empty number[][]");
  }
  if (
    a.length !== b.length || a.some((r, i) => r.length !== b[i].length)
  ) {
    throw new ArgumentError(where, "a and b must have the same shape");
  }
}

/** One tolerance of `toleranceStudy`. */
export interface ToleranceRow {
  /** Relative tolerance. */
  rtol: number;
  /** Absolute tolerance used (rtol * atolFactor). */
  atol: number;
  /** Evaluations of f. */
  nfe: number;
  /** Largest absolute deviation from `reference` over all output times. */
  err: number;
}

/**
 * Cost and accuracy of dopri5 per relative tolerance: for each `rtol` of
 * `tols` (atol = rtol * atolFactor) solves on `ts` and compares with
 * `reference` (rows of `odeintArray` on the same `ts`, from a much tighter
 * solve). Plain numbers; no tensor is left behind.
 */
export function toleranceStudy(
  f: VectorField,
  y0: InitialState,
  ts: number[],
  tols: readonly number[],
  reference: number[][],
  options: { atolFactor?: number } = {},
): ToleranceRow[] {
  const where = "toleranceStudy";
  const { atolFactor = 1e-2 } = checkOptions(where, options, ["atolFactor"]);
  checkNumber(where, "options.atolFactor", atolFactor, {
    min: 0,
    minExclusive: true,
  });
  if (!Array.isArray(tols) || tols.length === 0) {
    throw new ArgumentError(where, "tols must be a non-empty number[]");
  }
  tols.forEach((rtol, i) =>
    checkNumber(where, `tols[${i}]`, rtol, { min: 0, minExclusive: true })
  );
  return tols.map((rtol) => {
    const atol = rtol * atolFactor;
    return tf.tidy(() => {
      const r = odeintWithStats(f, toInitial(where, y0), ts, { rtol, atol });
      const rows = r.states.reshape([ts.length, -1]).arraySync() as number[][];
      return {
        rtol,
        atol,
        nfe: r.stats.nfe,
        err: maxAbsDifference(rows, reference),
      };
    });
  });
}

/**
 * Every window of `length` consecutive rows of a trajectory `states`
 * ([n, ...]): a new tensor [n - length + 1, length, ...] (caller disposes),
 * row w holding states w, w + 1, ..., w + length - 1. The training set of a
 * `NeuralODE`: draw batches of windows with `batchSampler`.
 */
export function trajectoryWindows(
  states: tf.Tensor,
  length: number,
): tf.Tensor {
  const where = "trajectoryWindows";
  checkTensor(where, "states", states, { minRank: 1 });
  const n = states.shape[0];
  checkInteger(where, "length", length, { min: 2, max: n });
  const count = n - length + 1;
  return tf.tidy(() => {
    const idx = new Int32Array(count * length);
    for (let w = 0; w < count; w++) {
      for (let k = 0; k < length; k++) idx[w * length + k] = w + k;
    }
    return tf.gather(states, tf.tensor2d(idx, [count, length], "int32"));
  });
}

/**
 * A cosine learning-rate schedule: step i of `steps` gets
 * to + (from - to) (1 + cos(pi i / steps)) / 2, from `from` at step 0 down
 * to `to` at the end. Decaying the rate at the end of training removes the
 * jitter a constant rate leaves in the weights, which a long solve of the
 * learned ODE amplifies into a phase error.
 *
 * @example
 * const rate = cosineDecay({ from: 1e-3, to: 1e-5, steps: 2000 });
 * rate(0); // 1e-3
 * rate(1000); // 5.05e-4
 */
export function cosineDecay(
  options: { from: number; to: number; steps: number },
): (step: number) => number {
  const where = "cosineDecay";
  if (options === null || typeof options !== "object") {
    throw new ArgumentError(where, "options { from, to, steps } are required");
  }
  const { from, to, steps } = checkOptions(where, options, [
    "from",
    "to",
    "steps",
  ]);
  checkNumber(where, "options.from", from, { min: 0, minExclusive: true });
  checkNumber(where, "options.to", to, { min: 0, max: from });
  checkInteger(where, "options.steps", steps, { min: 1 });
  return (step: number) => {
    const progress = Math.min(1, Math.max(0, step / steps));
    return to + (from - to) * (1 + Math.cos(Math.PI * progress)) / 2;
  };
}

/**
 * Sets the learning rate a tfjs optimizer (tf.train.rmsprop, tf.train.sgd,
 * adam, ...) uses from its next update on. tfjs keeps the rate in each
 * optimizer's `learningRate` field, read at every `applyGradients`, and
 * offers no schedule of its own.
 *
 * @throws ArgumentError for an optimizer without a learning rate or a rate that is not positive
 */
export function setLearningRate(optimizer: tf.Optimizer, rate: number): void {
  const where = "setLearningRate";
  const target = optimizer as unknown as { learningRate?: unknown };
  // tf.Optimizer's instanceof reads properties of its operand: guard null first.
  if (
    optimizer === null || typeof optimizer !== "object" ||
    !(optimizer instanceof tf.Optimizer) ||
    typeof target.learningRate !== "number"
  ) {
    throw new ArgumentError(
      where,
      "optimizer must be a tfjs optimizer with a learning rate (e.g. tf.train.rmsprop(1e-3))",
    );
  }
  checkNumber(where, "rate", rate, { min: 0, minExclusive: true });
  target.learningRate = rate;
}

/**
 * The points of an n x n grid, [x, y] with x = start + step * (i mod n) and
 * y = start + step * floor(i / n), i = 0..n²-1 (x varies fastest).
 */
export function squareGrid(
  options: { start: number; step: number; n: number },
): number[][] {
  const where = "squareGrid";
  if (options === undefined) {
    throw new ArgumentError(where, "options { start, step, n } are required");
  }
  const { start, step, n } = checkOptions(where, options, [
    "start",
    "step",
    "n",
  ]);
  checkNumber(where, "options.start", start);
  checkNumber(where, "options.step", step, { min: 0, minExclusive: true });
  checkInteger(where, "options.n", n, { min: 1 });
  return Array.from(
    { length: n * n },
    (_, i) => [start + step * (i % n), start + step * Math.floor(i / n)],
  );
}

/** f(t, points) for a batch of points ([n, d] numbers) as number[][]; no tensor left behind. */
export function fieldValues(
  f: VectorField,
  points: number[][],
  t = 0,
): number[][] {
  const where = "fieldValues";
  checkNumber(where, "t", t);
  return tf.tidy(() => {
    const { matrix } = toMatrix(where, "points", points);
    return f(t, matrix).arraySync() as number[][];
  });
}

/**
 * ||a[i] - b[i]|| / ||b[i]|| (Frobenius norms) for two lists of tensors of
 * matching shapes, e.g. adjoint gradients against backprop ones. Reads the
 * tensors, disposes nothing of the caller's.
 */
export function relativeErrors(a: tf.Tensor[], b: tf.Tensor[]): number[] {
  const where = "relativeErrors";
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) {
    throw new ArgumentError(
      where,
      "a and b must be tensor lists of equal length",
    );
  }
  a.forEach((x, i) => {
    checkTensor(where, `a[${i}]`, x);
    checkTensor(where, `b[${i}]`, b[i], { shape: x.shape });
  });
  return a.map((x, i) =>
    tf.tidy(() =>
      tf.norm(tf.sub(x, b[i])).dataSync()[0] / tf.norm(b[i]).dataSync()[0]
    )
  );
}

/** Memory and time of one gradient computation, per number of steps (`gradientCost`). */
export interface GradientCostRow {
  /** Number of RK4 steps over [0, t1]. */
  n: number;
  /** Peak extra memory of backprop through the solver (KB), tape included. */
  tapeKB: number;
  /** Peak extra memory of the adjoint method (KB): the larger of its two solves. */
  adjointKB: number;
  /** Best wall time of backprop through the solver (ms). */
  backpropMs: number;
  /** Best wall time of the adjoint method (ms). */
  adjointMs: number;
}

/**
 * Backprop through the solver against the adjoint method, for the gradient
 * of sum(z(t1)) with respect to `params`: for each n of `stepCounts`,
 * RK4 with step t1 / n from z(0) = y0, best time of `repeats` runs (the
 * machine may be shared). Plain numbers; every tensor made is disposed.
 */
export function gradientCost(
  f: VectorField,
  y0: tf.Tensor,
  params: tf.Tensor[],
  stepCounts: readonly number[],
  options: { repeats?: number; t1?: number } = {},
): GradientCostRow[] {
  const where = "gradientCost";
  const { repeats = 2, t1 = 1 } = checkOptions(where, options, [
    "repeats",
    "t1",
  ]);
  checkTensor(where, "y0", y0, { dtype: "float32" });
  if (!Array.isArray(params) || params.length === 0) {
    throw new ArgumentError(where, "params must be a non-empty tf.Variable[]");
  }
  params.forEach((p, i) => checkTensor(where, `params[${i}]`, p));
  checkInteger(where, "options.repeats", repeats, { min: 1 });
  checkNumber(where, "options.t1", t1, { min: 0, minExclusive: true });
  if (!Array.isArray(stepCounts) || stepCounts.length === 0) {
    throw new ArgumentError(where, "stepCounts must be a non-empty number[]");
  }
  stepCounts.forEach((n, i) =>
    checkInteger(where, `stepCounts[${i}]`, n, { min: 1 })
  );
  const total = (s: tf.Tensor) => tf.sum(s) as tf.Scalar;
  return stepCounts.map((n) => {
    const opts = { method: "rk4" as const, step: t1 / n };
    let tapeBytes = 0,
      adjointBytes = 0,
      backpropMs = Infinity,
      adjointMs = Infinity;
    for (let repeat = 0; repeat < repeats; repeat++) {
      let t0 = performance.now();
      tf.dispose(tf.tidy(() =>
        tf.engine().gradients(() => {
          const r = odeintWithStats(f, y0, [0, t1], opts);
          tapeBytes = r.stats.peakBytes;
          return total(r.states);
        }, params).grads
      ));
      backpropMs = Math.min(backpropMs, performance.now() - t0);
      t0 = performance.now();
      const adj = odeintAdjoint(f, y0, [0, t1], params, total, opts);
      adjointMs = Math.min(adjointMs, performance.now() - t0);
      adjointBytes = Math.max(
        adj.stats.forward.peakBytes,
        adj.stats.backward.peakBytes,
      );
      tf.dispose([adj.states, adj.gradY0, ...adj.gradParams]);
    }
    return {
      n,
      tapeKB: tapeBytes / 1024,
      adjointKB: adjointBytes / 1024,
      backpropMs,
      adjointMs,
    };
  });
}

/**
 * The right-hand side of an adjoint system at time t, given z and a_z:
 * dz/dt, da_z/dt and da_theta/dt per parameter, as `adjointDynamics`
 * returns them (new tensors).
 */
export type AdjointField = (
  t: number,
  z: tf.Tensor,
  a: tf.Tensor,
) => AdjointDynamics;

/**
 * Integrates an adjoint system backward with `steps` RK4 steps from
 * span[0] to span[1]: the state [z, a_z, a_theta...] starts at
 * [z1, a1, 0...] (a_theta with the shapes of `params`) and moves with
 * `dynamics`. Returns a_z and a_theta at span[1] (new tensors; the caller
 * disposes them): the gradients with respect to z and the parameters at
 * span[1] when `dynamics` is right and a1 = dL/dz(span[0]).
 */
export function adjointSweep(
  dynamics: AdjointField,
  z1: tf.Tensor,
  a1: tf.Tensor,
  params: tf.Tensor[],
  span: [number, number],
  steps: number,
): { gradZ: tf.Tensor; gradParams: tf.Tensor[] } {
  const where = "adjointSweep";
  if (typeof dynamics !== "function") {
    throw new ArgumentError(
      where,
      "dynamics must be (t, z, a) => { dz, da, dtheta }",
    );
  }
  checkTensor(where, "z1", z1, { dtype: "float32" });
  checkTensor(where, "a1", a1, { shape: z1.shape, dtype: "float32" });
  params.forEach((p, i) => checkTensor(where, `params[${i}]`, p));
  span.forEach((t, i) => checkNumber(where, `span[${i}]`, t));
  checkInteger(where, "steps", steps, { min: 1 });
  const h = (span[1] - span[0]) / steps;
  const field = (t: number, [z, a]: tf.Tensor[]) => {
    const d = dynamics(t, z, a);
    return [d.dz, d.da, ...d.dtheta];
  };
  const plus = (y: tf.Tensor[], k: tf.Tensor[], s: number) =>
    y.map((v, i) => tf.add(v, tf.mul(k[i], s)));
  let y = [z1.clone(), a1.clone(), ...params.map((p) => tf.zerosLike(p))];
  for (let n = 0; n < steps; n++) {
    const t = span[0] + n * h;
    const next = tf.tidy(() => {
      const k1 = field(t, y);
      const k2 = field(t + h / 2, plus(y, k1, h / 2));
      const k3 = field(t + h / 2, plus(y, k2, h / 2));
      const k4 = field(t + h, plus(y, k3, h));
      return y.map((v, i) =>
        tf.add(
          v,
          tf.mul(tf.addN([k1[i], k2[i], k2[i], k3[i], k3[i], k4[i]]), h / 6),
        )
      );
    });
    tf.dispose(y);
    y = next;
  }
  tf.dispose(y[0]);
  return { gradZ: y[1], gradParams: y.slice(2) };
}

/**
 * The kinetic-energy cost R = lambda * integral over span of ½ |f(t, z)|² dt
 * (summed over the rows of the batch z0) and its gradients with respect to
 * z0 and `params` (the variables f reads), by autodiff through an RK4 solve
 * of the state augmented with q, dq/dt = ½ lambda |f|² per row (R is the
 * sum of q at span[1]). Also returns z at span[1]. New tensors; the caller
 * disposes them.
 */
export function kineticCostGradients(
  f: VectorField,
  z0: tf.Tensor2D,
  params: tf.Tensor[],
  span: [number, number],
  lambda: number,
  steps: number,
): { cost: number; z1: tf.Tensor; gradZ0: tf.Tensor; gradParams: tf.Tensor[] } {
  const where = "kineticCostGradients";
  checkTensor(where, "z0", z0, { rank: 2, dtype: "float32" });
  params.forEach((p, i) => checkTensor(where, `params[${i}]`, p));
  checkNumber(where, "lambda", lambda);
  checkInteger(where, "steps", steps, { min: 1 });
  const [n, d] = z0.shape;
  const augmented = (t: number, zq: tf.Tensor) =>
    tf.tidy(() => {
      const fz = f(t, tf.slice(zq, [0, 0], [n, d]));
      const dq = tf.mul(tf.sum(tf.square(fz), 1, true), lambda / 2);
      return tf.concat([fz, dq], 1);
    });
  const step = Math.abs(span[1] - span[0]) / steps;
  let z1: tf.Tensor | null = null;
  const { value, grads } = tf.engine().gradients(() => {
    const zq0 = tf.concat([z0, tf.zeros([n, 1])], 1);
    const end = tf.gather(
      odeint(augmented, zq0, span, { method: "rk4", step }),
      1,
    );
    z1 = tf.keep(tf.slice(end, [0, 0], [n, d]));
    return tf.sum(tf.slice(end, [0, d], [n, 1])) as tf.Scalar;
  }, [z0, ...params]);
  const cost = value.dataSync()[0];
  value.dispose();
  return { cost, z1: z1!, gradZ0: grads[0], gradParams: grads.slice(1) };
}
