/**
 * Ordinary differential equation solvers built from tfjs ops, for neural
 * ODEs: dy/dt = f(t, y) with a network as f.
 *
 * - `odeint` / `odeintWithStats`: fixed-step Euler, midpoint and classic
 *   Runge-Kutta 4, and adaptive Dormand-Prince 5(4) ("dopri5", local error
 *   control: see `OdeintOptions.rtol` for what the tolerances bound). Every
 *   step is made of tfjs ops, so tfjs autodiff differentiates straight
 *   through the solver (discretize-then-optimize): the tape grows with the
 *   number of steps.
 * - `odeintAdjoint`: gradients by the adjoint method (optimize-then-
 *   discretize): solve forward without a tape, keeping only the states at
 *   the output times, then solve the augmented system [z, a_z, a_theta]
 *   backward from each output time to the one before, with vector-Jacobian
 *   products. Memory does not grow with the number of solver steps.
 * - `residualNetwork`: a stack of residual blocks z_{k+1} = z_k + g_k(z_k),
 *   which is Euler's method with dt = 1.
 * - `neuralVectorField`: wraps a tf.layers model as f(t, y).
 * - `NeuralODE`: a network vector field fitted to windows of an observed
 *   trajectory; `OdeClassifier`: flow the inputs, then a linear readout.
 *   Both follow the `Trainable` contract of lib/model.ts (`trainStep`).
 *
 * The steps read like their formulas (`eulerStep`, `midpointStep`,
 * `rk4Step`, `dopri5Step`, `nextStepSize`, `augmentedDynamics`,
 * `adjointBackward`); the solver loops around them do the bookkeeping.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkBoolean,
  checkChoice,
  checkFinite,
  checkInteger,
  checkNumber,
  checkOptions,
  checkTensor,
  toMatrix,
} from "./validate.ts";
import { glorotUniform } from "./random.ts";
import {
  type Activation,
  ACTIVATIONS,
  fastMlpApply,
  mlp,
  trainableVariables,
} from "./nn.ts";
import type { LossTerms, Trainable } from "./model.ts";
import { linearCombination } from "@course/tfjs-fast";

/** A vector field f(t, y): a JS number time and a tensor state; returns dy/dt with y's shape. */
export type VectorField = (t: number, y: tf.Tensor) => tf.Tensor;

/** The solvers of `odeint`. */
export const ODE_METHODS = ["euler", "midpoint", "rk4", "dopri5"] as const;

/** One of `ODE_METHODS`. */
export type OdeMethod = typeof ODE_METHODS[number];

/** What dopri5's rtol/atol bound: the error of one step, or of the answer (`OdeintOptions.tolerance`). */
export type OdeTolerance = "local" | "global";

const ODE_TOLERANCES = ["local", "global"] as const;

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

const ODEINT_OPTIONS = [
  "method",
  "step",
  "rtol",
  "atol",
  "tolerance",
  "maxSteps",
  "firstStep",
  "safety",
  "minFactor",
  "maxFactor",
] as const;

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

/**
 * A solver failure that is not a bad argument: step limit reached, step
 * underflow, a state that is no longer finite.
 */
export class OdeSolverError extends Error {
  /** Creates the error; `where` is the function. */
  constructor(where: string, message: string) {
    super(`${where}: ${message}`);
    this.name = "OdeSolverError";
  }
}

// ---------------------------------------------------------------------------
// The state and the one combination every step is made of

/**
 * The state the solver steps: a list of tensors, one for `odeint`, the
 * groups [z, a_z, a_theta...] of the adjoint's augmented system, so one
 * solver serves both.
 */
type State = tf.Tensor[];
/** A vector field on such a state. */
type Field = (t: number, y: State) => State;

/**
 * y + h (w_1 k_1 + w_2 k_2 + ...), per tensor of the state: the
 * combination every Runge-Kutta stage and step is made of (zero weights
 * skipped).
 *
 * Each tensor's combination is one fused op (`linearCombination` from the
 * course's performance package) because cost matters more than it seems:
 * tfjs spends ~5 µs per kernel, and would run a multiply per term, a sum
 * and an add, and as many kernels again in the backward pass. On wasm the
 * op is one kernel and its gradient (dy for y, dy h w_i for each k_i) one
 * more, with the same float32 arithmetic, so the same numbers.
 */
function addScaled(y: State, h: number, ks: State[], w: number[]): State {
  const { terms, weights } = nonzeroTerms(ks, w);
  const c = weights.map((wi) => h * wi);
  return y.map((yj, j) => linearCombination(yj, terms.map((k) => k[j]), c));
}

/** h (w_1 k_1 + w_2 k_2 + ...) alone, as `addScaled` without the y. */
function scaledSum(h: number, ks: State[], w: number[]): State {
  const { terms, weights } = nonzeroTerms(ks, w);
  const c = weights.map((wi) => h * wi);
  return ks[0].map((_, j) =>
    linearCombination(null, terms.map((k) => k[j]), c)
  );
}

/** The slopes with a nonzero weight (a tableau row may be shorter than ks), and their weights. */
function nonzeroTerms(ks: State[], w: number[]) {
  const used = ks.map((_, i) => i).filter((i) => (w[i] ?? 0) !== 0);
  return { terms: used.map((i) => ks[i]), weights: used.map((i) => w[i]) };
}

// ---------------------------------------------------------------------------
// The fixed steps

/** Euler: follow the slope at the start for the whole step. */
function eulerStep(f: Field, t: number, y: State, h: number): State {
  const k1 = f(t, y);
  return addScaled(y, h, [k1], [1]);
}

