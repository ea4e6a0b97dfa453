/**
 * Figures of notebook 06 (ODE solvers, neural ODEs, the adjoint method):
 * each function turns the plain results of lib/ode.ts and ./experiments.ts
 * into one titled, labelled `Chart`, so the notebook cells show the solver
 * calls and not the plot options. Inputs are plain numbers; nothing is
 * disposed.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import {
  type Chart,
  lineChart,
  plot,
  row,
  trainingCurves,
  vectorField,
} from "../../plot.ts";
import { ArgumentError, checkOptions } from "../../validate.ts";
import type { OdeStats } from "../../ode.ts";
import type {
  ConvergenceRow,
  GradientCostRow,
  ToleranceRow,
} from "./experiments.ts";

/** Throws unless `rows` is a non-empty number[][] with `want` rows of at least `width` values. */
function checkRows(
  where: string,
  name: string,
  rows: unknown,
  want: number | undefined,
  width: number,
): number[][] {
  if (
    !Array.isArray(rows) || rows.length === 0 ||
    rows.some((r) =>
      !Array.isArray(r) || r.length < width ||
      r.some((v) => typeof v !== "number")
    )
  ) {
    throw new ArgumentError(
      where,
      `${name} must be a non-empty number[][] with rows of ${width}+ numbers`,
    );
  }
  if (want !== undefined && rows.length !== want) {
    throw new ArgumentError(
      where,
      `${name} has ${rows.length} rows but the times have ${want}`,
    );
  }
  return rows as number[][];
}

function checkTimes(where: string, ts: unknown): number[] {
  if (
    !Array.isArray(ts) || ts.length === 0 ||
    ts.some((t) => typeof t !== "number" || !Number.isFinite(t))
  ) {
    throw new ArgumentError(where, "ts must be a non-empty number[]");
  }
  return ts;
}

function checkPaths(
  where: string,
  paths: unknown,
  n: number,
  width: number,
): [string, number[][]][] {
  if (paths === null || typeof paths !== "object" || Array.isArray(paths)) {
    throw new ArgumentError(
      where,
      "paths must map solver names to number[][] (from odeintMethods)",
    );
  }
  const entries = Object.entries(paths as Record<string, unknown>);
  if (entries.length === 0) {
    throw new ArgumentError(where, "paths must hold at least one solver");
  }
  return entries.map((
    [name, p],
  ) => [name, checkRows(where, `paths.${name}`, p, n, width)]);
}

const short = (v: number) => String(+v.toPrecision(6));

/**
 * Scalar solutions of several solvers against the exact curve:
 * `paths` from `odeintMethods` (rows of length 1), `exact[i]` at `ts[i]`.
 */
export function odeDecayFigure(
  ts: number[],
  exact: number[],
  paths: Record<string, number[][]>,
  options: { step: number },
): Chart {
  const where = "odeDecayFigure";
  const { step } = checkOptions(where, options, ["step"]);
  checkTimes(where, ts);
  const lines = checkPaths(where, paths, ts.length, 1);
  return lineChart({
    exact,
    ...Object.fromEntries(lines.map(([m, p]) => [m, p.map((r) => r[0])])),
  }, {
    title: `Exponential decay y' = -y with step h = ${short(step)}`,
    x: ts,
    xLabel: "t",
    yLabel: "y(t)",
    legendLabel: "solver",
  });
}

/**
 * Harmonic oscillator runs ([x, v] rows per solver, from `odeintMethods`):
 * the orbits in the phase plane next to the energy ½(x² + v²) over time.
 */
export function odeOscillatorFigure(
  ts: number[],
  paths: Record<string, number[][]>,
  options: { step: number },
): Chart {
  const where = "odeOscillatorFigure";
  const { step } = checkOptions(where, options, ["step"]);
  checkTimes(where, ts);
  const lines = checkPaths(where, paths, ts.length, 2);
  const phaseRows = lines.flatMap(([method, path]) =>
    path.map(([x, v], i) => ({ method, x, v, i }))
  );
  const energy = Object.fromEntries(
    lines.map(([m, p]) => [m, p.map(([x, v]) => 0.5 * (x * x + v * v))]),
  );
  const span = `[${short(ts[0])}, ${short(ts[ts.length - 1])}]`;
  return row([
    plot({
      title: `Phase plane, h = ${short(step)}, t ∈ ${span}`,
      width: 360,
      height: 360,
      grid: true,
      x: { label: "x" },
      y: { label: "v" },
      color: { legend: true },
      marks: [
        Plot.line(phaseRows, {
          x: "x",
          y: "v",
          z: "method",
          stroke: "method",
          sort: "i",
        }),
      ],
    }),
    lineChart(energy, {
      title: "Energy ½(x² + v²) (exact: 0.5)",
      x: ts,
      xLabel: "t",
      yLabel: "energy",
      width: 420,
      height: 360,
      legendLabel: "solver",
    }),
  ], { title: "Euler gains energy on the oscillator, RK4 conserves it" });
}

