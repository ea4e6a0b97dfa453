/**
 * The paths the wasm matMul and convolution kernels can take: wasm's own
 * product, OpenBLAS when initBackend loaded it (kernels/blas_kernels.ts),
 * and for convolutions oneDNN when it loaded (kernels/dnnl.ts). Tests of
 * anything built on matMul register themselves once per matMul path with
 * `matMulPathTest` (convolutions then take im2col + that matMul), tests of
 * convolutions once per convolution path with `convPathTest`.
 *
 * @module
 */
import { initBackend } from "../backend.ts";
import { activeBlas, type Blas, useBlas } from "../kernels/blas_kernels.ts";
import { activeDnnl, type Dnnl, useDnnl } from "../kernels/dnnl.ts";

await initBackend({ quiet: true });

/** The OpenBLAS initBackend loaded, or null. */
export const DEFAULT_BLAS: Blas | null = activeBlas();
/** The oneDNN initBackend loaded, or null. */
export const DEFAULT_DNNL: Dnnl | null = activeDnnl();

interface KernelPath {
  label: string;
  blas: Blas | null;
  dnnl: Dnnl | null;
}

/** The matMul paths available here, labelled for test names. */
export const MATMUL_PATHS: readonly KernelPath[] = [
  { label: "wasm matMul", blas: null, dnnl: null },
  ...(DEFAULT_BLAS
    ? [{ label: "OpenBLAS matMul", blas: DEFAULT_BLAS, dnnl: null }]
    : []),
];

/** The convolution paths available here: im2col + each matMul, and oneDNN. */
export const CONV_PATHS: readonly KernelPath[] = [
  ...MATMUL_PATHS,
  ...(DEFAULT_DNNL
    ? [{ label: "oneDNN conv", blas: DEFAULT_BLAS, dnnl: DEFAULT_DNNL }]
    : []),
];

function pathTests(
  paths: readonly KernelPath[],
  name: string,
  fn: () => Promise<void> | void,
): void {
  for (const path of paths) {
    Deno.test(`${name} [${path.label}]`, async () => {
      useBlas(path.blas);
      useDnnl(path.dnnl);
      try {
        await fn();
      } finally {
        useBlas(DEFAULT_BLAS);
        useDnnl(DEFAULT_DNNL);
      }
    });
  }
}

/** Registers `fn` as a test once per matMul path, restoring the default after. */
export function matMulPathTest(
  name: string,
  fn: () => Promise<void> | void,
): void {
  pathTests(MATMUL_PATHS, name, fn);
}

/** Registers `fn` as a test once per convolution path, restoring the default after. */
export function convPathTest(
  name: string,
  fn: () => Promise<void> | void,
): void {
  pathTests(CONV_PATHS, name, fn);
}
