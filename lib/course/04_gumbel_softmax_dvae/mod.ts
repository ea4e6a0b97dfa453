/**
 * Code used only by notebooks/04_gumbel_softmax_dvae.ipynb: its experiment
 * summaries (`experiments.ts`) and figures (`figures.ts`). The reusable
 * ideas live in lib/gumbel.ts and lib/dvae.ts and are exported by
 * lib/mod.ts.
 *
 * @module
 */
export * from "./experiments.ts";
export * from "./figures.ts";