/** Midpoint: take the slope half a step ahead, found by a half Euler step. */
function midpointStep(f: Field, t: number, y: State, h: number): State {
  const k1 = f(t, y);
  const k2 = f(t + h / 2, addScaled(y, h, [k1], [1 / 2]));
  return addScaled(y, h, [k2], [1]);
}

/** Classic Runge-Kutta 4: four slopes, averaged with weights 1, 2, 2, 1 over 6. */
function rk4Step(f: Field, t: number, y: State, h: number): State {
  const k1 = f(t, y);
  const k2 = f(t + h / 2, addScaled(y, h, [k1], [1 / 2]));
  const k3 = f(t + h / 2, addScaled(y, h, [k2], [1 / 2]));
  const k4 = f(t + h, addScaled(y, h, [k3], [1]));
  return addScaled(y, h, [k1, k2, k3, k4], [1 / 6, 1 / 3, 1 / 3, 1 / 6]);
}

type FixedMethod = Exclude<OdeMethod, "dopri5">;

const FIXED_STEPS: Record<FixedMethod, typeof eulerStep> = {
  euler: eulerStep,
  midpoint: midpointStep,
  rk4: rk4Step,
};

// ---------------------------------------------------------------------------
// Dormand-Prince 5(4): the step, its error estimate, the step-size controller

/**
 * The Dormand-Prince 5(4) tableau: stage s is evaluated at t + c[s] h and
 * y + h sum_j a[s][j] k_j; b are the 5th-order weights; e = b - b̂, the
 * difference to the embedded 4th-order weights (its 7th entry weighs
 * k7 = f(t + h, y1)).
 */
