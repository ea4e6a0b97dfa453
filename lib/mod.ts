/**
 * Discrete latents and adversarial models: the course library's core API.
 *
 * Notebooks import from here (`import { VQVAE, trainStep } from "../lib/mod.ts"`)
 * and their own experiments and figures from `lib/course/<notebook>/mod.ts`.
 * Library authors import the argument checks and other building blocks from
 * their modules directly (e.g. `lib/validate.ts`). The idea modules never
 * import the display modules; notebooks join the two.
 *
 * @module
 */
// Ground floor: backend, randomness, data, the model contract.
export { describeBackend, initBackend } from "./backend.ts";
export type * from "./backend.ts";
export { adam } from "./optim.ts";
export {
  glorotUniform,
  randomNormal,
  randomUniform,
  resetRandomStream,
  Rng,
  rngFrom,
} from "./random.ts";
export type * from "./random.ts";
export { ArgumentError } from "./validate.ts";
export { byMode, isQuick } from "./config.ts";
export {
  batches,
  batchSampler,
  FASHION_MNIST_CLASSES,
  IDXFormatError,
  loadFashionMNIST,
} from "./data.ts";
export type * from "./data.ts";
export {
  makeBlobs,
  makeMoons,
  makeRing,
  makeSpiral,
  ringCenters,
} from "./datasets2d.ts";
export type * from "./datasets2d.ts";
export { trainStep } from "./model.ts";
export type * from "./model.ts";
export {
  convDecoder28,
  convEncoder28,
  loadTensors,
  mlp,
  saveTensors,
  trainableVariables,
} from "./nn.ts";
export type * from "./nn.ts";

// Display floor: showing code and figures, charts, training progress, exercises.
export { show, showSource } from "./display.ts";
export type * from "./source.ts";
export {
  Chart,
  column,
  heatmap,
  histogram,
  imageGrid,
  lineChart,
  row,
  scatter,
  trainingCurves,
} from "./plot.ts";
export type * from "./plot.ts";
export { NonFiniteLossError, trainLoop } from "./train.ts";
export type * from "./train.ts";
export {
  checkExercise,
  ExerciseError,
  expect,
  expectClose,
} from "./exercise.ts";

// The ideas of the syllabus, in the order of the notebooks.
export { kmeans, quantize } from "./vq.ts";
export type * from "./vq.ts";
export {
  disposeGMM,
  fitGMM,
  gmmLogLikelihood,
  responsibilities,
  sampleGMM,
} from "./gmm.ts";
export type * from "./gmm.ts";
export {
  addNoise,
  Autoencoder,
  gaussianGradientEstimates,
  gaussianKL,
  GaussianVAE,
  LinearAutoencoder,
  pca,
  principalAngles,
  reparameterize,
} from "./vae.ts";
export type * from "./vae.ts";
export { stopGradient, straightThrough } from "./autodiff.ts";
export { codeUsage, vectorQuantize, VectorQuantizer, VQVAE } from "./vqvae.ts";
export type * from "./vqvae.ts";
export { causalMask, PixelCNNPrior } from "./prior.ts";
export type * from "./prior.ts";
export {
  categoricalEntropy,
  gumbelMax,
  gumbelSoftmax,
  gumbelSoftmaxEstimates,
  klToUniform,
  sampleGumbel,
  scoreFunctionEstimates,
  temperatureSchedule,
} from "./gumbel.ts";
export type * from "./gumbel.ts";
export { bernoulliNLL, DVAE } from "./dvae.ts";
export type * from "./dvae.ts";
export {
  convDiscriminator28,
  convGenerator28,
  discriminatorLoss,
  ExponentialMovingAverage,
  GAN,
  mlpDiscriminator,
  mlpGenerator,
  nonSaturatingGeneratorLoss,
  r1Penalty,
  ringQuality,
  saturatingGeneratorLoss,
} from "./gan.ts";
export type * from "./gan.ts";
export {
  frechetDistance,
  knnRadii,
  precisionRecall,
  withinClassDiversity,
} from "./metrics.ts";
export type * from "./metrics.ts";
export { jacobiEigen } from "./linalg.ts";
export {
  classifierFeatures,
  classifierProbabilities,
  loadOrTrainClassifier,
} from "./classifier.ts";
export type * from "./classifier.ts";
export {
  adjointDynamics,
  NeuralODE,
  neuralVectorField,
  OdeClassifier,
  odeint,
  odeintAdjoint,
  odeintWithStats,
  OdeSolverError,
  residualNetwork,
} from "./ode.ts";
export type * from "./ode.ts";
export { causalAttentionMask, TransformerPrior } from "./transformer.ts";
export type * from "./transformer.ts";
export {
  adaptiveWeight,
  gradientsAt,
  layerFeatures,
  patchDiscriminator28,
  VQGAN,
} from "./vqgan.ts";
export type * from "./vqgan.ts";
export { TwoLevelVQVAE } from "./vqvae2.ts";
export type * from "./vqvae2.ts";