/** Log-log error against step size per solver, with the fitted slopes as subtitle (`convergenceStudy`). */
export function odeConvergenceFigure(
  { rows, slopes }: {
    rows: ConvergenceRow[];
    slopes: Record<string, number>;
  },
): Chart {
  const where = "odeConvergenceFigure";
  if (!Array.isArray(rows) || rows.length === 0) {
    throw new ArgumentError(where, "rows must be a non-empty array");
  }
  return plot({
    title: "Global error at t = 10 vs step size (oscillator)",
    grid: true,
    width: 560,
    height: 380,
    subtitle: Object.entries(slopes).map(([m, s]) =>
      `${m}: slope ${s.toFixed(2)}`
    ).join(" · "),
    x: { type: "log", label: "step size h", tickFormat: "~g" },
    y: { type: "log", label: "|error|", tickFormat: "~e" },
    color: { legend: true, label: "solver" },
    marks: [
      Plot.line(rows, { x: "h", y: "error", stroke: "method" }),
      Plot.dot(rows, { x: "h", y: "error", fill: "method" }),
    ],
  });
}

/**
 * A Van der Pol solution x(t) (rows [x, v] at `ts`) next to the accepted
 * and rejected dopri5 step sizes of `stats`.
 */
export function vanDerPolFigure(
  ts: number[],
  states: number[][],
  stats: OdeStats,
  options: { mu: number; rtol: number },
): Chart {
  const where = "vanDerPolFigure";
  const { mu, rtol } = checkOptions(where, options, ["mu", "rtol"]);
  checkTimes(where, ts);
  checkRows(where, "states", states, ts.length, 1);
  if (!stats || !Array.isArray(stats.stepTimes)) {
    throw new ArgumentError(
      where,
      "stats must be the OdeStats of odeintWithStats",
    );
  }
  const steps = [
    ...stats.stepTimes.map((t, i) => ({
      t,
      h: stats.stepSizes[i],
      kind: "accepted",
    })),
    ...stats.rejectedTimes.map((t, i) => ({
      t,
      h: stats.rejectedSizes[i],
      kind: "rejected",
    })),
  ];
  return row([
    lineChart({ "x(t)": states.map((s) => s[0]) }, {
      title: `Van der Pol, μ = ${short(mu)}`,
      x: ts,
      xLabel: "t",
      yLabel: "x",
      width: 360,
      height: 300,
    }),
    plot({
      title: `dopri5 step sizes (rtol ${rtol.toExponential()})`,
      width: 360,
      height: 300,
      grid: true,
      x: { label: "t" },
      y: { type: "log", label: "step size", tickFormat: "~g" },
      color: { legend: true },
      marks: [Plot.dot(steps, { x: "t", y: "h", fill: "kind", r: 2.5 })],
    }),
  ], { title: "Adaptive steps follow the difficulty of the trajectory" });
}

/** Evaluations and achieved error of dopri5 against rtol (`toleranceStudy`). */
export function odeToleranceFigure(
  rows: ToleranceRow[],
  options: { problem: string },
): Chart {
  const where = "odeToleranceFigure";
  const { problem } = checkOptions(where, options, ["problem"]);
  if (!Array.isArray(rows) || rows.length === 0) {
    throw new ArgumentError(where, "rows must be a non-empty array");
  }
  const tols = rows.map((r) => r.rtol);
  const common = { x: tols, logX: true, logY: true, width: 340, height: 280 };
  return row([
    lineChart({ "dopri5": rows.map((r) => r.nfe) }, {
      title: "Evaluations of f vs rtol",
      xLabel: "rtol (atol = rtol / 100)",
      yLabel: "nfe",
      ...common,
    }),
    lineChart({ "max |error|": rows.map((r) => r.err), "rtol": tols }, {
      title: "Achieved error vs rtol",
      xLabel: "rtol",
      yLabel: "error",
      ...common,
    }),
  ], { title: `${problem}: cost and accuracy of dopri5` });
}