const DOPRI5 = {
  c: [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1],
  a: [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
  ],
  b: [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
  e: [
    35 / 384 - 5179 / 57600,
    0,
    500 / 1113 - 7571 / 16695,
    125 / 192 - 393 / 640,
    -2187 / 6784 + 92097 / 339200,
    11 / 84 - 187 / 2100,
    -1 / 40,
  ],
};

/**
 * One Dormand-Prince step from (t, y), given k1 = f(t, y): the 5th-order
 * solution y1, the error estimate y1 - ŷ1 against the embedded 4th-order
 * solution (the same stages, other weights: no extra evaluation), and
 * k7 = f(t + h, y1).
 */
function dopri5Step(f: Field, t: number, y: State, h: number, k1: State) {
  const { c, a, b, e } = DOPRI5;
  const k = [k1];
  for (let s = 1; s < 6; s++) {
    k.push(f(t + c[s] * h, addScaled(y, h, k, a[s])));
  }
  const y1 = addScaled(y, h, k, b);
  // "First same as last": k7 is the slope at the new point, so it is also
  // the next step's k1.
  k.push(f(t + h, y1));
  const error = scaledSum(h, k, e);
  return { y1, error, k7: k[6] };
}

/**
 * The error norm of a step: the RMS over every component of
 * error_i / (atol + rtol max_k |scaleFrom_k[i]|), in float64. A step is
 * accepted when it is <= 1. The controller scales by the states before and
 * after the step; the starting-step heuristic by one state.
 */
function rmsNorm(
  error: State,
  scaleFrom: State[],
  rtol: number,
  atol: number,
): number {
  let sum = 0;
  let n = 0;
  for (let j = 0; j < error.length; j++) {
    const v = error[j].dataSync();
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

/** The step-size controller's settings (`OdeintOptions`). */
interface Controller {
  safety: number;
  minFactor: number;
  maxFactor: number;
}

/**
 * The next step size after a step of size h whose error norm was `norm`.
 * The local error of a 5th-order pair behaves like C h^5, so
 * h norm^(-1/5) would give an error norm of exactly 1: aim a little lower
 * (safety), change h by at most the factors minFactor..maxFactor, and
 * never grow it right after a rejection.
 */
function nextStepSize(
  h: number,
  norm: number,
  accepted: boolean,
  { safety, minFactor, maxFactor }: Controller,
): number {
  if (!Number.isFinite(norm)) return h * minFactor;
  if (norm === 0) return h * maxFactor;
  const optimal = safety * Math.pow(norm, -1 / 5);
  return h * Math.min(accepted ? maxFactor : 1, Math.max(minFactor, optimal));
}

/**
 * Hairer, Norsett & Wanner's starting step: make the first Euler step's
 * change small relative to the tolerance scale, then refine it with a
 * second derivative estimate. Costs one extra evaluation of f.
 */
function initialStep(
  f: Field,
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
    const y1 = addScaled(y0, dir * h0, [f0], [1]);
    const f1 = f(t0 + dir * h0, y1);
    const diff = f1.map((v, j) => tf.sub(v, f0[j]));
    return rmsNorm(diff, [y0], o.rtol, o.atol) / h0;
  });
  const m = Math.max(d1, d2);
  const h1 = m <= 1e-15 ? Math.max(1e-6, h0 * 1e-3) : Math.pow(0.01 / m, 1 / 5);
  return Math.min(100 * h0, h1, span);
}

// ---------------------------------------------------------------------------
// The solver loops: steps, bookkeeping, statistics, failures

interface Resolved extends Controller {
  method: OdeMethod;
  step?: number;
  rtol: number;
  atol: number;
  maxSteps: number;
  tolerance: OdeTolerance;
  firstStep?: number;
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

function describeTime(t: number): string {
  return Number(t.toPrecision(6)).toString();
}

/** A function that records the growth of live tensor memory since now in `stats.peakBytes`. */
function memoryProbe(stats: OdeStats): () => void {
  const startBytes = tf.memory().numBytes;
  return () => {
    stats.peakBytes = Math.max(
      stats.peakBytes,
      tf.memory().numBytes - startBytes,
    );
  };
}

function tooManySteps(
  where: string,
  o: Resolved,
  ts: number[],
  t: number,
): OdeSolverError {
  return new OdeSolverError(
    where,
    `maxSteps (${o.maxSteps}) exceeded at t = ${
      describeTime(t)
    } while solving from ${ts[0]} to ${
      ts[ts.length - 1]
    }; raise options.maxSteps, use a larger step or looser rtol/atol ` +
      `(the problem may be stiff)`,
  );
}

function isFiniteState(state: State): boolean {
  for (const x of state) {
    const v = x.dataSync();
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return false;
  }
  return true;
}

/**
 * Throws OdeSolverError unless f(t, y) at an accepted (finite) state is
 * finite: no smaller step can help then, and dopri5 would shrink its step
 * until maxSteps, with a message about stiffness.
 */
function checkDerivative(where: string, k: State, t: number): void {
  if (isFiniteState(k)) return;
  throw new OdeSolverError(
    where,
    `f(t, y) is not finite at t = ${
      describeTime(t)
    } although y is: the vector field returned NaN or Infinity`,
  );
}

/**
 * Throws OdeSolverError unless the last output state is finite. Every step
 * adds to y, so a NaN or an infinity, once there, stays in every later
 * state: checking the last output checks them all.
 */
function checkFiniteOutputs(
  where: string,
  outputs: State[],
  ts: number[],
  o: Resolved,
): void {
  if (isFiniteState(outputs[outputs.length - 1])) return;
  const bad = outputs.findIndex((s) => !isFiniteState(s));
  const advice = o.method === "dopri5"
    ? "the solution may blow up"
    : `a fixed ${o.method} step may be too large for this problem (an ` +
      `explicit step is unstable when it is large), or the solution blows ` +
      `up; use a smaller options.step or method "dopri5"`;
  throw new OdeSolverError(
    where,
    `the state is no longer finite at t = ${describeTime(ts[bad])} (it ` +
      `was finite at t = ${describeTime(ts[bad - 1])}): ${advice}`,
  );
}

/** The number of equal fixed steps that cover [from, to] with steps of at most `step`. */
function stepsBetween(from: number, to: number, step?: number): number {
  if (step === undefined) return 1;
  return Math.max(1, Math.ceil(Math.abs(to - from) / step * (1 - 1e-12)));
}

/**
 * The solver core on a list-of-tensors state. Returns, for each output
 * time, the state there (index 0 is a clone of y0). The caller owns the
 * returned tensors; everything else is freed step by step, and everything
 * it made is freed when it throws.
 */
function solve(
  where: string,
  f: Field,
  y0: State,
  ts: number[],
  o: Resolved,
  stats: OdeStats,
): State[] {
  const outputs: State[] = [y0.map((y) => y.clone())];
  try {
    if (ts.length > 1) {
      if (o.method === "dopri5") adaptiveSteps(where, f, ts, o, stats, outputs);
      else fixedSteps(where, f, ts, o, stats, outputs);
      checkFiniteOutputs(where, outputs, ts, o);
    }
    return outputs;
  } catch (e) {
    for (const s of outputs) tf.dispose(s);
    throw e;
  }
}

/** Fixed steps from outputs[0] through every output time; pushes the state at each. */
function fixedSteps(
  where: string,
  f: Field,
  ts: number[],
  o: Resolved,
  stats: OdeStats,
  outputs: State[],
): void {
  const step = FIXED_STEPS[o.method as FixedMethod];
  const sample = memoryProbe(stats);
  let y = outputs[0];
  let steps = 0;
  try {
    for (let i = 0; i + 1 < ts.length; i++) {
      const n = stepsBetween(ts[i], ts[i + 1], o.step);
      const h = (ts[i + 1] - ts[i]) / n;
      for (let k = 0; k < n; k++) {
        const t = ts[i] + k * h;
        if (++steps > o.maxSteps) throw tooManySteps(where, o, ts, t);
        const next = tf.tidy(() => step(f, t, y, h));
        if (!outputs.includes(y)) tf.dispose(y);
        y = next;
        stats.accepted++;
        stats.stepTimes.push(t);
        stats.stepSizes.push(h);
        sample();
      }
      outputs.push(y);
    }
  } catch (e) {
    if (!outputs.includes(y)) tf.dispose(y);
    throw e;
  }
}

/**
 * dopri5 from outputs[0] through every output time: adaptive steps,
 * clipped so every output time is hit exactly; pushes the state at each.
 */
function adaptiveSteps(
  where: string,
  f: Field,
  ts: number[],
  o: Resolved,
  stats: OdeStats,
  outputs: State[],
): void {
  const sample = memoryProbe(stats);
  const dir = Math.sign(ts[1] - ts[0]);
  const tEnd = ts[ts.length - 1];
  let t = ts[0];
  let y = outputs[0];
  let k1: State = [];
  let steps = 0;
  try {
    k1 = tf.tidy(() => f(t, y));
    checkDerivative(where, k1, t);
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
        if (++steps > o.maxSteps) throw tooManySteps(where, o, ts, t);
        const [yNow, kNow] = [y, k1];
        const attempt = tf.tidy(() => dopri5Step(f, t, yNow, dir * hs, kNow));
        const norm = rmsNorm(attempt.error, [y, attempt.y1], o.rtol, o.atol);
        tf.dispose(attempt.error);
        const accepted = Number.isFinite(norm) && norm <= 1;
        const next = nextStepSize(hs, norm, accepted, o);
        if (accepted) {
          stats.accepted++;
          stats.stepTimes.push(t);
          stats.stepSizes.push(dir * hs);
          t = clipped ? target : t + dir * hs;
          if (!outputs.includes(y)) tf.dispose(y);
          tf.dispose(k1);
          y = attempt.y1;
          k1 = attempt.k7;
          checkDerivative(where, k1, t);
          // A step shortened only to land on an output time says nothing
          // about the right step size: keep the proposal unless it grew.
          h = clipped ? Math.max(h, next) : next;
        } else {
          stats.rejected++;
          stats.rejectedTimes.push(t);
          stats.rejectedSizes.push(dir * hs);
          tf.dispose([attempt.y1, attempt.k7]);
          h = next;
        }
        sample();
      }
      outputs.push(y);
    }
  } catch (e) {
    if (!outputs.includes(y)) tf.dispose(y);
    throw e;
  } finally {
    tf.dispose(k1);
  }
}

