/**
 * Code used only by notebooks/06_neural_ode.ipynb: its experiment helpers and figures.
 * Reusable ideas live in lib/<idea>.ts and are exported by lib/mod.ts.
 *
 * @module
 */
export {};
