/**
 * Code used only by notebooks/01_kmeans_gmm_shallow_vq.ipynb: its experiment helpers and figures.
 * Reusable ideas live in lib/<idea>.ts and are exported by lib/mod.ts.
 *
 * @module
 */
export {};