// ---------------------------------------------------------------------------
// Argument checks

function validateTimes(
  where: string,
  ts: unknown,
  name = "ts",
): number[] {
  let arr: number[];
  if (ts instanceof tf.Tensor) {
    checkTensor(where, name, ts, { rank: 1 });
    arr = Array.from(ts.dataSync());
  } else if (Array.isArray(ts) || ArrayBuffer.isView(ts)) {
    arr = Array.from(ts as ArrayLike<number>);
  } else {
    throw new ArgumentError(
      where,
      `${name} must be an array of times (number[] or a rank-1 tensor), got ${
        String(ts)
      }`,
    );
  }
  if (arr.length < 1) {
    throw new ArgumentError(
      where,
      `${name} must contain at least the initial time`,
    );
  }
  arr.forEach((v, i) => checkNumber(where, `${name}[${i}]`, v));
  if (arr.length >= 2) {
    const dir = Math.sign(arr[1] - arr[0]);
    for (let i = 1; i < arr.length; i++) {
      if (dir === 0 || Math.sign(arr[i] - arr[i - 1]) !== dir) {
        throw new ArgumentError(
          where,
          `${name} must be strictly increasing or strictly decreasing, but ${name}[${
            i - 1
          }] = ${arr[i - 1]} and ${name}[${i}] = ${arr[i]}`,
        );
      }
    }
  }
  return arr;
}

