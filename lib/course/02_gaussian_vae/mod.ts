/**
 * Code used only by notebooks/02_gaussian_vae.ipynb: its experiment helpers
 * (./experiments.ts), the exactly solvable linear-Gaussian model
 * (./conjugate.ts) and figures (./figures.ts). Reusable ideas (the Gaussian
 * KL, reparameterization, the autoencoders and the VAE, PCA, the gradient
 * estimators) live in lib/vae.ts and are exported by lib/mod.ts.
 *
 * ```ts
 * import { betaSweep, rateDistortionChart } from "../lib/course/02_gaussian_vae/mod.ts";
 * ```
 *
 * @module
 */
export * from "./conjugate.ts";
export * from "./experiments.ts";
export * from "./figures.ts";
