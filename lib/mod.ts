/**
 * Discrete latents and adversarial models: the course library.
 *
 * Notebooks import everything from here: `import * as dl from "../lib/mod.ts"`
 * (or named imports). The math modules never import the display modules;
 * notebooks join the two.
 *
 * @module
 */
// Ground floor: backend, randomness, data, argument checks.
export * from "./backend.ts";
export {
  glorotUniform,
  randomNormal,
  randomUniform,
  resetRandomStream,
  Rng,
  rngFrom,
  type Seed,
} from "./random.ts";
export * from "./validate.ts";
export * from "./config.ts";
export * from "./data.ts";
export * from "./datasets2d.ts";
// Display floor: charts, images, training progress.
export * from "./png.ts";
export * from "./plot.ts";
export * from "./train.ts";
export * from "./model.ts";
export * from "./display.ts";
export * from "./source.ts";
export * from "./exercise.ts";
export * from "./nn.ts";
export * from "./optim.ts";
export * from "./autodiff.ts";
export * from "./ode.ts";
export {
  addNoise,
  Autoencoder,
  type EvaluationReport,
  gaussianGradientEstimates,
  type GaussianGradientOptions,
  gaussianKL,
  GaussianVAE,
  type GaussianVAEOptions,
  type GradientEstimates,
  type GradientEstimator,
  type ImageAutoencoderOptions,
  type ImageBatch,
  LinearAutoencoder,
  pca,
  type PCAResult,
  principalAngles,
  reparameterize,
  type ScalarObjective,
} from "./vae.ts";
export * from "./vq.ts";
export * from "./gmm.ts";
export {
  categoricalEntropy,
  gumbelMax,
  gumbelSoftmax,
  type GumbelSoftmaxOptions,
  gumbelSoftmaxEstimates,
  klToUniform,
  sampleGumbel,
  type SampleObjective,
  scoreFunctionEstimates,
  temperatureSchedule,
  type TemperatureScheduleOptions,
} from "./gumbel.ts";
export {
  bernoulliNLL,
  DVAE,
  type DVAEBatch,
  type DVAEMetrics,
  type DVAEOptions,
} from "./dvae.ts";
export * from "./vqvae.ts";
export * from "./prior.ts";
export * from "./gan.ts";
export * from "./linalg.ts";
export * from "./metrics.ts";
export * from "./classifier.ts";
