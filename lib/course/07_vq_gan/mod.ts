/**
 * Code used only by notebooks/07_vq_gan.ipynb: its experiment helpers
 * (`experiments.ts`: a copy of a trained VQ-VAE, sharpness, reconstruction
 * scores, token grids, rates) and its charts (`figures.ts`). Reusable ideas
 * live in lib/vqgan.ts, lib/transformer.ts and lib/vqvae2.ts.
 *
 * @module
 */
export * from "./experiments.ts";
export * from "./figures.ts";
