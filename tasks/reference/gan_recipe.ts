// Dev-only: the Fashion-MNIST GAN recipe of notebook 05, one ingredient at a
// time. Trains a convolutional GAN as the notebook's dcganGame does (the same
// GAN class, trainStep, batchSampler, k = l = 1) with the settings given as
// JSON, and prints precision/recall (k = 3), the Frechet distance against 2000
// test images in the classifier's features (and the within-class diversity
// against the test images' for a conditional GAN) of G's current weights, of
// the average of G and of truncated samples, every `evalEvery` rounds.
//
// usage: deno run -A tasks/reference/gan_recipe.ts '{"lr": 2e-4}'
// Defaults are the notebook's recipe; override any of:
//   rounds 2000, evalEvery 500, batch 32, gChannels [128, 64],
//   dChannels [64, 128], gBatchNorm true, lrD 1e-3, lrG 1e-3, beta1 0.5, r1 1 (0: none),
//   r1Every 4, emaDecay 0.995 (0: none), truncation 0.7 (or a list), conditional false,
//   seed 1 (networks), nEval 2000
// The notebook's own run is the default with seeds G 1, D 2, game 3.
import * as tf from "@tensorflow/tfjs";
import {
  adam,
  batchSampler,
  classifierFeatures,
  convDiscriminator28,
  convGenerator28,
  describeBackend,
  frechetDistance,
  GAN,
  initBackend,
  loadFashionMNIST,
  loadOrTrainClassifier,
  precisionRecall,
  trainStep,
  withinClassDiversity,
} from "../../lib/mod.ts";

const defaults = {
  rounds: 2000,
  evalEvery: 500,
  batch: 32,
  gChannels: [128, 64] as [number, number],
  dChannels: [64, 128] as [number, number],
  gBatchNorm: true,
  lrD: 1e-3,
  lrG: 1e-3,
  beta1: 0.5,
  r1: 1,
  r1Every: 4,
  emaDecay: 0.995,
  truncation: 0.7 as number | number[],
  conditional: false,
  seed: 1,
  nEval: 2000,
};
const given = JSON.parse(Deno.args[0] ?? "{}");
for (const key of Object.keys(given)) {
  if (!(key in defaults)) throw new Error(`unknown setting "${key}"`);
}
const cfg = { ...defaults, ...given } as typeof defaults;
await initBackend({ quiet: true });
console.log(describeBackend());
console.log(JSON.stringify(cfg));

const numClasses = cfg.conditional ? 10 : 0;
const train = await loadFashionMNIST({ split: "train" });
const test = await loadFashionMNIST({ split: "test", limit: cfg.nEval });
const classifier = await loadOrTrainClassifier();
const realFeatures = classifierFeatures(classifier.model, test.images);
const realDiversity = withinClassDiversity(realFeatures, test.labels).mean;
const data = numClasses ? [train.images, train.labels] : train.images;
const gan = new GAN({
  generator: convGenerator28({
    noiseDim: 64,
    numClasses,
    channels: cfg.gChannels,
    batchNorm: cfg.gBatchNorm,
    seed: cfg.seed,
  }),
  discriminator: convDiscriminator28({
    numClasses,
    channels: cfg.dChannels,
    seed: cfg.seed + 1,
  }),
  data,
  numClasses,
  noiseDim: 64,
  r1: cfg.r1,
  r1Every: cfg.r1Every,
  emaDecay: cfg.emaDecay || undefined,
  seed: cfg.seed + 2,
});
const dObjective = gan.discriminatorObjective();
const gObjective = gan.generatorObjective();
const dOptimizer = adam(cfg.lrD, cfg.beta1, 0.999);
const gOptimizer = adam(cfg.lrG, cfg.beta1, 0.999);
const sampler = batchSampler(data, cfg.batch, { seed: cfg.seed + 2 });

function evaluate(round: number, msPerRound: number) {
  const labels = numClasses
    ? Array.from({ length: cfg.nEval }, (_, i) => i % 10)
    : undefined;
  const line: Record<string, number> = {
    round,
    msPerRound: Math.round(msPerRound),
  };
  const variants: [string, { average?: boolean; truncation?: number }][] = [
    ["current", { average: false }],
  ];
  if (cfg.emaDecay) variants.push(["average", {}]);
  for (const psi of [cfg.truncation].flat()) {
    if (psi < 1) variants.push([`psi${psi}`, { truncation: psi }]);
  }
  for (const [name, options] of variants) {
    const samples = gan.sample(cfg.nEval, {
      seed: 1,
      labels,
      ...options,
    }) as tf.Tensor4D;
    const features = classifierFeatures(classifier.model, samples);
    const { precision, recall } = precisionRecall(realFeatures, features, {
      k: 3,
    });
    line[`${name}FD`] = +frechetDistance(realFeatures, features).toFixed(2);
    line[`${name}P`] = +precision.toFixed(3);
    line[`${name}R`] = +recall.toFixed(3);
    if (labels) {
      const diversity = withinClassDiversity(features, labels).mean;
      line[`${name}Div`] = +(diversity / realDiversity).toFixed(3);
    }
    tf.dispose([samples, features]);
  }
  console.log(JSON.stringify(line));
}

let start = performance.now();
for (let round = 1; round <= cfg.rounds; round++) {
  tf.tidy(() => trainStep(dObjective, dOptimizer, sampler.next()));
  tf.tidy(() => trainStep(gObjective, gOptimizer, sampler.next()));
  if (round % cfg.evalEvery === 0 || round === cfg.rounds) {
    const elapsed = performance.now() - start;
    const sinceLast = round % cfg.evalEvery || cfg.evalEvery;
    evaluate(round, elapsed / sinceLast);
    start = performance.now();
  }
}