function resolveOptions(
  where: string,
  options: OdeintOptions | undefined,
): Resolved {
  const o = checkOptions(where, options, ODEINT_OPTIONS);
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
  if (r.tolerance === "global" && method !== "dopri5") {
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

/** f as a Field on a one-tensor state, checking what it returns and counting calls. */
function checkedField(
  where: string,
  f: VectorField,
  y0: tf.Tensor,
  stats: OdeStats,
): Field {
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

// ---------------------------------------------------------------------------
// odeint

/** One solve of f from y0 through `times`, stacked: [times.length, ...y0.shape]. */
function stackedSolve(
  where: string,
  f: VectorField,
  y: tf.Tensor,
  times: number[],
  o: Resolved,
  stats: OdeStats,
): tf.Tensor {
  const outs = solve(
    where,
    checkedField(where, f, y, stats),
    [y],
    times,
    o,
    stats,
  );
  const states = tf.tidy(() => tf.stack(outs.map((s) => s[0])));
  outs.forEach((s) => tf.dispose(s));
  return states;
}

function integrate(
  where: string,
  f: VectorField,
  y0: tf.Tensor,
  ts: unknown,
  options: OdeintOptions | undefined,
): { states: tf.Tensor; stats: OdeStats } {
  const y = checkInputs(where, f, y0);
  const times = validateTimes(where, ts);
  const o = resolveOptions(where, options);
  const stats = emptyStats(o.method);
  const states = o.tolerance === "global"
    ? solveGlobal(where, f, y, times, o, stats)
    : stackedSolve(where, f, y, times, o, stats);
  return { states, stats };
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
 *
 * @throws ArgumentError for bad arguments or options (a typo names the closest option)
 * @throws OdeSolverError when maxSteps is exceeded, the step underflows or the state stops being finite
 */
export function odeintWithStats(
  f: VectorField,
  y0: tf.Tensor,
  ts: number[] | ArrayLike<number> | tf.Tensor1D,
  options?: OdeintOptions,
): { states: tf.Tensor; stats: OdeStats } {
  return integrate("odeintWithStats", f, y0, ts, options);
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
 *
 * @throws ArgumentError for bad arguments or options (a typo names the closest option)
 * @throws OdeSolverError when maxSteps is exceeded, the step underflows or the state stops being finite
 */
export function odeint(
  f: VectorField,
  y0: tf.Tensor,
  ts: number[] | ArrayLike<number> | tf.Tensor1D,
  options?: OdeintOptions,
): tf.Tensor {
  return integrate("odeint", f, y0, ts, options).states;
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
    try {
      return stackedSolve(where, f, y, times, ok, s);
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

// ---------------------------------------------------------------------------
// The adjoint method

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
 * `fn()` and its vector-Jacobian products: the gradient of fn with respect
 * to each of `xs` with upstream gradient `dy` (default: ones, the gradient
 * of a scalar), zeros where fn does not depend on one; one reverse pass,
 * new tensors.
 *
 * tfjs keeps copies of what the forward pass saved for backpropagation and
 * frees them only in a backward pass: when `fn` throws, a backward pass
 * from a constant runs before the error is rethrown, so nothing is left
 * behind.
 */
function gradientsOf(
  fn: () => tf.Tensor,
  xs: tf.Tensor[],
  dy?: tf.Tensor,
): { value: tf.Tensor; grads: tf.Tensor[] } {
  let failure: unknown = null;
  const guarded = () => {
    try {
      return fn();
    } catch (e) {
      failure = e;
      return tf.scalar(0);
    }
  };
  const { value, grads } = tf.engine().gradients(guarded, xs, dy, true);
  if (failure !== null) {
    tf.dispose([value, ...grads.filter((g) => g)]);
    throw failure;
  }
  return { value, grads: xs.map((x, i) => grads[i] ?? tf.zerosLike(x)) };
}

/**
 * The augmented dynamics at time t: f(t, z) and the vector-Jacobian
 * products -a^T df/dz and -a^T df/dtheta.
 */
function augmentedDynamics(
  f: VectorField,
  t: number,
  z: tf.Tensor,
  a: tf.Tensor,
  params: tf.Tensor[],
): AdjointDynamics {
  return tf.tidy(() => {
    // One reverse pass through f with upstream gradient a gives
    // a^T df/dz and a^T df/dtheta together; no Jacobian is ever formed.
    const { value: fz, grads } = gradientsOf(() => f(t, z), [z, ...params], a);
    const [aDfDz, ...aDfDtheta] = grads;
    return {
      dz: fz,
      da: tf.neg(aDfDz),
      dtheta: aDfDtheta.map((g) => tf.neg(g)),
    };
  });
}

/**
 * The augmented dynamics of the adjoint method at time t: f(t, z),
 * -a^T df/dz and -a^T df/dtheta, the last two as vector-Jacobian products
 * from one reverse-mode pass through f (cost ~ one evaluation plus its
 * backward). `params` are the variables f reads (e.g.
 * `trainableVariables(model)`); a parameter f does not use gets zeros.
 * Returns new tensors (caller disposes).
 *
 * @throws ArgumentError when z, a or params are not float32 tensors of matching shapes
 */
export function adjointDynamics(
  f: VectorField,
  t: number,
  z: tf.Tensor,
  a: tf.Tensor,
  params: tf.Tensor[],
): AdjointDynamics {
  const where = "adjointDynamics";
  if (typeof f !== "function") {
    throw new ArgumentError(where, "f must be a function (t, z) => tf.Tensor");
  }
  checkNumber(where, "t", t);
  checkTensor(where, "z", z, { dtype: "float32" });
  checkTensor(where, "a", a, { shape: z.shape, dtype: "float32" });
  checkParams(where, params);
  return augmentedDynamics(f, t, z, a, params);
}

/**
 * The backward pass of the adjoint method over the output times t_0..t_N:
 * start from a_z(t_N) = dL/dz(t_N) and a_theta = 0, solve the augmented
 * system from each output time back to the one before, and add there
 * dL/dz(t_{i-1}), the loss's direct dependence on that state. Returns
 * a_z(t_0) = dL/dz_0 and a_theta(t_0) = dL/dtheta.
 */
function adjointBackward(
  solveBack: (start: State, from: number, to: number) => State,
  zs: tf.Tensor[],
  dLdz: tf.Tensor[],
  times: number[],
  params: tf.Tensor[],
): { gradY0: tf.Tensor; gradParams: tf.Tensor[] } {
  const n = times.length;
  let a = dLdz[n - 1];
  let aTheta = params.map((p) => tf.zerosLike(p));
  for (let i = n - 1; i >= 1; i--) {
    // z starts again from the stored forward state z(t_i) instead of the
    // end of the previous backward solve, which has drifted from it.
    const [, aEnd, ...thetaEnd] = solveBack(
      [zs[i], a, ...aTheta],
      times[i],
      times[i - 1],
    );
    a = tf.add(aEnd, dLdz[i - 1]);
    aTheta = thetaEnd;
  }
  return { gradY0: a, gradParams: aTheta };
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
 * the adjoint method: solve forward without recording a tape and keep only
 * the states z(t_i) at the output times, compute a_z(t_i) = dL/dz(t_i)
 * there, then solve the augmented system
 *
 *   d/dt [z, a_z, a_theta] = [f(t, z), -a_z^T df/dz, -a_z^T df/dtheta]
 *
 * backward from each output time to the one before with the same solver,
 * restarting z from the stored z(t_i) and adding dL/dz(t_i) to a_z at each
 * output time. Memory is independent of the number of solver steps: the
 * solver's internal steps are never kept, only the states at the output
 * times (a tape would keep every step).
 *
 * `loss` receives the states [ts.length, ...y0.shape] and returns a scalar;
 * `params` are the variables f reads (e.g. `trainableVariables(model)`).
 * With a fixed-step method the backward solve uses the same grid as the
 * forward one.
 *
 * @throws ArgumentError for bad arguments, options, or a loss that is not a scalar
 * @throws OdeSolverError when a solve fails (see `odeint`)
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
  const states = stackedSolve(where, f, y, times, o, forward);
  // The right-hand side does not depend on a_theta itself.
  const augmented: Field = (t, [z, a]) => {
    backward.nfe++;
    const d = augmentedDynamics(f, t, z, a, params);
    return [d.dz, d.da, ...d.dtheta];
  };
  let lossValue = NaN;
  try {
    // One tidy frees the per-interval adjoints and the stored-state rows.
    const [gradY0, ...gradParams] = tf.tidy(() => {
      const { value, grads } = gradientsOf(() => {
        const l = loss(states);
        if (!(l instanceof tf.Tensor) || l.rank !== 0) {
          throw new ArgumentError(
            where,
            `loss(states) must return a scalar tf.Tensor, got ${
              l instanceof tf.Tensor ? `shape [${l.shape.join(", ")}]` : l
            }`,
          );
        }
        return l;
      }, [states]);
      lossValue = value.dataSync()[0];
      if (!Number.isFinite(lossValue)) {
        // Its gradients would be NaN everywhere, and the backward solve garbage.
        throw new ArgumentError(
          where,
          `loss(states) must be finite, got ${lossValue}`,
        );
      }
      const solveBack = (start: State, from: number, to: number) =>
        solve(where, augmented, start, [from, to], o, backward)[1];
      const r = adjointBackward(
        solveBack,
        tf.unstack(states),
        tf.unstack(grads[0]),
        times,
        params,
      );
      return [r.gradY0, ...r.gradParams];
    });
    return {
      loss: lossValue,
      states,
      gradY0,
      gradParams,
      stats: { forward, backward },
    };
  } catch (e) {
    states.dispose();
    throw e;
  }
}

// ---------------------------------------------------------------------------
// Residual networks and neural vector fields

/**
 * A residual network z_{k+1} = z_k + dt * g_k(z_k) for k = 0..blocks.length-1:
 * exactly Euler's method on dz/dt = g_{floor(t)}(z) with step dt (dt = 1 is
 * the usual residual network). Returns every hidden state stacked,
 * [blocks.length + 1, ...x.shape] (a new tensor; caller disposes).
 *
 * @throws ArgumentError for bad blocks, x or options, or a block that changes the shape
 */
export function residualNetwork(
  blocks: ((z: tf.Tensor) => tf.Tensor)[],
  x: tf.Tensor,
  options: { dt?: number } = {},
): tf.Tensor {
  const where = "residualNetwork";
  const { dt = 1 } = checkOptions(where, options, ["dt"]);
  if (!Array.isArray(blocks) || blocks.some((b) => typeof b !== "function")) {
    throw new ArgumentError(
      where,
      "blocks must be an array of functions z => tf.Tensor",
    );
  }
  checkTensor(where, "x", x, { dtype: "float32" });
  checkNumber(where, "options.dt", dt, { min: 0, minExclusive: true });
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

/** Options of `neuralVectorField`. */
export interface NeuralVectorFieldOptions {
  /** Feed t to the model as an extra last input column (default false). */
  time?: boolean;
  /** Transforms y before the model (e.g. `y => tf.pow(y, 3)`); default none. */
  features?: (y: tf.Tensor) => tf.Tensor;
}

function fieldOptionsOf(
  where: string,
  options: NeuralVectorFieldOptions | undefined,
): { time: boolean; features?: (y: tf.Tensor) => tf.Tensor } {
  const { time = false, features } = checkOptions(where, options, [
    "time",
    "features",
  ]);
  checkBoolean(where, "options.time", time);
  if (features !== undefined && typeof features !== "function") {
    throw new ArgumentError(
      where,
      "options.features must be a function y => tf.Tensor",
    );
  }
  return { time, features };
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
 *
 * @throws ArgumentError for a model that is not a tf.LayersModel or bad options
 */
export function neuralVectorField(
  model: tf.LayersModel,
  options: NeuralVectorFieldOptions = {},
): VectorField {
  const where = "neuralVectorField";
  const { time, features } = fieldOptionsOf(where, options);
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
// A neural ODE fitted to an observed trajectory

/** Options of `NeuralODE`. */
export interface NeuralODEOptions {
  /**
   * Layer sizes of the network f_theta, e.g. [2, 50, 2]: the first is the
   * size of its input (the state after `features`, plus 1 with `time`),
   * the last the size of the state. Required.
   */
  sizes: number[];
  /** Hidden activation (default "tanh"). */
  activation?: Activation;
  /** Transforms the state before the network, e.g. `y => tf.pow(y, 3)` (default none). */
  features?: (y: tf.Tensor) => tf.Tensor;
  /** Feed t to the network as an extra input (default false). */
  time?: boolean;
  /**
   * The times of the rows of a training window, relative to its start:
   * `loss(windows)` compares the solution at these times with the window's
   * rows (at least 2, strictly monotone). Required.
   */
  windowTimes: number[];
  /** Solver of the training windows (default "rk4"). */
  method?: OdeMethod;
  /** Largest fixed step (default: one step per observation interval). */
  step?: number;
  /** Seed of the initial weights (default 0). */
  seed?: number;
}

/**
 * A neural ODE dy/dt = f_theta(t, y), an MLP, fitted to an observed
 * trajectory (Chen et al., 2018): a training batch is a set of windows of
 * consecutive observations, [batch, windowTimes.length, d]; the model
 * starts from each window's first row, solves through `windowTimes`, and
 * `loss` is the mean absolute difference to the observed rows,
 * differentiated through the solver. Follows the `Trainable` contract:
 * train it with `trainStep(model, optimizer, windows)`. `dispose()` frees
 * the network.
 *
 * @example
 * const model = new NeuralODE({ sizes: [2, 50, 2], windowTimes: [0, 0.1, 0.2] });
 * const metrics = trainStep(model, tf.train.rmsprop(1e-3), windows); // { loss }
 */
export class NeuralODE implements Trainable<tf.Tensor> {
  /** The network f_theta (owned: `dispose()` frees it). */
  readonly net: tf.Sequential;
  /** The learned vector field f(t, y) built on `net`, for `odeint`. */
  readonly field: VectorField;
  /** The times of a training window's rows. */
  readonly windowTimes: readonly number[];
  /** Size of the state. */
  readonly dim: number;
  readonly #solver: OdeintOptions;

  /** Builds the network; every option is checked first. */
  constructor(options: NeuralODEOptions) {
    const where = "NeuralODE";
    if (options === undefined) {
      throw new ArgumentError(
        where,
        "options { sizes, windowTimes } are required",
      );
    }
    const o = checkOptions(where, options, [
      "sizes",
      "activation",
      "features",
      "time",
      "windowTimes",
      "method",
      "step",
      "seed",
    ]);
    if (!Array.isArray(o.sizes) || o.sizes.length < 2) {
      throw new ArgumentError(
        where,
        "options.sizes must list the network's layer sizes, e.g. [2, 50, 2]",
      );
    }
    o.sizes.forEach((s, i) =>
      checkInteger(where, `options.sizes[${i}]`, s, { min: 1 })
    );
    const times = validateTimes(where, o.windowTimes, "windowTimes");
    if (times.length < 2) {
      throw new ArgumentError(where, "options.windowTimes needs >= 2 times");
    }
    const method = checkChoice(
      where,
      "options.method",
      o.method ?? "rk4",
      ODE_METHODS,
    );
    this.#solver = { method };
    if (o.step !== undefined) {
      this.#solver.step = checkNumber(where, "options.step", o.step, {
        min: 0,
        minExclusive: true,
      });
    }
    const seed = checkNumber(where, "options.seed", o.seed ?? 0);
    const activation = checkChoice(
      where,
      "options.activation",
      o.activation ?? "tanh",
      ACTIVATIONS,
    );
    const fieldOptions = fieldOptionsOf(where, {
      time: o.time,
      features: o.features,
    });
    this.dim = o.sizes[o.sizes.length - 1];
    this.windowTimes = Object.freeze(times);
    this.net = mlp(o.sizes, { activation, seed, name: "neural_ode" });
    this.field = neuralVectorField(this.net, fieldOptions);
  }

  /** The network's weights and biases. */
  trainableVariables(): tf.Variable[] {
    return trainableVariables(this.net);
  }

  /**
   * The mean absolute difference between the solutions started at each
   * window's first row and the window's rows (windows: [batch, T, d] with
   * T = windowTimes.length; a new scalar in `total`).
   */
  loss(windows: tf.Tensor): LossTerms {
    this.#checkWindows("NeuralODE.loss", windows);
    // tidy: a solver failure must not leave the transposed windows behind.
    return tf.tidy(() => {
      const observed = tf.transpose(windows, [1, 0, 2]); // time first, as odeint
      const y0 = tf.gather(observed, 0);
      const predicted = odeint(this.field, y0, this.windowTimes, this.#solver);
      return {
        total: tf.mean(tf.abs(tf.sub(predicted, observed))) as tf.Scalar,
      };
    });
  }

  #checkWindows(where: string, windows: unknown): void {
    checkTensor(where, "windows", windows, {
      shape: [null, this.windowTimes.length, this.dim],
      dtype: "float32",
    });
    if ((windows as tf.Tensor).shape[0] === 0) {
      throw new ArgumentError(where, "windows is an empty batch");
    }
    checkFinite(where, "windows", windows as tf.Tensor);
  }

  /** Frees the network. */
  dispose(): void {
    this.net.dispose();
  }
}

// ---------------------------------------------------------------------------
// A neural ODE classifier

/** Options of `OdeClassifier`. */
export interface OdeClassifierOptions {
  /** Size of an input point (default 2). */
  inputDim?: number;
  /** Number of classes (default 2). */
  numClasses?: number;
  /** Hidden units of the vector field, an MLP [dim + 1, hidden, dim] with tanh fed (z, t). Default 32. */
  hidden?: number;
  /**
   * Extra coordinates, all zero at t = 0, appended to each point before the
   * flow (an augmented neural ODE): with none the flow is a continuous
   * deformation of the plane itself. Default 0.
   */
  augment?: number;
  /** RK4 steps over [0, 1] (default 4); training, `flow` and predictions use the same grid. */
  solverSteps?: number;
  /** Seed of the initial weights (default 0). */
  seed?: number;
}

/** A batch of an `OdeClassifier`: points [n, inputDim] (float32) and their labels [n] (int32), as `batchSampler([points, labels], ...)` gives. */
export type LabeledPoints = [tf.Tensor2D, tf.Tensor1D];

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
 * by a linear readout softmax(z(1) W + b). Follows the `Trainable` contract:
 * `loss([points, labels])` is the mean cross-entropy (and the accuracy as a
 * term), trained with `trainStep`. Owns the network and the readout;
 * `dispose()` frees them.
 *
 * @example
 * const { points, labels } = makeMoons(256, { noise: 0.1 });
 * const clf = new OdeClassifier({ seed: 0 });
 * const optimizer = adam(1e-2);
 * const history = await trainLoop(() => trainStep(clf, optimizer, [points, labels]), { steps: 300 });
 * clf.flow(points, [0, 0.5, 1]); // positions at each time, number[][][]
 */
export class OdeClassifier implements Trainable<LabeledPoints> {
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
  readonly #w: tf.Variable;
  readonly #b: tf.Variable;

  /** Builds the network and the readout; every option is checked first. */
  constructor(options: OdeClassifierOptions = {}) {
    const where = "OdeClassifier";
    const o = checkOptions(where, options, [
      "inputDim",
      "numClasses",
      "hidden",
      "augment",
      "solverSteps",
      "seed",
    ]);
    this.inputDim = checkInteger(where, "options.inputDim", o.inputDim ?? 2, {
      min: 1,
    });
    this.numClasses = checkInteger(
      where,
      "options.numClasses",
      o.numClasses ?? 2,
      { min: 2 },
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
    const seed = checkNumber(where, "options.seed", o.seed ?? 0);
    this.dim = this.inputDim + this.augment;
    this.net = mlp([this.dim + 1, hidden, this.dim], {
      activation: "tanh",
      seed,
      name: "ode_classifier",
    });
    this.field = neuralVectorField(this.net, { time: true });
    const k = this.numClasses;
    [this.#w, this.#b] = tf.tidy(() => [
      tf.variable(glorotUniform([this.dim, k], { seed: seed * 1000 + 500 })),
      tf.variable(tf.zeros([k])),
    ]);
  }

  /** The network's weights and biases, then the readout's W and b. */
  trainableVariables(): tf.Variable[] {
    return [...trainableVariables(this.net), this.#w, this.#b];
  }

  /**
   * The mean softmax cross-entropy of the batch (`total`) and, as a term to
   * watch, the fraction of points whose largest logit is their label
   * (`accuracy`): new scalars.
   */
  loss(batch: LabeledPoints): LossTerms {
    const [points, labels] = this.#checkBatch("OdeClassifier.loss", batch);
    const logits = this.#logits(points);
    const targets = tf.cast(tf.oneHot(labels, this.numClasses), "float32");
    const correct = tf.equal(tf.argMax(logits, 1), labels);
    return {
      total: tf.losses.softmaxCrossEntropy(targets, logits) as tf.Scalar,
      terms: { accuracy: tf.mean(tf.cast(correct, "float32")) as tf.Scalar },
    };
  }

  /** z(1) W + b: lift each point to z(0) = [x, 0...0], flow it to t = 1, read out. */
  #logits(points: tf.Tensor2D): tf.Tensor2D {
    const z1 = tf.gather(this.#solve(this.#lift(points), [0, 1]), 1);
    return tf.add(tf.matMul(z1 as tf.Tensor2D, this.#w), this.#b);
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

  #checkBatch(where: string, batch: unknown): LabeledPoints {
    if (!Array.isArray(batch) || batch.length !== 2) {
      throw new ArgumentError(
        where,
        "batch must be [points, labels]: a float32 [n, inputDim] tensor and an int32 [n] tensor",
      );
    }
    const [points, labels] = batch;
    checkTensor(where, "points", points, {
      shape: [null, this.inputDim],
      dtype: "float32",
    });
    const n = points.shape[0];
    if (n === 0) throw new ArgumentError(where, "the batch is empty");
    checkFinite(where, "points", points);
    checkTensor(where, "labels", labels, { shape: [n], dtype: "int32" });
    this.#checkLabelValues(where, labels.dataSync());
    return [points, labels];
  }

  #checkLabelValues(where: string, labels: ArrayLike<number>): void {
    for (let i = 0; i < labels.length; i++) {
      const c = labels[i];
      if (!Number.isInteger(c) || c < 0 || c >= this.numClasses) {
        throw new ArgumentError(
          where,
          `labels must be classes 0..${
            this.numClasses - 1
          }, but labels[${i}] is ${c}`,
        );
      }
    }
  }

  /** `points` as a float32 matrix; call inside a tidy (it may make a tensor). */
  #input(where: string, points: unknown): tf.Tensor2D {
    const { matrix } = toMatrix(where, "points", points);
    if (matrix.shape[1] !== this.inputDim) {
      throw new ArgumentError(
        where,
        `points must have ${this.inputDim} columns, got ${matrix.shape[1]}`,
      );
    }
    return matrix;
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
      const z0 = this.#lift(this.#input(where, points));
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
   * Fraction of `points` whose most probable class is their label (an int32
   * tensor or a number[] of classes 0..numClasses-1). A plain number.
   */
  accuracy(
    points: tf.Tensor2D | number[][],
    labels: tf.Tensor1D | number[],
  ): number {
    const where = "OdeClassifier.accuracy";
    return tf.tidy(() => {
      const x = this.#input(where, points);
      const n = x.shape[0];
      let y: tf.Tensor;
      if (labels instanceof tf.Tensor) {
        y = checkTensor(where, "labels", labels, { rank: 1, dtype: "int32" });
        this.#checkLabelValues(where, y.dataSync());
      } else if (Array.isArray(labels)) {
        this.#checkLabelValues(where, labels);
        y = tf.tensor1d(labels, "int32");
      } else {
        throw new ArgumentError(
          where,
          "labels must be an int32 tensor or a number[] of classes",
        );
      }
      if (y.shape[0] !== n) {
        throw new ArgumentError(
          where,
          `labels must have one entry per point (${n}), got ${y.shape[0]}`,
        );
      }
      const pred = tf.argMax(this.#logits(x), 1);
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

  /** Frees the network and the readout. */
  dispose(): void {
    this.net.dispose();
    tf.dispose([this.#w, this.#b]);
  }
}
