/**
 * Ordinary differential equation solvers built from tfjs ops, for neural
 * ODEs: dy/dt = f(t, y) with a network as f.
 *
 * - `odeint` / `odeintWithStats`: fixed-step Euler, midpoint and classic
 *   Runge-Kutta 4, and adaptive Dormand-Prince 5(4) ("dopri5", local error
 *   control: see `OdeintOptions.rtol` for what the tolerances bound). Every step
 *   is made of tfjs ops, so tfjs autodiff differentiates straight through the
 *   solver (discretize-then-optimize): the tape grows with the number of
 *   steps.
 * - `odeintAdjoint`: gradients by the adjoint method (optimize-then-
 *   discretize): solve forward without a tape, then solve the augmented
 *   system [z, a_z, a_theta] backward in time with vector-Jacobian products;
 *   memory does not grow with the number of steps.
 * - `residualNetwork`: a stack of residual blocks z_{k+1} = z_k + g_k(z_k),
 *   which is Euler's method with dt = 1.
 * - `neuralVectorField`: wraps a tf.layers model as f(t, y).
 * - `OdeClassifier`: a neural ODE classifier (flow, then a linear readout).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkChoice,
  checkFinite,
  checkInteger,
  checkNumber,
  checkTensor,
  toMatrix,
} from "./validate.ts";
import { glorotUniform, rngFrom, type Seed } from "./random.ts";
import { fastMlpApply, mlp, trainableVariables } from "./nn.ts";

/** A vector field f(t, y): a JS number time and a tensor state; returns dy/dt with y's shape. */
export type VectorField = (t: number, y: tf.Tensor) => tf.Tensor;

/** The solvers of `odeint`. */
export const ODE_METHODS = ["euler", "midpoint", "rk4", "dopri5"] as const;

/** One of `ODE_METHODS`. */
export type OdeMethod = typeof ODE_METHODS[number];

/** What dopri5's rtol/atol bound: the error of one step, or of the answer (`OdeintOptions.tolerance`). */
export type OdeTolerance = "local" | "global";

/** The values of `OdeintOptions.tolerance`. */
export const ODE_TOLERANCES = ["local", "global"] as const;

/** Options of `odeint`, `odeintWithStats` and `odeintAdjoint`. */
export interface OdeintOptions {
  /** Solver (default "dopri5"). */
  method?: OdeMethod;
  /**
   * Fixed-step methods: the largest step size (> 0). Each interval
   * [ts[i], ts[i+1]] is cut into ceil(|ts[i+1] - ts[i]| / step) equal steps so
   * the output times are hit exactly. Default: one step per interval.
   * dopri5: ignored.
   */
  step?: number;
  /**
   * dopri5 relative tolerance (default 1e-5; at least 1e-7 in float32).
   *
   * rtol and atol bound the LOCAL error, the error made in one step: a step
   * is accepted when the RMS over components of
   * err_i / (atol + rtol max(|y_i|, |y1_i|)) is <= 1, with err the
   * difference of the embedded 5th- and 4th-order solutions of that step
   * (as in scipy's RK45 and torchdiffeq). The GLOBAL error at the output
   * times carries the local errors of all earlier steps, amplified by the
   * dynamics, so it can exceed the tolerance. Measured against scipy DOP853
   * (tasks/reference/ode_dopri5_global.py; atol = rtol / 100, rtol 1e-3 to
   * 1e-6, max over outputs of |err_i| / (atol + rtol |y_i|)): 2.5-13x on the
   * harmonic oscillator over [0, 10], 60-200x on Van der Pol (mu = 1) over
   * [0, 10], 170-1300x on the cubic spiral over [0, 25], within a factor 2
   * of scipy RK45 at the same settings, and float32 round-off is a small
   * part of it. The large factors come from components near zero (tolerance
   * ~ atol); scaled by the whole state's size, atol + rtol max_j |y_j|, they
   * are 1.3-2.7x, 1.7-4.3x and 13-95x. What holds is proportionality: the
   * global error shrinks like rtol. When the answer itself must be accurate
   * to a tolerance, tighten rtol until the result stops changing, or pass
   * `tolerance: "global"`, which does that for you.
   */
  rtol?: number;
  /**
   * dopri5 absolute tolerance (default 1e-7); a local bound like rtol (see
   * `rtol` and `tolerance`).
   */
  atol?: number;
  /**
   * What rtol/atol bound (dopri5 only; default "local").
   *
   * - "local": the error of each step (see `rtol`); one solve.
   * - "global": the error of the returned states at the output times,
   *   estimated by tolerance proportionality. Solves at (rtol, atol) and at
   *   (rtol / 10, atol / 10) and takes the difference as the error of the
   *   coarser solution; when max over output times and components of
   *   |Y1 - Y2| / (atol + rtol |Y2|) is <= 1 (the requested rtol/atol)
   *   returns the finer Y2 (whose error is then ~10x inside the
   *   tolerance); otherwise divides both tolerances by 10 again and
   *   compares the new solve with the previous one. Throws OdeSolverError
   *   when the next rtol would fall below the float32 floor 1e-7 (so rtol
   *   must be >= 1e-6) or a trial solve fails (maxSteps, applied per
   *   solve). Costs 2 or more solves (`OdeStats.nfe` counts them all,
   *   `OdeStats.refinements` says how many followed the first). Under a
   *   gradient tape every trial solve is recorded (memory), but only the
   *   returned one carries the gradient. `odeint` and `odeintWithStats`
   *   only: `odeintAdjoint` rejects it.
   */
  tolerance?: OdeTolerance;
  /** Largest number of steps (dopri5: attempted steps, rejected ones included). Default 10000. */
  maxSteps?: number;
  /** dopri5 first step size (default: Hairer's automatic choice, 1 extra evaluation). */
  firstStep?: number;
  /** dopri5 safety factor on the optimal step (default 0.9). */
  safety?: number;
  /** dopri5 smallest step-size ratio between consecutive steps (default 0.2). */
  minFactor?: number;
  /** dopri5 largest step-size ratio between consecutive steps (default 10). */
  maxFactor?: number;
}

/** What a solve cost, returned by `odeintWithStats` and `odeintAdjoint`. */
export interface OdeStats {
  /** The method used. */
  method: OdeMethod;
  /** Number of evaluations of f. */
  nfe: number;
  /** Number of accepted steps. */
  accepted: number;
  /** Number of rejected steps (dopri5 only; 0 for fixed steps). */
  rejected: number;
  /** Start time of each accepted step. */
  stepTimes: number[];
  /** Signed size of each accepted step (negative when integrating backward). */
  stepSizes: number[];
  /** Start time of each rejected dopri5 step. */
  rejectedTimes: number[];
  /** Attempted size of each rejected dopri5 step. */
  rejectedSizes: number[];
  /**
   * Largest growth of live tensor memory (bytes, `tf.memory().numBytes`)
   * during the solve, sampled after every step: under a gradient tape this
   * includes what the tape keeps for the backward pass.
   */
  peakBytes: number;
  /**
   * `tolerance: "global"`: how many solves followed the first, each at
   * tolerances 10x tighter than the one before (>= 1; the returned states
   * come from the last, at rtol / 10^refinements). The other fields then
   * cover all the solves: nfe and the step counts add up, the step lists
   * are concatenated in solve order, peakBytes is the largest of any solve.
   * 0 with `tolerance: "local"`.
   */
  refinements: number;
}

