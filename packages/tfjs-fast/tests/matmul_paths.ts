/**
 * The two paths the wasm matMul kernels can take: wasm's own product, and
 * OpenBLAS when initBackend loaded it (kernels/blas_kernels.ts). Tests
 * of anything built on matMul register themselves once per path with
 * `matMulPathTest`.
 *
 * @module
 */
import { initBackend } from "../backend.ts";
import { activeBlas, type Blas, useBlas } from "../kernels/blas_kernels.ts";

await initBackend({ quiet: true });

/** The OpenBLAS initBackend loaded, or null. */
export const DEFAULT_BLAS: Blas | null = activeBlas();

/** The matMul paths available here, labelled for test names. */
export const MATMUL_PATHS: readonly { label: string; blas: Blas | null }[] = [
  { label: "wasm matMul", blas: null },
  ...(DEFAULT_BLAS ? [{ label: "OpenBLAS matMul", blas: DEFAULT_BLAS }] : []),
];

/** Registers `fn` as a test once per matMul path, restoring the default after. */
export function matMulPathTest(
  name: string,
  fn: () => Promise<void> | void,
): void {
  for (const path of MATMUL_PATHS) {
    Deno.test(`${name} [${path.label}]`, async () => {
      useBlas(path.blas);
      try {
        await fn();
      } finally {
        useBlas(DEFAULT_BLAS);
      }
    });
  }
}
