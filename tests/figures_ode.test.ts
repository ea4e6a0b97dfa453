import { initBackend } from "../lib/backend.ts";
import { ArgumentError } from "../lib/validate.ts";
import type { OdeStats } from "../lib/ode.ts";
import {
  adjointCostFigure,
  odeConvergenceFigure,
  odeDecayFigure,
  odeDecisionFigure,
  odeFlowFigure,
  odeOscillatorFigure,
  odeToleranceFigure,
  spiralFieldsFigure,
  spiralFitFigure,
  spiralLossFigure,
  vanDerPolFigure,
} from "../lib/figures/ode.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { assertTitled, count, markGroups } from "./svg.ts";

await initBackend({ quiet: true });

const ts = [0, 0.5, 1, 1.5];

Deno.test("odeDecayFigure: one line per solver plus the exact curve", () => {
  const paths = { euler: ts.map((t) => [1 - t / 2]), rk4: ts.map(() => [1]) };
  const svg = odeDecayFigure(ts, ts.map((t) => Math.exp(-t)), paths, {
    step: 0.5,
  }).svg();
  assertTitled(svg, ["Exponential decay y' = -y with step h = 0.5"], [
    "y(t)",
  ]);
  assertEquals(count(markGroups(svg, "line"), /<path\b/g), 3);
  for (const name of ["exact", "euler", "rk4"]) {
    assert(svg.includes(`>${name}</text>`), `legend entry ${name}`);
  }
  assertThrows(
    () => odeDecayFigure(ts, [1, 1, 1, 1], { euler: [[1]] }, { step: 0.5 }),
    ArgumentError,
    "paths.euler",
  );
  assertThrows(
    () => odeDecayFigure([], [], {}, { step: 0.5 }),
    ArgumentError,
    "ts",
  );
});

Deno.test("odeOscillatorFigure: phase orbits and energy, two lines each", () => {
  const path = (r: number) =>
    ts.map((t) => [r * Math.cos(t), -r * Math.sin(t)]);
  const svg = odeOscillatorFigure(ts, { euler: path(1.1), rk4: path(1) }, {
    step: 0.5,
  }).svg();
  assertTitled(svg, [
    "Euler gains energy on the oscillator, RK4 conserves it",
    "Phase plane, h = 0.5, t ∈ [0, 1.5]",
    "Energy ½(x² + v²) (exact: 0.5)",
  ], ["energy"]);
  // 2 orbits + 2 energy curves.
  assertEquals(count(markGroups(svg, "line"), /<path\b/g), 4);
  assertThrows(
    () => odeOscillatorFigure(ts, { rk4: ts.map(() => [1]) }, { step: 0.5 }),
    ArgumentError,
    "paths.rk4",
  );
});

Deno.test("odeConvergenceFigure: a dot per measurement, slopes in the subtitle", () => {
  const rows = [
    { method: "euler" as const, h: 0.1, error: 0.1 },
    { method: "euler" as const, h: 0.05, error: 0.05 },
    { method: "rk4" as const, h: 0.4, error: 1e-3 },
    { method: "rk4" as const, h: 0.2, error: 6e-5 },
  ];
  const svg = odeConvergenceFigure({ rows, slopes: { euler: 1, rk4: 4.06 } })
    .svg();
  assertTitled(svg, [
    "Global error at t = 10 vs step size (oscillator)",
    "euler: slope 1.00 · rk4: slope 4.06",
  ], ["step size h", "|error|"]);
  assertEquals(count(markGroups(svg, "dot"), /<circle\b/g), 4);
  assertEquals(count(markGroups(svg, "line"), /<path\b/g), 2);
  assertThrows(
    () => odeConvergenceFigure({ rows: [], slopes: {} }),
    ArgumentError,
    "rows",
  );
});

const stats: OdeStats = {
  method: "dopri5",
  nfe: 20,
  accepted: 3,
  rejected: 1,
  stepTimes: [0, 0.5, 1],
  stepSizes: [0.5, 0.5, 0.5],
  rejectedTimes: [0.5],
  rejectedSizes: [1],
  peakBytes: 0,
  refinements: 0,
};