/**
 * The L1 window loss of the neural ODE per step, log scale (a `trainLoop`
 * history): each step sees other windows, so the raw curve is noisy; it is
 * drawn faintly behind its exponential moving average, as the other
 * training charts of the course.
 */
export function spiralLossFigure(
  history: { step: number[]; [metric: string]: number[] },
): Chart {
  if (
    !history || !Array.isArray(history.step) || !Array.isArray(history.loss)
  ) {
    throw new ArgumentError(
      "spiralLossFigure",
      "history must be a trainLoop history { step, loss }",
    );
  }
  return trainingCurves({ step: history.step, loss: history.loss }, {
    title: "Training loss (faint: per step; line: moving average)",
    xLabel: "step",
    yLabel: "mean |prediction - data|",
    logY: true,
    smooth: 0.9,
  });
}

/**
 * True against learned trajectory (rows [y₁, y₂] at `ts`): the phase
 * portrait and both components over time; `mse` goes into the title.
 */
export function spiralFitFigure(
  ts: number[],
  trueStates: number[][],
  learnedStates: number[][],
  mse: number,
): Chart {
  const where = "spiralFitFigure";
  checkTimes(where, ts);
  checkRows(where, "trueStates", trueStates, ts.length, 2);
  checkRows(where, "learnedStates", learnedStates, ts.length, 2);
  const trajRows = [
    ...trueStates.map(([x, y], i) => ({ x, y, i, which: "true" })),
    ...learnedStates.map(([x, y], i) => ({ x, y, i, which: "learned" })),
  ];
  return row([
    plot({
      title: "Phase portrait",
      width: 360,
      height: 360,
      grid: true,
      x: { label: "y₁" },
      y: { label: "y₂" },
      color: { legend: true },
      marks: [
        Plot.line(trajRows, {
          x: "x",
          y: "y",
          z: "which",
          stroke: "which",
          sort: "i",
        }),
      ],
    }),
    lineChart({
      "true y₁": trueStates.map((p) => p[0]),
      "learned y₁": learnedStates.map((p) => p[0]),
      "true y₂": trueStates.map((p) => p[1]),
      "learned y₂": learnedStates.map((p) => p[1]),
    }, {
      title: "Components over time",
      x: ts,
      xLabel: "t",
      yLabel: "state",
      width: 460,
      height: 360,
    }),
  ], {
    title: `True vs learned spiral (trajectory MSE ${mse.toExponential(2)})`,
  });
}

/**
 * The true and the learned vector field side by side on the same grid
 * points, on one colour and arrow-length scale (the faster field sets it),
 * so equal colours are equal speeds.
 */
export function spiralFieldsFigure(
  grid: number[][],
  trueField: number[][],
  learnedField: number[][],
): Chart {
  let fastest = 0;
  for (const field of [trueField, learnedField]) {
    if (!Array.isArray(field)) {
      throw new ArgumentError(
        "spiralFieldsFigure",
        "the fields must be number[][] (from fieldValues)",
      );
    }
    for (const [dx, dy] of field) {
      fastest = Math.max(fastest, Math.hypot(dx, dy));
    }
  }
  const common = { width: 380, height: 360, maxMagnitude: fastest || 1 };
  return row([
    vectorField(grid, trueField, { title: "True field y³A", ...common }),
    vectorField(grid, learnedField, {
      title: "Learned field MLP(y³)",
      ...common,
    }),
  ], { title: "Vector fields on one scale (arrow length and colour ∝ speed)" });
}

