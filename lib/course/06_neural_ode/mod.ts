/**
 * Code used only by notebooks/06_neural_ode.ipynb: its experiments (solutions
 * as plain rows, convergence and tolerance studies, trajectory windows, the
 * cost of backprop against the adjoint) and its figures. The reusable ideas
 * (odeint, odeintAdjoint, NeuralODE, OdeClassifier, ...) live in lib/ode.ts
 * and are exported by lib/mod.ts.
 *
 * @module
 */
export * from "./experiments.ts";
export * from "./figures.ts";