Deno.test("vanDerPolFigure: the solution and one dot per attempted step", () => {
  const svg = vanDerPolFigure(ts, ts.map((t) => [Math.cos(t), 0]), stats, {
    mu: 3,
    rtol: 1e-5,
  }).svg();
  assertTitled(svg, [
    "Adaptive steps follow the difficulty of the trajectory",
    "Van der Pol, μ = 3",
    "dopri5 step sizes (rtol 1e-5)",
  ], ["step size"]);
  assertEquals(count(markGroups(svg, "dot"), /<circle\b/g), 4);
  assertEquals(count(markGroups(svg, "line"), /<path\b/g), 1);
  assertThrows(
    () => vanDerPolFigure(ts, [[1]], stats, { mu: 3, rtol: 1e-5 }),
    ArgumentError,
    "states",
  );
});

Deno.test("odeToleranceFigure: nfe and error against rtol", () => {
  const rows = [1e-2, 1e-3, 1e-4].map((rtol, i) => ({
    rtol,
    atol: rtol / 100,
    nfe: 50 * (i + 1),
    err: rtol / 3,
  }));
  const svg = odeToleranceFigure(rows, { problem: "Decay" }).svg();
  assertTitled(svg, [
    "Decay: cost and accuracy of dopri5",
    "Evaluations of f vs rtol",
    "Achieved error vs rtol",
  ], ["nfe", "error"]);
  // nfe; max |error| and the rtol reference line.
  assertEquals(count(markGroups(svg, "line"), /<path\b/g), 3);
  assertThrows(
    () => odeToleranceFigure([], { problem: "x" }),
    ArgumentError,
    "rows",
  );
});

Deno.test("spiralLossFigure, spiralFitFigure and spiralFieldsFigure", () => {
  const loss = spiralLossFigure({ step: [0, 10, 20], loss: [1, 0.5, 0.1] })
    .svg();
  assertTitled(loss, ["Training loss"], ["mean |prediction - data|"]);
  assertEquals(count(markGroups(loss, "line"), /<path\b/g), 1);
  assertThrows(
    () => spiralLossFigure(null as never),
    ArgumentError,
    "history",
  );

  const truth = ts.map((t) => [Math.cos(t), Math.sin(t)]);
  const fit = spiralFitFigure(
    ts,
    truth,
    truth.map(([a, b]) => [a, b * 0.9]),
    0.0123,
  )
    .svg();
  assertTitled(fit, [
    "True vs learned spiral (trajectory MSE 1.23e-2)",
    "Phase portrait",
    "Components over time",
  ], ["y₁", "state"]);
  // 2 phase curves + 4 component curves.
  assertEquals(count(markGroups(fit, "line"), /<path\b/g), 6);
  assertThrows(
    () => spiralFitFigure(ts, truth, truth.slice(1), 0),
    ArgumentError,
    "learnedStates",
  );

  const grid = [[0, 0], [1, 0], [0, 1]];
  const fields = spiralFieldsFigure(grid, [[1, 0], [0, 1], [1, 1]], [
    [1, 0],
    [0, 1],
    [0.5, 1],
  ]).svg();
  assertTitled(fields, [
    "Vector fields (arrow length ∝ speed)",
    "True field y³A",
    "Learned field MLP(y³)",
  ]);
  assertEquals(count(markGroups(fields, "vector"), /<path\b/g), 6);
  assertThrows(
    () => spiralFieldsFigure(grid, [[1, 0]], grid),
    ArgumentError,
    "vectors",
  );
});

Deno.test("adjointCostFigure: memory and time, backprop and adjoint", () => {
  const rows = [10, 40].map((n) => ({
    n,
    tapeKB: 76 * n,
    adjointKB: 3,
    backpropMs: 2 * n,
    adjointMs: 2.2 * n,
  }));
  const svg = adjointCostFigure(rows).svg();
  assertTitled(svg, [
    "Backprop through the solver vs the adjoint method",
    "Memory vs steps",
    "Time vs steps",
  ], ["RK4 steps", "peak extra memory (KB)", "milliseconds"]);
  assertEquals(count(markGroups(svg, "line"), /<path\b/g), 4);
  assertThrows(() => adjointCostFigure([]), ArgumentError, "rows");
});