/** Memory and time of backprop through the solver against the adjoint (`gradientCost`). */
export function adjointCostFigure(rows: GradientCostRow[]): Chart {
  if (!Array.isArray(rows) || rows.length === 0) {
    throw new ArgumentError(
      "adjointCostFigure",
      "rows must be a non-empty array (from gradientCost)",
    );
  }
  const common = {
    x: rows.map((r) => r.n),
    logX: true,
    logY: true,
    xLabel: "RK4 steps",
    width: 360,
    height: 300,
    legendLabel: "gradient",
  };
  return row([
    lineChart({
      backprop: rows.map((r) => r.tapeKB),
      adjoint: rows.map((r) => r.adjointKB),
    }, {
      title: "Memory vs steps",
      yLabel: "peak extra memory (KB)",
      ...common,
    }),
    lineChart({
      backprop: rows.map((r) => r.backpropMs),
      adjoint: rows.map((r) => r.adjointMs),
    }, { title: "Time vs steps", yLabel: "milliseconds", ...common }),
  ], { title: "Backprop through the solver vs the adjoint method" });
}

// ---------------------------------------------------------------------------
// Neural ODE classifier

/** Class colours: red and blue, the two ends of the "RdBu" probability scale. */
const CLASS_COLORS = ["#b2182b", "#2166ac", "#1b9e77", "#d95f02", "#7570b3"];

function classColor(where: string, labels: unknown, n: number): string[] {
  if (
    !Array.isArray(labels) || labels.length !== n ||
    labels.some((c) =>
      !Number.isInteger(c) || c < 0 || c >= CLASS_COLORS.length
    )
  ) {
    throw new ArgumentError(
      where,
      `labels must hold one class 0..${
        CLASS_COLORS.length - 1
      } per point (${n})`,
    );
  }
  return labels.map((c) => CLASS_COLORS[c]);
}

function paddedExtent(values: number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (hi === lo) [lo, hi] = [lo - 1, hi + 1];
  const pad = 0.06 * (hi - lo);
  return [lo - pad, hi + pad];
}

/**
 * Snapshots of points flowing through a neural ODE classifier: one panel per
 * time (`positions[i]` from `OdeClassifier.flow` at `times[i]`, first two
 * coordinates), points coloured by `labels`. With `readout` (two classes)
 * the last panel also draws the linear decision line of the readout,
 * z (w₁ - w₀) + b₁ - b₀ = 0, which the flow has made separating.
 */
export function odeFlowFigure(
  times: number[],
  positions: number[][][],
  labels: number[],
  options: { readout?: { weights: number[][]; bias: number[] } } = {},
): Chart {
  const where = "odeFlowFigure";
  const { readout } = checkOptions(where, options, ["readout"]);
  checkTimes(where, times);
  if (!Array.isArray(positions) || positions.length !== times.length) {
    throw new ArgumentError(
      where,
      `positions must hold one snapshot per time (${times.length})`,
    );
  }
  const n = Array.isArray(positions[0]) ? positions[0].length : 0;
  positions.forEach((p, i) => checkRows(where, `positions[${i}]`, p, n, 2));
  classColor(where, labels, n);
  const classes = [...new Set(labels)].sort((a, b) => a - b);
  // One legend for the row goes in the subtitle: a legend in one panel
  // would push that panel down out of line with the others.
  const color = {
    type: "categorical" as const,
    domain: classes.map((c) => `class ${c}`),
    range: classes.map((c) => CLASS_COLORS[c]),
  };
  const names = ["red", "blue", "green", "orange", "purple"];
  const key = classes.map((c) => `${names[c]}: class ${c}`).join(", ");
  const panels = positions.map((snap, i) => {
    const rows = snap.map(([x, y], j) => ({ x, y, c: `class ${labels[j]}` }));
    const xd = paddedExtent(snap.map((p) => p[0]));
    const yd = paddedExtent(snap.map((p) => p[1]));
    const marks: Plot.Markish[] = [
      Plot.dot(rows, { x: "x", y: "y", fill: "c", r: 2, fillOpacity: 0.8 }),
    ];
    const last = i === positions.length - 1;
    if (last && readout) {
      const { weights: w, bias: b } = readout;
      if (
        !Array.isArray(w) || w.length < 2 || w.some((r) => r.length !== 2) ||
        !Array.isArray(b) || b.length !== 2
      ) {
        throw new ArgumentError(
          where,
          "readout must be a two-class readout { weights: [dim][2], bias: [2] }",
        );
      }
      // Where the two logits are equal: a z₁ + c z₂ + d = 0.
      const [a, c, d] = [w[0][1] - w[0][0], w[1][1] - w[1][0], b[1] - b[0]];
      const line = Math.abs(c) >= Math.abs(a)
        ? xd.map((x) => ({ x, y: -(a * x + d) / c }))
        : yd.map((y) => ({ x: -(c * y + d) / a, y }));
      marks.push(
        Plot.line(line, { x: "x", y: "y", stroke: "black", clip: true }),
      );
    }
    return plot({
      title: `t = ${short(times[i])}`,
      width: 210,
      height: 210,
      marginLeft: 36,
      grid: true,
      x: { domain: xd, label: "z₁", ticks: 4 },
      y: { domain: yd, label: "z₂", ticks: 4 },
      color,
      marks,
    });
  });
  return row(panels, {
    title: "The flow carries the two classes apart",
    subtitle: `${key}; each panel on its own scale` +
      (readout ? "; black line: the readout's decision boundary" : ""),
    gap: 8,
  });
}

