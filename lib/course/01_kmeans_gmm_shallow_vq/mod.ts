/**
 * Code used only by notebooks/01_kmeans_gmm_shallow_vq.ipynb: its
 * experiments (loops over `kmeans` settings that return plain numbers) and
 * its figures. The ideas themselves (`quantize`, `kmeans`, `fitGMM`,
 * `sampleGMM`, ...) live in lib/vq.ts and lib/gmm.ts and are exported by
 * lib/mod.ts.
 *
 * @module
 */
export * from "./experiments.ts";
export * from "./figures.ts";
