/**
 * The course's backend start-up: `await initBackend()` first in every
 * notebook, test and script, then `describeBackend()` says what runs.
 *
 * Both come from the course's performance package, `@course/tfjs-fast`
 * (packages/tfjs-fast/): tfjs on its WebAssembly backend with SIMD, the
 * training kernels wasm lacks or gets wrong, faster versions of slow ones,
 * float32 matMuls on the system's OpenBLAS and convolutions on its oneDNN
 * when Deno may load them. Its
 * README and docs/performance.md explain and measure each piece.
 *
 * @module
 */
export {
  type BackendName,
  describeBackend,
  initBackend,
  type InitBackendOptions,
} from "@course/tfjs-fast";
