/**
 * Code used only by notebooks/03_vq_vae.ipynb: its experiment helpers
 * (`experiments.ts`: model sizes, the straight-through check table, the 2-D
 * k-means demo, rate bounds, saving a run) and its charts (`figures.ts`).
 * Reusable ideas live in lib/<idea>.ts and are exported by lib/mod.ts.
 *
 * @module
 */
export * from "./experiments.ts";
export * from "./figures.ts";
