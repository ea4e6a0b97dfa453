/**
 * Code used only by notebooks/05_gan_nonsaturating.ipynb: its experiment
 * helpers (./experiments.ts: what one game needs, the optimal discriminator,
 * the generator-loss derivatives, the gradient norm reaching G, snapshots,
 * the sample-quality report) and its figures (./figures.ts). The reusable
 * ideas (the GAN losses and networks, `GAN` with its two `Trainable`
 * objectives, the Frechet distance, precision/recall and the feature
 * classifier) live in lib/gan.ts, lib/metrics.ts and lib/classifier.ts and
 * are exported by lib/mod.ts.
 *
 * ```ts
 * import { GANGame, ringSamplesFigure } from "../lib/course/05_gan_nonsaturating/mod.ts";
 * ```
 *
 * @module
 */
export * from "./experiments.ts";
export * from "./figures.ts";
