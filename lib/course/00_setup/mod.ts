/**
 * Code used only by notebooks/00_setup.ipynb: its experiment helpers and figures.
 * Reusable ideas live in lib/<idea>.ts and are exported by lib/mod.ts.
 *
 * @module
 */
export {};