Deno.test("odeFlowFigure: one panel per time, every point in each, the readout line last", () => {
  const times = [0, 0.5, 1];
  const base = [[0, 0], [1, 0.5], [2, -1], [0.5, 0.5]];
  const positions = times.map((t) => base.map(([x, y]) => [x * (1 + t), y]));
  const labels = [0, 1, 1, 0];
  const readout = { weights: [[1, -1], [0, 0.5]], bias: [0, 0.2] };
  const svg = odeFlowFigure(times, positions, labels, { readout }).svg();
  assertTitled(svg, [
    "The flow carries the two classes apart",
    "red: class 0, blue: class 1; each panel on its own scale; black line: the readout's decision boundary",
    "t = 0",
    "t = 0.5",
    "t = 1",
  ], ["z₁", "z₂"]);
  assertEquals(count(markGroups(svg, "dot"), /<circle\b/g), 12);
  // Class colours: the red and blue ends of the probability scale.
  assertEquals(count(svg, /fill="#b2182b"/g), 6);
  assertEquals(count(svg, /fill="#2166ac"/g), 6);
  assertEquals(count(markGroups(svg, "line"), /<path\b/g), 1);
  // Without a readout: no line.
  const plain = odeFlowFigure(times, positions, labels).svg();
  assert(!plain.includes('aria-label="line"'), "no decision line");
  assertThrows(
    () => odeFlowFigure(times, positions.slice(1), labels),
    ArgumentError,
    "positions",
  );
  assertThrows(
    () => odeFlowFigure(times, positions, [0, 1]),
    ArgumentError,
    "labels",
  );
  assertThrows(
    () =>
      odeFlowFigure(times, positions, labels, {
        readout: { weights: [[1, 2, 3], [4, 5, 6]], bias: [0, 0, 0] },
      }),
    ArgumentError,
    "readout",
  );
});

Deno.test("odeDecisionFigure: probability contours, the 0.5 curve and the points", () => {
  const n = 5;
  const grid = Array.from(
    { length: n * n },
    (_, i) => [i % n, Math.floor(i / n)],
  );
  // P(class 1) rises from left to right: the 0.5 level is the line x = 2.
  const probs = grid.map(([x]) => x / (n - 1));
  const points = [[0.5, 1], [3.5, 2], [3, 3]];
  const svg = odeDecisionFigure(grid, probs, points, [0, 1, 1], {
    accuracy: 1,
    testAccuracy: 0.9876,
  }).svg();
  assertTitled(svg, [
    "Decision regions of the neural ODE classifier",
    "training accuracy 100.0% · test accuracy 98.8%",
  ], ["x₁", "x₂", "P(class 1)"]);
  // Filled bands and the one 0.5 contour.
  const contours = markGroups(svg, "contour");
  assert(count(contours, /<path\b/g) >= 3, "several probability bands");
  assertEquals(count(svg, /stroke="black"/g), 1);
  assertEquals(count(markGroups(svg, "dot"), /<circle\b/g), 3);
  assertThrows(
    () =>
      odeDecisionFigure(grid.slice(1), probs.slice(1), points, [0, 1, 1], {
        accuracy: 1,
      }),
    ArgumentError,
    "square grid",
  );
  assertThrows(
    () =>
      odeDecisionFigure(grid, probs.map((p) => 2 * p), points, [0, 1, 1], {
        accuracy: 1,
      }),
    ArgumentError,
    "probabilities",
  );
  assertThrows(
    () => odeDecisionFigure(grid, probs, points, [0, 1, 1], { accuracy: 2 }),
    ArgumentError,
    "accuracy",
  );
  assertThrows(
    () => odeDecisionFigure(grid, probs, points, [0, 1], { accuracy: 1 }),
    ArgumentError,
    "labels",
  );
});
