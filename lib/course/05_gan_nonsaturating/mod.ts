/**
 * Code used only by notebooks/05_gan_nonsaturating.ipynb: its experiment helpers and figures.
 * Reusable ideas live in lib/<idea>.ts and are exported by lib/mod.ts.
 *
 * @module
 */
export {};
