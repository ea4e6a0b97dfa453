/**
 * The course's optimizer: `adam(learningRate)` is `tf.train.adam` with its
 * update fused into one SIMD pass per variable on the wasm backend (the
 * same bits), from the performance package `@course/tfjs-fast`
 * (packages/tfjs-fast/optim.ts).
 *
 * @module
 */
export { adam } from "@course/tfjs-fast";
