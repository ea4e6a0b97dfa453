/**
 * Code used only by notebooks/04_gumbel_softmax_dvae.ipynb: its experiment helpers and figures.
 * Reusable ideas live in lib/<idea>.ts and are exported by lib/mod.ts.
 *
 * @module
 */
export {};