/**
 * The classifier's decision in input space: P(class 1) on a square grid
 * (`grid` from `squareGrid`, x fastest; `probabilities[i]` at `grid[i]`)
 * as filled contours, the 0.5 level as a black curve, and the training
 * points coloured by class; `accuracy` (and `testAccuracy`, on held-out
 * points) go into the subtitle.
 */
export function odeDecisionFigure(
  grid: number[][],
  probabilities: number[],
  points: number[][],
  labels: number[],
  options: { accuracy: number; testAccuracy?: number },
): Chart {
  const where = "odeDecisionFigure";
  const { accuracy, testAccuracy } = checkOptions(where, options, [
    "accuracy",
    "testAccuracy",
  ]);
  checkRows(where, "grid", grid, undefined, 2);
  const side = Math.round(Math.sqrt(grid.length));
  if (side < 2 || side * side !== grid.length) {
    throw new ArgumentError(
      where,
      `grid must be a square grid of n² points (squareGrid), got ${grid.length}`,
    );
  }
  if (
    !Array.isArray(probabilities) || probabilities.length !== grid.length ||
    probabilities.some((p) => typeof p !== "number" || !(p >= 0 && p <= 1))
  ) {
    throw new ArgumentError(
      where,
      `probabilities must hold one value in [0, 1] per grid point (${grid.length})`,
    );
  }
  checkRows(where, "points", points, undefined, 2);
  const colors = classColor(where, labels, points.length);
  const fraction = (name: string, v: unknown) => {
    if (typeof v !== "number" || !(v >= 0 && v <= 1)) {
      throw new ArgumentError(where, `${name} must be a number in [0, 1]`);
    }
    return `${name === "accuracy" ? "training" : "test"} accuracy ${
      (100 * v).toFixed(1)
    }%`;
  };
  const subtitle = [
    fraction("accuracy", accuracy),
    ...(testAccuracy === undefined
      ? []
      : [fraction("testAccuracy", testAccuracy)]),
  ].join(" · ");
  const step = grid[1][0] - grid[0][0];
  const [x0, y0] = grid[0];
  const [xn, yn] = grid[grid.length - 1];
  const extent = {
    width: side,
    height: side,
    x1: x0 - step / 2,
    x2: xn + step / 2,
    y1: y0 - step / 2,
    y2: yn + step / 2,
  };
  const dots = points.map(([x, y], i) => ({ x, y, fill: colors[i] }));
  return plot({
    title: "Decision regions of the neural ODE classifier",
    subtitle,
    width: 460,
    height: 420,
    x: { domain: [extent.x1, extent.x2], label: "x₁" },
    y: { domain: [extent.y1, extent.y2], label: "x₂" },
    color: {
      type: "linear",
      scheme: "RdBu",
      domain: [0, 1],
      legend: true,
      label: "P(class 1)",
    },
    marks: [
      Plot.contour(probabilities, {
        ...extent,
        fill: Plot.identity,
        thresholds: 10,
        fillOpacity: 0.6,
        stroke: null,
      } as Plot.ContourOptions),
      Plot.contour(probabilities, {
        ...extent,
        thresholds: [0.5],
        stroke: "black",
        strokeWidth: 1.5,
        fill: null,
      } as Plot.ContourOptions),
      Plot.dot(dots, {
        x: "x",
        y: "y",
        fill: "fill",
        stroke: "white",
        strokeWidth: 0.5,
        r: 2.5,
      }),
    ],
  });
}