/** A solver failure that is not a bad argument: step limit reached, step underflow, non-finite state. */
export class OdeSolverError extends Error {
  /** Creates the error; `where` is the function. */
  constructor(where: string, message: string) {
    super(`${where}: ${message}`);
    this.name = "OdeSolverError";
  }
}

// ---------------------------------------------------------------------------
// Butcher tableaus. Internally a state is a list of tensors (one for odeint,
// three groups for the adjoint's augmented state), so one solver serves both.

interface Tableau {
  c: number[];
  a: number[][];
  b: number[];
  /** b - b_hat: weights of the embedded error estimate. */
  e?: number[];
  order: number;
}

const TABLEAUS: Record<OdeMethod, Tableau> = {
  euler: { c: [0], a: [[]], b: [1], order: 1 },
  midpoint: { c: [0, 1 / 2], a: [[], [1 / 2]], b: [0, 1], order: 2 },
  rk4: {
    c: [0, 1 / 2, 1 / 2, 1],
    a: [[], [1 / 2], [0, 1 / 2], [0, 0, 1]],
    b: [1 / 6, 1 / 3, 1 / 3, 1 / 6],
    order: 4,
  },
  dopri5: {
    c: [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1],
    a: [
      [],
      [1 / 5],
      [3 / 40, 9 / 40],
      [44 / 45, -56 / 15, 32 / 9],
      [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
      [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
      [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
    ],
    b: [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0],
    e: [
      35 / 384 - 5179 / 57600,
      0,
      500 / 1113 - 7571 / 16695,
      125 / 192 - 393 / 640,
      -2187 / 6784 + 92097 / 339200,
      11 / 84 - 187 / 2100,
      -1 / 40,
    ],
    order: 5,
  },
};

/** The theoretical order of each method (global error ~ step^order). */
export const ODE_ORDERS: Readonly<Record<OdeMethod, number>> = Object.freeze({
  euler: 1,
  midpoint: 2,
  rk4: 4,
  dopri5: 5,
});

type State = tf.Tensor[];
type TupleField = (t: number, y: State) => State;

/**
 * Scalar tensors by value, made once per solve and reused by every step
 * (a JS number in tf.mul uploads a new scalar on each call). Kept out of
 * the per-step tidy; `dispose()` frees them.
 */
class ScalarCache {
  readonly #scalars = new Map<number, tf.Scalar>();

  get(value: number): tf.Scalar {
    let s = this.#scalars.get(value);
    if (s === undefined) {
      s = tf.keep(tf.scalar(value));
      this.#scalars.set(value, s);
    }
    return s;
  }

  dispose(): void {
    this.#scalars.forEach((s) => s.dispose());
    this.#scalars.clear();
  }
}

/**
 * y + h * sum_i w_i k_i per component, skipping zero weights; with `y` null
 * the sum alone.
 *
 * Cost matters more than it seems: tfjs spends ~5 µs per kernel, and on a
 * gradient tape each op also clones the tensors its gradient needs and adds
 * its own gradient kernels. So the combination is one `tf.customGrad` op:
 * its forward ops (the same as without it, so the same numbers) are not
 * taped, and its gradient is dy for y and dy * h w_i for each k_i. A single
 * term needs no addN. `scalars` supplies the multipliers as cached tensors
 * (fixed steps).
 */
function combine(
  y: State | null,
  ks: State[],
  w: number[],
  h: number,
  scalars?: ScalarCache,
): State {
  const used = ks.map((_, i) => i).filter((i) => i < w.length && w[i] !== 0);
  const scalar = (v: number) => scalars ? scalars.get(v) : v;
  // xs = [y_j?, k_{used[0]}_j, k_{used[1]}_j, ...]
  const linear = (xs: tf.Tensor[]) => {
    const k = y ? xs.slice(1) : xs;
    const terms = used.map((i, n) => tf.mul(k[n], scalar(h * w[i])));
    const sum = terms.length === 1 ? terms[0] : tf.addN(terms);
    return y ? tf.add(xs[0], sum) : sum;
  };
  // The gradient may hand dy itself to y: tfjs accumulates input gradients
  // into new tensors and reads an output's gradient only once.
  const op = tf.customGrad(
    ((...args: unknown[]) => ({
      value: linear(args.slice(0, -1) as tf.Tensor[]),
      gradFunc: (dy: tf.Tensor) => [
        ...(y ? [dy] : []),
        // Plain numbers: the cached scalars are freed when the solve ends,
        // before any backward pass.
        ...used.map((i) => tf.mul(dy, h * w[i])),
      ],
    })) as Parameters<typeof tf.customGrad>[0],
  );
  return ks[0].map((_, j) => {
    if (used.length === 0) {
      return y ? y[j].clone() : tf.zerosLike(ks[0][j]);
    }
    return op(...(y ? [y[j]] : []), ...used.map((i) => ks[i][j]));
  });
}

/** One explicit Runge-Kutta step; `k1` (f at (t, y)) may be supplied (FSAL). */
function rkStep(
  tab: Tableau,
  f: TupleField,
  t: number,
  y: State,
  h: number,
  k1?: State,
  scalars?: ScalarCache,
): { y1: State; ks: State[] } {
  const ks: State[] = [k1 ?? f(t, y)];
  let ys: State = y;
  for (let s = 1; s < tab.c.length; s++) {
    ys = combine(y, ks, tab.a[s], h, scalars);
    ks.push(f(t + tab.c[s] * h, ys));
  }
  // dopri5's last stage is evaluated at the new point itself (first same as
  // last): that stage's input already is y1.
  const last = tab.a[tab.a.length - 1];
  const fsal = tab.e !== undefined && last.every((v, i) => v === tab.b[i]);
  const y1 = fsal ? ys : combine(y, ks, tab.b, h, scalars);
  return { y1, ks };
}

function validateTimes(where: string, ts: unknown): number[] {
  let arr: number[];
  if (ts instanceof tf.Tensor) {
    checkTensor(where, "ts", ts, { rank: 1 });
    arr = Array.from(ts.dataSync());
  } else if (Array.isArray(ts) || ArrayBuffer.isView(ts)) {
    arr = Array.from(ts as ArrayLike<number>);
  } else {
    throw new ArgumentError(
      where,
      `ts must be an array of times (number[] or a rank-1 tensor), got ${
        String(ts)
      }`,
    );
  }
  if (arr.length < 1) {
    throw new ArgumentError(where, "ts must contain at least the initial time");
  }
  arr.forEach((v, i) => checkNumber(where, `ts[${i}]`, v));
  if (arr.length >= 2) {
    const dir = Math.sign(arr[1] - arr[0]);
    for (let i = 1; i < arr.length; i++) {
      if (dir === 0 || Math.sign(arr[i] - arr[i - 1]) !== dir) {
        throw new ArgumentError(
          where,
          `ts must be strictly increasing or strictly decreasing, but ts[${
            i - 1
          }] = ${arr[i - 1]} and ts[${i}] = ${arr[i]}`,
        );
      }
    }
  }
  return arr;
}

interface Resolved {
  method: OdeMethod;
  step?: number;
  rtol: number;
  atol: number;
  maxSteps: number;
  tolerance: OdeTolerance;
  firstStep?: number;
  safety: number;
  minFactor: number;
  maxFactor: number;
}

function resolveOptions(
  where: string,
  options: OdeintOptions | undefined,
): Resolved {
  if (
    options !== undefined && (options === null || typeof options !== "object")
  ) {
    throw new ArgumentError(
      where,
      `options must be an object, got ${String(options)}`,
    );
  }
  const o = options ?? {};
  const method = checkChoice(
    where,
    "options.method",
    o.method ?? "dopri5",
    ODE_METHODS,
  );
  const r: Resolved = {
    method,
    rtol: checkNumber(where, "options.rtol", o.rtol ?? 1e-5, {
      min: 1e-7,
      max: 1,
    }),
    atol: checkNumber(where, "options.atol", o.atol ?? 1e-7, { min: 0 }),
    maxSteps: checkInteger(where, "options.maxSteps", o.maxSteps ?? 10000, {
      min: 1,
    }),
    tolerance: checkChoice(
      where,
      "options.tolerance",
      o.tolerance ?? "local",
      ODE_TOLERANCES,
    ),
    safety: checkNumber(where, "options.safety", o.safety ?? 0.9, {
      min: 0,
      max: 1,
      minExclusive: true,
    }),
    minFactor: checkNumber(where, "options.minFactor", o.minFactor ?? 0.2, {
      min: 0,
      max: 1,
      minExclusive: true,
    }),
    maxFactor: checkNumber(where, "options.maxFactor", o.maxFactor ?? 10, {
      min: 1,
    }),
  };
  if (r.tolerance === "global" && TABLEAUS[method].e === undefined) {
    throw new ArgumentError(
      where,
      `options.tolerance "global" needs an adaptive method ("dopri5"), got ` +
        `method "${method}" (fixed-step methods have no rtol/atol)`,
    );
  }
  if (o.step !== undefined) {
    r.step = checkNumber(where, "options.step", o.step, {
      min: 0,
      minExclusive: true,
    });
  }
  if (o.firstStep !== undefined) {
    r.firstStep = checkNumber(where, "options.firstStep", o.firstStep, {
      min: 0,
      minExclusive: true,
    });
  }
  return r;
}

function emptyStats(method: OdeMethod): OdeStats {
  return {
    method,
    nfe: 0,
    accepted: 0,
    rejected: 0,
    stepTimes: [],
    stepSizes: [],
    rejectedTimes: [],
    rejectedSizes: [],
    peakBytes: 0,
    refinements: 0,
  };
}

/**
 * RMS of xs / (atol + rtol * max_k |scaleFrom_k|) over every element, in
 * float64: the step-size controller's error norm (scaled by the states
 * before and after the step) and the starting-step heuristic's (one state).
 */
function rmsNorm(
  xs: State,
  scaleFrom: State[],
  rtol: number,
  atol: number,
): number {
  let sum = 0;
  let n = 0;
  for (let j = 0; j < xs.length; j++) {
    const v = xs[j].dataSync();
    const scales = scaleFrom.map((state) => state[j].dataSync());
    for (let i = 0; i < v.length; i++) {
      let size = 0;
      for (const s of scales) size = Math.max(size, Math.abs(s[i]));
      const r = v[i] / (atol + rtol * size);
      sum += r * r;
    }
    n += v.length;
  }
  return Math.sqrt(sum / Math.max(n, 1));
}

/**
 * Hairer, Norsett & Wanner's starting step: make the first Euler step's
 * change small relative to the tolerance scale, then refine it with a
 * second derivative estimate. Costs one extra evaluation of f.
 */
function initialStep(
  f: TupleField,
  t0: number,
  y0: State,
  f0: State,
  dir: number,
  span: number,
  o: Resolved,
): number {
  const d0 = rmsNorm(y0, [y0], o.rtol, o.atol);
  const d1 = rmsNorm(f0, [y0], o.rtol, o.atol);
  const h0 = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : 0.01 * d0 / d1;
  const d2 = tf.tidy(() => {
    const y1 = combine(y0, [f0], [1], dir * h0);
    const f1 = f(t0 + dir * h0, y1);
    const diff = f1.map((v, j) => tf.sub(v, f0[j]));
    return rmsNorm(diff, [y0], o.rtol, o.atol) / h0;
  });
  const m = Math.max(d1, d2);
  const h1 = m <= 1e-15 ? Math.max(1e-6, h0 * 1e-3) : Math.pow(0.01 / m, 1 / 5);
  return Math.min(100 * h0, h1, span);
}

function describeTime(t: number): string {
  return Number(t.toPrecision(6)).toString();
}

/**
 * The solver core on a list-of-tensors state. Returns, for each output time,
 * the state there (index 0 is a clone of y0). The caller owns the returned
 * tensors; everything else is freed step by step.
 */
function solve(
  where: string,
  f: TupleField,
  y0: State,
  ts: number[],
  o: Resolved,
  stats: OdeStats,
): State[] {
  const startBytes = tf.memory().numBytes;
  const sample = () => {
    stats.peakBytes = Math.max(
      stats.peakBytes,
      tf.memory().numBytes - startBytes,
    );
  };
  const outputs: State[] = [y0.map((y) => y.clone())];
  if (ts.length === 1) return outputs;
  const tab = TABLEAUS[o.method];
  let y = outputs[0];
  let steps = 0;
  const tooMany = (t: number) =>
    new OdeSolverError(
      where,
      `maxSteps (${o.maxSteps}) exceeded at t = ${
        describeTime(t)
      } while solving from ${ts[0]} to ${
        ts[ts.length - 1]
      }; raise options.maxSteps, use a larger step or looser rtol/atol ` +
        `(the problem may be stiff)`,
    );
  const owned = (s: State) => !outputs.includes(s);

  if (tab.e === undefined) {
    const scalars = new ScalarCache();
    try {
      fixedSteps(scalars);
    } catch (e) {
      for (const s of outputs) tf.dispose(s);
      if (owned(y)) tf.dispose(y);
      throw e;
    } finally {
      scalars.dispose();
    }
    return outputs;
  }
  function fixedSteps(scalars: ScalarCache) {
    for (let i = 0; i + 1 < ts.length; i++) {
      const span = ts[i + 1] - ts[i];
      const n = o.step === undefined
        ? 1
        : Math.max(1, Math.ceil(Math.abs(span) / o.step * (1 - 1e-12)));
      const h = span / n;
      for (let k = 0; k < n; k++) {
        const t = ts[i] + k * h;
        if (++steps > o.maxSteps) throw tooMany(t);
        const next = tf.tidy(() =>
          rkStep(tab, f, t, y, h, undefined, scalars).y1
        );
        if (owned(y)) tf.dispose(y);
        y = next;
        stats.accepted++;
        stats.stepTimes.push(t);
        stats.stepSizes.push(h);
        sample();
      }
      outputs.push(y);
    }
  }

  // dopri5: adaptive steps, clipped so every output time is hit exactly.
  const dir = Math.sign(ts[1] - ts[0]);
  const tEnd = ts[ts.length - 1];
  let t = ts[0];
  let k1: State = tf.tidy(() => f(t, y));
  try {
    let h = o.firstStep ??
      initialStep(f, t, y, k1, dir, Math.abs(tEnd - ts[0]), o);
    for (let i = 1; i < ts.length; i++) {
      const target = ts[i];
      while (dir * (target - t) > 0) {
        const remaining = Math.abs(target - t);
        const clipped = h >= remaining * (1 - 1e-10);
        const hs = clipped ? remaining : h;
        if (t + dir * hs === t) {
          throw new OdeSolverError(
            where,
            `step size underflow at t = ${
              describeTime(t)
            } (step ${hs}); the solution may blow up ` +
              `or rtol/atol are too tight for float32`,
          );
        }
        if (++steps > o.maxSteps) throw tooMany(t);
        const yNow = y;
        const kNow = k1;
        const attempt = tf.tidy(() => {
          const { y1, ks } = rkStep(tab, f, t, yNow, dir * hs, kNow);
          const err = combine(null, ks, tab.e!, dir * hs);
          return { y1, err, k7: ks[ks.length - 1] };
        });
        const norm = rmsNorm(attempt.err, [y, attempt.y1], o.rtol, o.atol);
        tf.dispose(attempt.err);
        const finite = Number.isFinite(norm);
        if (finite && norm <= 1) {
          stats.accepted++;
          stats.stepTimes.push(t);
          stats.stepSizes.push(dir * hs);
          t = clipped ? target : t + dir * hs;
          if (owned(y)) tf.dispose(y);
          tf.dispose(k1);
          y = attempt.y1;
          k1 = attempt.k7;
          sample();
          const factor = norm === 0 ? o.maxFactor : Math.min(
            o.maxFactor,
            Math.max(o.minFactor, o.safety * Math.pow(norm, -1 / 5)),
          );
          // A step shortened only to land on an output time says nothing
          // about the right step size: keep the proposal unless it grew.
          h = clipped ? Math.max(h, hs * factor) : hs * factor;
        } else {
          stats.rejected++;
          stats.rejectedTimes.push(t);
          stats.rejectedSizes.push(dir * hs);
          tf.dispose([attempt.y1, attempt.k7]);
          sample();
          const factor = finite
            ? Math.min(
              1,
              Math.max(o.minFactor, o.safety * Math.pow(norm, -1 / 5)),
            )
            : o.minFactor;
          h = hs * factor;
        }
      }
      outputs.push(y);
    }
  } catch (e) {
    for (const s of outputs) tf.dispose(s);
    if (owned(y)) tf.dispose(y);
    throw e;
  } finally {
    tf.dispose(k1);
  }
  return outputs;
}

function checkedField(
  where: string,
  f: VectorField,
  y0: tf.Tensor,
  stats: OdeStats,
): TupleField {
  const want = y0.shape.join(", ");
  return (t, [y]) => {
    stats.nfe++;
    const out = f(t, y);
    if (!(out instanceof tf.Tensor)) {
      throw new ArgumentError(
        where,
        `f(t, y) must return a tf.Tensor of shape [${want}], got ${
          String(out)
        }`,
      );
    }
    if (out.rank !== y0.rank || out.shape.some((s, i) => s !== y0.shape[i])) {
      throw new ArgumentError(
        where,
        `f(t, y) must return a tensor of the same shape as y ([${want}]), got [${
          out.shape.join(", ")
        }] at t = ${describeTime(t)}`,
      );
    }
    if (out.dtype !== "float32") {
      throw new ArgumentError(
        where,
        `f(t, y) must return float32, got ${out.dtype}`,
      );
    }
    return [out];
  };
}

function checkInputs(where: string, f: unknown, y0: unknown): tf.Tensor {
  if (typeof f !== "function") {
    throw new ArgumentError(
      where,
      "f must be a function (t: number, y: tf.Tensor) => tf.Tensor",
    );
  }
  const y = checkTensor(where, "y0", y0, { dtype: "float32" });
  checkFinite(where, "y0", y);
  return y;
}

/**
 * Solves dy/dt = f(t, y), y(ts[0]) = y0, and returns the states at every
 * time of `ts` (strictly increasing or strictly decreasing) together with
 * the solver statistics (function evaluations, accepted and rejected step
 * sizes, peak memory growth).
 *
 * `states` is a new tensor of shape [ts.length, ...y0.shape] (the caller
 * disposes it); `states[0]` equals y0. Differentiable by tfjs autodiff with
 * respect to y0 and any variable f uses.
 *
 * @example
 * const { states, stats } = odeintWithStats((t, y) => y.neg(), tf.tensor1d([1]), [0, 1], { method: "dopri5" });
 */
export function odeintWithStats(
  f: VectorField,
  y0: tf.Tensor,
  ts: number[] | ArrayLike<number> | tf.Tensor1D,
  options?: OdeintOptions,
): { states: tf.Tensor; stats: OdeStats } {
  const where = "odeint";
  const y = checkInputs(where, f, y0);
  const times = validateTimes(where, ts);
  const o = resolveOptions(where, options);
  const stats = emptyStats(o.method);
  if (o.tolerance === "global") {
    return { states: solveGlobal(where, f, y, times, o, stats), stats };
  }
  const field = checkedField(where, f, y, stats);
  const outs = solve(where, field, [y], times, o, stats);
  const states = tf.tidy(() => tf.stack(outs.map((s) => s[0])));
  outs.forEach((s) => tf.dispose(s));
  return { states, stats };
}

/** The smallest rtol resolveOptions accepts (float32). */
const RTOL_FLOOR = 1e-7;

/**
 * `tolerance: "global"`: solves at rtol/atol divided by 1, 10, 100, ...
 * until two consecutive solves differ by at most the requested tolerance
 * (see `OdeintOptions.tolerance`), and returns the last one stacked. All
 * solves add to `stats`; the discarded ones are disposed.
 */
function solveGlobal(
  where: string,
  f: VectorField,
  y: tf.Tensor,
  times: number[],
  o: Resolved,
  stats: OdeStats,
): tf.Tensor {
  const num = (x: number) => Number(x.toPrecision(6)).toString();
  const requested = `rtol = ${num(o.rtol)}, atol = ${num(o.atol)}`;
  const trial = (k: number): tf.Tensor => {
    const scale = Math.pow(10, -k);
    const ok: Resolved = { ...o, rtol: o.rtol * scale, atol: o.atol * scale };
    const s = emptyStats(o.method);
    const field = checkedField(where, f, y, s);
    try {
      const outs = solve(where, field, [y], times, ok, s);
      const states = tf.tidy(() => tf.stack(outs.map((x) => x[0])));
      outs.forEach((x) => tf.dispose(x));
      return states;
    } catch (e) {
      if (e instanceof OdeSolverError) {
        throw new OdeSolverError(
          where,
          `tolerance "global" (${requested}): the solve at rtol = ` +
            `${num(ok.rtol)}, atol = ${num(ok.atol)} (each trial solve has ` +
            `its own maxSteps) failed: ${e.message.replace(`${where}: `, "")}`,
        );
      }
      throw e;
    } finally {
      stats.nfe += s.nfe;
      stats.accepted += s.accepted;
      stats.rejected += s.rejected;
      stats.stepTimes.push(...s.stepTimes);
      stats.stepSizes.push(...s.stepSizes);
      stats.rejectedTimes.push(...s.rejectedTimes);
      stats.rejectedSizes.push(...s.rejectedSizes);
      stats.peakBytes = Math.max(stats.peakBytes, s.peakBytes);
    }
  };
  const belowFloor = (k: number) =>
    o.rtol * Math.pow(10, -k) < RTOL_FLOOR * (1 - 1e-9);
  if (belowFloor(1)) {
    throw new OdeSolverError(
      where,
      `tolerance "global" (${requested}) cannot be checked: that needs a ` +
        `solve at rtol / 10 = ${num(o.rtol / 10)}, below the float32 floor ` +
        `${RTOL_FLOOR}; use rtol >= ${RTOL_FLOOR * 10}`,
    );
  }
  let prev = trial(0);
  let worst = Infinity;
  for (let k = 1;; k++) {
    if (belowFloor(k)) {
      prev.dispose();
      throw new OdeSolverError(
        where,
        `tolerance "global" (${requested}) not reached: after ${k - 1} ` +
          `refinement(s) the last two solves still differ by ` +
          `${worst.toPrecision(3)} x the tolerance, and rtol = ` +
          `${
            num(o.rtol * Math.pow(10, -k))
          } would be below the float32 floor ` +
          `${RTOL_FLOOR} (float32 round-off may dominate); loosen rtol/atol`,
      );
    }
    let cur: tf.Tensor;
    try {
      cur = trial(k);
    } catch (e) {
      prev.dispose();
      throw e;
    }
    stats.refinements = k;
    const a = prev.dataSync();
    const b = cur.dataSync();
    worst = 0;
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(a[i] - b[i]);
      if (d === 0) continue;
      worst = Math.max(worst, d / (o.atol + o.rtol * Math.abs(b[i])));
    }
    prev.dispose();
    if (worst <= 1) return cur; // NaN or Infinity: refine
    prev = cur;
  }
}

/**
 * Solves dy/dt = f(t, y), y(ts[0]) = y0, and returns the states at every time
 * of `ts` as a new tensor of shape [ts.length, ...y0.shape] (caller disposes).
 * Same as `odeintWithStats(...).states`; see `OdeintOptions` for methods,
 * step sizes and tolerances.
 *
 * @example
 * // y' = -y from t = 0 to 1: states[1] ≈ exp(-1)
 * const ys = odeint((t, y) => y.neg(), tf.tensor1d([1]), [0, 1], { method: "rk4", step: 0.1 });
 */
export function odeint(
  f: VectorField,
  y0: tf.Tensor,
  ts: number[] | ArrayLike<number> | tf.Tensor1D,
  options?: OdeintOptions,
): tf.Tensor {
  return odeintWithStats(f, y0, ts, options).states;
}

// ---------------------------------------------------------------------------
// Adjoint method

/** The right-hand side of the augmented adjoint system at one time. */
export interface AdjointDynamics {
  /** dz/dt = f(t, z). */
  dz: tf.Tensor;
  /** da_z/dt = -a_z^T df/dz (a vector-Jacobian product). */
  da: tf.Tensor;
  /** da_theta/dt = -a_z^T df/dtheta, one tensor per parameter. */
  dtheta: tf.Tensor[];
}

/**
 * The augmented dynamics of the adjoint method at time t: f(t, z),
 * -a^T df/dz and -a^T df/dtheta, the last two as vector-Jacobian products
 * from one reverse-mode pass through f (cost ~ one evaluation plus its
 * backward). `params` are the variables f reads (e.g.
 * `trainableVariables(model)`); a parameter f does not use gets zeros.
 * Returns new tensors (caller disposes).
 */
export function adjointDynamics(
  f: VectorField,
  t: number,
  z: tf.Tensor,
  a: tf.Tensor,
  params: tf.Tensor[],
): AdjointDynamics {
  const where = "adjointDynamics";
  checkTensor(where, "z", z, { dtype: "float32" });
  checkTensor(where, "a", a, { shape: z.shape, dtype: "float32" });
  checkParams(where, params);
  return dynamicsUnchecked(f, t, z, a, params);
}

function checkParams(where: string, params: unknown): tf.Tensor[] {
  if (!Array.isArray(params)) {
    throw new ArgumentError(
      where,
      "params must be an array of tf.Variable (may be empty)",
    );
  }
  params.forEach((p, i) =>
    checkTensor(where, `params[${i}]`, p, { dtype: "float32" })
  );
  return params;
}

function dynamicsUnchecked(
  f: VectorField,
  t: number,
  z: tf.Tensor,
  a: tf.Tensor,
  params: tf.Tensor[],
): AdjointDynamics {
  return tf.tidy(() => {
    // engine.gradients runs the closure in its own tidy: keep f(t, z) alive
    // by hand, because dz/dt is f itself.
    let fz: tf.Tensor | undefined;
    const { grads } = tf.engine().gradients(
      () => {
        fz = tf.keep(f(t, z));
        return tf.sum(tf.mul(fz, a)) as tf.Scalar;
      },
      [z, ...params],
      undefined,
      true,
    );
    const dz = fz!;
    const neg = (g: tf.Tensor | undefined, like: tf.Tensor) =>
      g ? tf.neg(g) : tf.zerosLike(like);
    const result = {
      dz: dz.clone(),
      da: neg(grads[0], z),
      dtheta: params.map((p, i) => neg(grads[i + 1], p)),
    };
    dz.dispose();
    return result;
  });
}

/** Result of `odeintAdjoint`; every tensor is new (caller disposes). */
export interface AdjointResult {
  /** The loss value L(states). */
  loss: number;
  /** The forward solution at `ts`, [ts.length, ...y0.shape]. */
  states: tf.Tensor;
  /** dL/dy0, shape of y0: the adjoint a_z at ts[0]. */
  gradY0: tf.Tensor;
  /** dL/dtheta, one tensor per entry of `params`: the adjoint a_theta at ts[0]. */
  gradParams: tf.Tensor[];
  /** Solver statistics of the forward and the backward (augmented) solve. */
  stats: { forward: OdeStats; backward: OdeStats };
}

/**
 * Gradients of `loss(states)` with respect to y0 and the parameters of f by
 * the adjoint method: solve forward without recording a tape, compute
 * a_z(t_i) = dL/dz(t_i) at the output times, then solve the augmented system
 *
 *   d/dt [z, a_z, a_theta] = [f(t, z), -a_z^T df/dz, -a_z^T df/dtheta]
 *
 * backward from ts[last] to ts[0] with the same solver, adding dL/dz(t_i)
 * to a_z at each output time. Memory stays constant in the number of steps
 * (z is recomputed backward rather than stored; it is reset to the stored
 * forward state at each output time).
 *
 * `loss` receives the states [ts.length, ...y0.shape] and returns a scalar;
 * `params` are the variables f reads (e.g. `trainableVariables(model)`).
 * With a fixed-step method the backward solve uses the same grid as the
 * forward one.
 */
export function odeintAdjoint(
  f: VectorField,
  y0: tf.Tensor,
  ts: number[] | ArrayLike<number> | tf.Tensor1D,
  params: tf.Tensor[],
  loss: (states: tf.Tensor) => tf.Scalar,
  options?: OdeintOptions,
): AdjointResult {
  const where = "odeintAdjoint";
  const y = checkInputs(where, f, y0);
  const times = validateTimes(where, ts);
  checkParams(where, params);
  if (typeof loss !== "function") {
    throw new ArgumentError(
      where,
      "loss must be a function (states: tf.Tensor) => tf.Scalar",
    );
  }
  const o = resolveOptions(where, options);
  if (o.tolerance === "global") {
    throw new ArgumentError(
      where,
      `options.tolerance "global" is supported by odeint and ` +
        `odeintWithStats only; use "local" (the default) with a tighter rtol`,
    );
  }
  const forward = emptyStats(o.method);
  const backward = emptyStats(o.method);
  const field = checkedField(where, f, y, forward);
  const outs = solve(where, field, [y], times, o, forward);
  const states = tf.tidy(() => tf.stack(outs.map((s) => s[0])));
  outs.forEach((s) => tf.dispose(s));

  const { value, grads } = tf.engine().gradients(
    () => {
      const l = loss(states);
      if (!(l instanceof tf.Tensor) || l.rank !== 0) {
        throw new ArgumentError(
          where,
          "loss(states) must return a scalar tf.Tensor",
        );
      }
      return l;
    },
    [states],
    undefined,
    true,
  );
  const lossValue = value.dataSync()[0];
  value.dispose();
  const dLdS = grads[0] ?? tf.zerosLike(states);

  const n = times.length;
  const slice = (x: tf.Tensor, i: number) =>
    tf.tidy(() => tf.squeeze(tf.slice(x, i, 1), [0]));
  let a = slice(dLdS, n - 1);
  let aTheta = params.map((p) => tf.zerosLike(p));
  const augmented: TupleField = (t, [z, az]) => {
    backward.nfe++;
    const d = dynamicsUnchecked(f, t, z, az, params);
    return [d.dz, d.da, ...d.dtheta];
  };
  try {
    for (let i = n - 1; i >= 1; i--) {
      const z = slice(states, i);
      const res = solve(
        where,
        augmented,
        [z, a, ...aTheta],
        [times[i], times[i - 1]],
        o,
        backward,
      );
      tf.dispose([z, a, ...aTheta]);
      tf.dispose(res[0]);
      const [, aEnd, ...thetaEnd] = res[1];
      tf.dispose(res[1][0]);
      const jump = slice(dLdS, i - 1);
      a = tf.add(aEnd, jump);
      tf.dispose([aEnd, jump]);
      aTheta = thetaEnd;
    }
  } catch (e) {
    tf.dispose([states, dLdS, a, ...aTheta]);
    throw e;
  }
  dLdS.dispose();
  return {
    loss: lossValue,
    states,
    gradY0: a,
    gradParams: aTheta,
    stats: { forward, backward },
  };
}

// ---------------------------------------------------------------------------
// Residual networks and neural vector fields

/**
 * A residual network z_{k+1} = z_k + dt * g_k(z_k) for k = 0..blocks.length-1:
 * exactly Euler's method on dz/dt = g_{floor(t)}(z) with step dt (dt = 1 is
 * the usual residual network). Returns every hidden state stacked,
 * [blocks.length + 1, ...x.shape] (a new tensor; caller disposes).
 */
export function residualNetwork(
  blocks: ((z: tf.Tensor) => tf.Tensor)[],
  x: tf.Tensor,
  { dt = 1 }: { dt?: number } = {},
): tf.Tensor {
  const where = "residualNetwork";
  if (!Array.isArray(blocks) || blocks.some((b) => typeof b !== "function")) {
    throw new ArgumentError(
      where,
      "blocks must be an array of functions z => tf.Tensor",
    );
  }
  checkTensor(where, "x", x, { dtype: "float32" });
  checkNumber(where, "dt", dt, { min: 0, minExclusive: true });
  return tf.tidy(() => {
    const zs = [x];
    for (const [k, block] of blocks.entries()) {
      const z = zs[zs.length - 1];
      const g = block(z);
      if (!(g instanceof tf.Tensor) || g.shape.join() !== z.shape.join()) {
        throw new ArgumentError(
          where,
          `blocks[${k}] must return a tensor of shape [${
            z.shape.join(", ")
          }], got ${
            g instanceof tf.Tensor ? `[${g.shape.join(", ")}]` : String(g)
          }`,
        );
      }
      zs.push(tf.add(z, tf.mul(g, dt)));
    }
    return tf.stack(zs);
  });
}

/**
 * Wraps a tf.layers model mapping [batch, d] -> [batch, d] as a vector field
 * f(t, y) for `odeint`. `y` may be [d] or [batch, d]. With `time: true` the
 * model gets t as an extra last input column ([batch, d + 1] -> [batch, d]).
 * `features` optionally transforms y before the model (e.g. `y => y.pow(3)`).
 *
 * A plain dense MLP (e.g. from `mlp`) runs through `fastMlpApply` (lib/nn.ts):
 * one taped op per evaluation instead of tf.layers' dozens, the same values,
 * and gradients that reach the model's variables as before (about half the
 * time of a neural-ODE training step). Other models use `model.apply`.
 */
export function neuralVectorField(
  model: tf.LayersModel,
  { time = false, features }: {
    time?: boolean;
    features?: (y: tf.Tensor) => tf.Tensor;
  } = {},
): VectorField {
  const where = "neuralVectorField";
  if (!(model instanceof tf.LayersModel)) {
    throw new ArgumentError(
      where,
      "model must be a tf.LayersModel (e.g. from mlp)",
    );
  }
  const fast = fastMlpApply(model);
  const apply = fast ?? ((x: tf.Tensor) => model.apply(x) as tf.Tensor);
  return (t: number, y: tf.Tensor) =>
    tf.tidy(() => {
      const batched = y.rank === 1 ? tf.expandDims(y, 0) : y;
      if (batched.rank !== 2) {
        throw new ArgumentError(
          where,
          `y must be [d] or [batch, d], got [${y.shape.join(", ")}]`,
        );
      }
      let input = features ? features(batched) : batched;
      if (time) {
        input = tf.concat([input, tf.fill([batched.shape[0], 1], t)], 1);
      }
      const out = apply(input);
      return y.rank === 1 ? tf.squeeze(out, [0]) : out;
    });
}

// ---------------------------------------------------------------------------
// A neural ODE classifier

/** Options of `OdeClassifier`. */
export interface OdeClassifierOptions {
  /** Hidden units of the vector field, an MLP [d + 1, hidden, d] with tanh fed (z, t). Default 32. */
  hidden?: number;
  /**
   * Extra coordinates, all zero at t = 0, appended to each point before the
   * flow (an augmented neural ODE): with none the flow is a continuous
   * deformation of the plane itself. Default 0.
   */
  augment?: number;
  /** RK4 steps over [0, 1] (default 4); training, `flow` and predictions use the same grid. */
  solverSteps?: number;
  /** Adam learning rate (default 0.01). */
  learningRate?: number;
  /** Number of classes (default: largest label + 1, at least 2). */
  numClasses?: number;
  /** Seed of the initial weights (default 0). */
  seed?: number;
}

/** What one `OdeClassifier.step()` reports (before that step's update). */
export interface OdeClassifierMetrics extends Record<string, number> {
  /** Mean softmax cross-entropy on the training points. */
  loss: number;
  /** Fraction of training points whose largest logit is their label. */
  accuracy: number;
}

/** The linear readout of an `OdeClassifier` as plain numbers: logits = z W + b. */
export interface OdeReadout {
  /** W, [dim][numClasses]. */
  weights: number[][];
  /** b, [numClasses]. */
  bias: number[];
}

/**
 * A neural ODE classifier: each point x is lifted to z(0) = [x, 0...0]
 * (`augment` zeros), flowed by dz/dt = f_theta(z, t) from t = 0 to t = 1
 * (RK4 with `solverSteps` steps, backprop through the solver), and classified
 * by a linear readout softmax(z(1) W + b). `step()` is one full-batch Adam
 * step on the mean cross-entropy. Owns copies of the training data, the
 * network, the readout and the optimizer; `dispose()` frees them.
 *
 * @example
 * const { points, labels } = makeMoons(256, { noise: 0.1 });
 * const clf = new OdeClassifier(points, labels, { seed: 0 });
 * const history = await trainLoop(() => clf.step(), { steps: 300 });
 * clf.flow(points, [0, 0.5, 1]); // positions at each time, number[][][]
 */
export class OdeClassifier {
  /** Size of an input point. */
  readonly inputDim: number;
  /** Size of the flowing state: inputDim + augment. */
  readonly dim: number;
  /** Zero coordinates appended to each point. */
  readonly augment: number;
  /** RK4 steps over [0, 1]. */
  readonly solverSteps: number;
  /** Number of classes (columns of the readout). */
  readonly numClasses: number;
  /** The vector field's network, [dim + 1] -> [dim] (owned: `dispose()` frees it). */
  readonly net: tf.Sequential;
  /** The vector field f(t, z) built on `net`. */
  readonly field: VectorField;
  /** Metrics of every `step()`. */
  readonly history: { step: number[]; loss: number[]; accuracy: number[] } = {
    step: [],
    loss: [],
    accuracy: [],
  };
  readonly #x: tf.Tensor2D;
  readonly #labels: tf.Tensor1D;
  readonly #targets: tf.Tensor2D;
  readonly #w: tf.Variable;
  readonly #b: tf.Variable;
  readonly #opt: tf.Optimizer;
  readonly #vars: tf.Variable[];
  #steps = 0;

  /**
   * `points`: float32 [n, d] training inputs; `labels`: int32 [n] classes
   * 0..numClasses-1. Both are copied (the caller keeps its tensors).
   */
  constructor(
    points: tf.Tensor2D,
    labels: tf.Tensor1D,
    options: OdeClassifierOptions = {},
  ) {
    const where = "OdeClassifier";
    if (options === null || typeof options !== "object") {
      throw new ArgumentError(where, "options must be an object");
    }
    checkTensor(where, "points", points, { rank: 2, dtype: "float32" });
    checkFinite(where, "points", points);
    const [n, d] = points.shape;
    checkTensor(where, "labels", labels, { shape: [n], dtype: "int32" });
    const labelValues = Array.from(labels.dataSync());
    const largest = Math.max(...labelValues);
    if (labelValues.some((v) => v < 0)) {
      throw new ArgumentError(where, "labels must be >= 0");
    }
    const o = options;
    this.numClasses = checkInteger(
      where,
      "options.numClasses",
      o.numClasses ?? Math.max(2, largest + 1),
      { min: Math.max(2, largest + 1) },
    );
    const hidden = checkInteger(where, "options.hidden", o.hidden ?? 32, {
      min: 1,
    });
    this.augment = checkInteger(where, "options.augment", o.augment ?? 0, {
      min: 0,
    });
    this.solverSteps = checkInteger(
      where,
      "options.solverSteps",
      o.solverSteps ?? 4,
      { min: 1 },
    );
    const lr = checkNumber(
      where,
      "options.learningRate",
      o.learningRate ?? 0.01,
      {
        min: 0,
        minExclusive: true,
      },
    );
    const seed = checkNumber(where, "options.seed", o.seed ?? 0);
    this.inputDim = d;
    this.dim = d + this.augment;
    this.net = mlp([this.dim + 1, hidden, this.dim], {
      activation: "tanh",
      seed,
      name: "ode_classifier",
    });
    this.field = neuralVectorField(this.net, { time: true });
    const k = this.numClasses;
    [this.#x, this.#labels, this.#targets, this.#w, this.#b] = tf.tidy(() => [
      this.#lift(points),
      labels.clone(),
      tf.oneHot(labels, k).toFloat() as tf.Tensor2D,
      tf.variable(glorotUniform([this.dim, k], { seed: seed * 1000 + 500 })),
      tf.variable(tf.zeros([k])),
    ]);
    this.#opt = tf.train.adam(lr);
    this.#vars = [...trainableVariables(this.net), this.#w, this.#b];
  }

  #lift(x: tf.Tensor2D): tf.Tensor2D {
    return this.augment === 0
      ? x.clone()
      : tf.concat([x, tf.zeros([x.shape[0], this.augment])], 1);
  }

  #solve(z0: tf.Tensor2D, times: number[]): tf.Tensor {
    return odeint(this.field, z0, times, {
      method: "rk4",
      step: 1 / this.solverSteps,
    });
  }

  #logits(z0: tf.Tensor2D): tf.Tensor2D {
    const z1 = tf.squeeze(tf.slice(this.#solve(z0, [0, 1]), 1, 1), [0]);
    return tf.add(tf.matMul(z1 as tf.Tensor2D, this.#w), this.#b);
  }

  /**
   * One full-batch Adam step on the mean cross-entropy; returns the loss and
   * the training accuracy of the model before the update (plain numbers,
   * also appended to `history`).
   */
  step(): OdeClassifierMetrics {
    let accuracy = NaN;
    const loss = tf.tidy(() =>
      this.#opt.minimize(
        () => {
          const logits = this.#logits(this.#x);
          accuracy = tf.mean(
            tf.cast(tf.equal(tf.argMax(logits, 1), this.#labels), "float32"),
          ).dataSync()[0];
          return tf.losses.softmaxCrossEntropy(
            this.#targets,
            logits,
          ) as tf.Scalar;
        },
        true,
        this.#vars,
      )!.dataSync()[0]
    );
    this.history.step.push(this.#steps++);
    this.history.loss.push(loss);
    this.history.accuracy.push(accuracy);
    return { loss, accuracy };
  }

  #input(where: string, points: unknown): tf.Tensor2D {
    const { matrix, created } = toMatrix(where, "points", points);
    if (matrix.shape[1] !== this.inputDim) {
      if (created) matrix.dispose();
      throw new ArgumentError(
        where,
        `points must have ${this.inputDim} columns, got ${matrix.shape[1]}`,
      );
    }
    const lifted = this.#lift(matrix);
    if (created) matrix.dispose();
    return lifted;
  }

  /**
   * Positions of `points` ([n, inputDim], tensor or number[][]) under the
   * learned flow at each of `times` (increasing, in [0, 1]; default every
   * solver step 0, 1/solverSteps, ..., 1): result[i][j] is point j at
   * times[i], with `dim` coordinates. Times that are multiples of
   * 1/solverSteps fall on the training grid. Plain numbers; no tensor is
   * left behind.
   */
  flow(
    points: tf.Tensor2D | number[][],
    times: number[] = Array.from(
      { length: this.solverSteps + 1 },
      (_, i) => i / this.solverSteps,
    ),
  ): number[][][] {
    const where = "OdeClassifier.flow";
    const ts = validateTimes(where, times);
    if (ts[0] < 0 || ts[ts.length - 1] > 1 || ts[ts.length - 1] < ts[0]) {
      throw new ArgumentError(
        where,
        `times must increase within [0, 1], got [${ts.join(", ")}]`,
      );
    }
    return tf.tidy(() => {
      const z0 = this.#input(where, points);
      const from0 = ts[0] === 0 ? ts : [0, ...ts];
      const states = this.#solve(z0, from0);
      const kept = from0 === ts ? states : tf.slice(states, 1, ts.length);
      return kept.arraySync() as number[][][];
    });
  }

  /** Class probabilities softmax(z(1) W + b) of `points`, [n][numClasses]; plain numbers. */
  probabilities(points: tf.Tensor2D | number[][]): number[][] {
    const where = "OdeClassifier.probabilities";
    return tf.tidy(() =>
      tf.softmax(this.#logits(this.#input(where, points)))
        .arraySync() as number[][]
    );
  }

  /**
   * Fraction of `points` whose most probable class is their label (int32
   * tensor or number[]); without arguments, on the training set.
   */
  accuracy(
    points?: tf.Tensor2D | number[][],
    labels?: tf.Tensor1D | number[],
  ): number {
    const where = "OdeClassifier.accuracy";
    if ((points === undefined) !== (labels === undefined)) {
      throw new ArgumentError(where, "pass both points and labels, or neither");
    }
    return tf.tidy(() => {
      const z0 = points === undefined ? this.#x : this.#input(where, points);
      const y = labels === undefined
        ? this.#labels
        : labels instanceof tf.Tensor
        ? checkTensor(where, "labels", labels, {
          shape: [z0.shape[0]],
          dtype: "int32",
        })
        : Array.isArray(labels)
        ? tf.tensor1d(
          labels.map((v, i) =>
            checkInteger(where, `labels[${i}]`, v, { min: 0 })
          ),
          "int32",
        )
        : checkTensor(where, "labels", labels);
      if (y.shape[0] !== z0.shape[0]) {
        throw new ArgumentError(
          where,
          `labels must have one entry per point (${z0.shape[0]}), got ${
            y.shape[0]
          }`,
        );
      }
      const pred = tf.argMax(this.#logits(z0), 1);
      return tf.mean(tf.cast(tf.equal(pred, y), "float32")).dataSync()[0];
    });
  }

  /** The linear readout W, b as plain numbers (e.g. to draw the decision line at t = 1). */
  readout(): OdeReadout {
    return {
      weights: this.#w.arraySync() as number[][],
      bias: this.#b.arraySync() as number[],
    };
  }

  /** Frees the network, the readout, the optimizer and the copied data. */
  dispose(): void {
    this.net.dispose();
    this.#opt.dispose();
    tf.dispose([this.#x, this.#labels, this.#targets, this.#w, this.#b]);
  }
}

// ---------------------------------------------------------------------------
// Experiments of notebook 06, returning plain numbers

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
  if (stepRanges === null || typeof stepRanges !== "object") {
    throw new ArgumentError(
      where,
      "stepRanges must map methods to arrays of step sizes",
    );
  }
  const rows: ConvergenceRow[] = [];
  const slopes: Record<string, number> = {};
  for (const [m, hs] of Object.entries(stepRanges)) {
    const method = checkChoice(where, "stepRanges key", m, ODE_METHODS);
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

/** Largest |a[i][j] - b[i][j]| of two equally shaped number[][]. */
export function maxAbsDifference(a: number[][], b: number[][]): number {
  const where = "maxAbsDifference";
  checkSameRows(where, a, b);
  return Math.max(
    ...a.flatMap((r, i) => r.map((v, j) => Math.abs(v - b[i][j]))),
  );
}

/**
 * Mean squared difference over every entry of two equally shaped number[][]
 * (e.g. a learned and a true trajectory, one row per time).
 */
export function trajectoryMSE(a: number[][], b: number[][]): number {
  const where = "trajectoryMSE";
  checkSameRows(where, a, b);
  let sum = 0;
  let count = 0;
  a.forEach((r, i) =>
    r.forEach((v, j) => {
      sum += (v - b[i][j]) ** 2;
      count++;
    })
  );
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
  { atolFactor = 1e-2 }: { atolFactor?: number } = {},
): ToleranceRow[] {
  const where = "toleranceStudy";
  checkNumber(where, "atolFactor", atolFactor, { min: 0, minExclusive: true });
  if (!Array.isArray(tols) || tols.length === 0) {
    throw new ArgumentError(where, "tols must be a non-empty number[]");
  }
  return tols.map((rtol, i) => {
    checkNumber(where, `tols[${i}]`, rtol, { min: 0, minExclusive: true });
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
 * A batch of random windows of `length` consecutive rows of `states`
 * ([n, ...]): returns a new tensor [length, batch, ...] (time first, ready
 * for `odeint`; caller disposes). Window starts are
 * floor(u * (n - length)) with u drawn from `seed` (pass the same `Rng` to
 * continue one stream across calls).
 */
export function randomSegments(
  states: tf.Tensor,
  { length, batch, seed }: { length: number; batch: number; seed?: Seed },
): tf.Tensor {
  const where = "randomSegments";
  checkTensor(where, "states", states, { minRank: 1 });
  const n = states.shape[0];
  checkInteger(where, "length", length, { min: 1, max: n - 1 });
  checkInteger(where, "batch", batch, { min: 1 });
  const rng = rngFrom(seed);
  return tf.tidy(() => {
    const starts = Array.from(
      { length: batch },
      () => Math.floor(rng.uniform() * (n - length)),
    );
    const idx = tf.tensor2d(
      starts.flatMap((s) => Array.from({ length }, (_, k) => s + k)),
      [batch, length],
      "int32",
    );
    const perm = [1, 0, ...states.shape.slice(1).map((_, i) => i + 2)];
    return tf.transpose(tf.gather(states, idx), perm);
  });
}

/**
 * The points of an n x n grid, [x, y] with x = start + step * (i mod n) and
 * y = start + step * floor(i / n), i = 0..n²-1 (x varies fastest).
 */
export function squareGrid(
  { start, step, n }: { start: number; step: number; n: number },
): number[][] {
  const where = "squareGrid";
  checkNumber(where, "start", start);
  checkNumber(where, "step", step, { min: 0, minExclusive: true });
  checkInteger(where, "n", n, { min: 1 });
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
  return a.map((x, i) => {
    checkTensor(where, `a[${i}]`, x);
    checkTensor(where, `b[${i}]`, b[i], { shape: x.shape });
    return tf.tidy(() =>
      tf.norm(tf.sub(x, b[i])).dataSync()[0] / tf.norm(b[i]).dataSync()[0]
    );
  });
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
  { repeats = 2, t1 = 1 }: { repeats?: number; t1?: number } = {},
): GradientCostRow[] {
  const where = "gradientCost";
  checkTensor(where, "y0", y0, { dtype: "float32" });
  checkParams(where, params);
  checkInteger(where, "repeats", repeats, { min: 1 });
  checkNumber(where, "t1", t1, { min: 0, minExclusive: true });
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
