/**
 * A bad-input row for every value `lib/mod.ts` exports (issue 18): each bad
 * call must throw a named error (`ArgumentError`) whose message starts with
 * the function the user called and names the argument, and must leave
 * `tf.memory().numTensors` unchanged. An unknown option key must name the key
 * and the closest known one. The table is checked against
 * `Object.keys(await import("../lib/mod.ts"))` when the test runs, so a new
 * export without a row (or an exemption saying why it has none) fails.
 *
 * Kinds: shape (wrong shape or structure), dtype, range (out-of-range
 * hyperparameter or count), nan, empty (empty tensor or list), null
 * (null/undefined argument or options), key (misspelled option key).
 */
import * as tf from "@tensorflow/tfjs";
import * as lib from "../lib/mod.ts";
import { ArgumentError } from "../lib/validate.ts";
import { makeTestDir } from "./temp.ts";
import { assert, assertEquals } from "./assert.ts";

await lib.initBackend({ quiet: true });

type Kind = "shape" | "dtype" | "range" | "nan" | "empty" | "null" | "key";
interface Row {
  kind: Kind;
  call: () => unknown;
  /** Strings the message must include (the argument's name, or the key and its closest valid key). */
  names: string[];
  /** The function the user called, when it is not the export's own name (e.g. "VQVAE.loss"). */
  where?: string;
}
const row = (kind: Exclude<Kind, "key">) =>
(
  arg: string,
  call: () => unknown,
  where?: string,
): Row => ({ kind, call, names: [arg], where });
const shape = row("shape");
const dtype = row("dtype");
const range = row("range");
const nan = row("nan");
const empty = row("empty");
const nil = row("null");
/** A misspelled option key: the message names `typo` and suggests `closest`. */
const key = (
  typo: string,
  closest: string,
  call: () => unknown,
  where?: string,
): Row => ({
  kind: "key",
  call,
  names: [JSON.stringify(typo), `did you mean ${JSON.stringify(closest)}`],
  where,
});

// Fixtures: small, valid inputs the bad calls perturb. They live for the
// whole file; each row measures numTensors around its own call.
const x6 = tf.tensor2d([[0, 0], [0.1, 0], [0, 0.1], [3, 3], [3.1, 3], [
  3,
  3.1,
]]);
const int2 = tf.tensor2d([[1, 2], [3, 4]], [2, 2], "int32");
const strings = tf.tensor1d(["a", "b"], "string");
const strings2 = tf.tensor2d([["a", "b"], ["c", "d"]], [2, 2], "string");
const intCol = tf.tensor2d([[1], [0]], [2, 1], "int32");
const nan2 = tf.tensor2d([[NaN, 1], [0, 1]]);
const empty2 = tf.zeros([0, 2]) as tf.Tensor2D;
const logits = tf.tensor2d([[0.1, 0.2, 0.3], [1, 0, -1]]);
const nanLogits = tf.tensor2d([[NaN, 0.2, 0.3], [1, 0, -1]]);
const images = tf.zeros([2, 28, 28, 1]);
const nanImages = tf.fill([2, 28, 28, 1], NaN);
const wrongImages = tf.zeros([2, 27, 28, 1]);
const scalar = tf.scalar(1);
const net = lib.mlp([2, 3, 1], { seed: 0 });
const variable = tf.variable(tf.zeros([2]));
const gmm = lib.fitGMM(x6, 2, { seed: 0 });
const f = (_t: number, y: tf.Tensor) => y.neg();
const dir = await makeTestDir("bad_input");
// The fixtures live as long as the module: the folder goes when it unloads.
globalThis.addEventListener("unload", () => {
  Deno.removeSync(dir, { recursive: true });
});
const savedPath = `${dir}/weights`;
await lib.saveTensors(savedPath, { w: tf.keep(tf.zeros([1])) });
const ok = { title: "t" };
const optimizer = lib.adam(1e-3);
const linearAE = new lib.LinearAutoencoder(2, 1);
const vec2 = tf.zeros([2]);
const x25 = tf.zeros([2, 5]);
const codebook34 = tf.zeros([3, 4]) as tf.Tensor2D;
const col6 = tf.zeros([6, 1]);
const noClasses = tf.zeros([2, 0]);
const generator = lib.mlpGenerator({ noiseDim: 2, outputDim: 2 });
const discriminator = lib.mlpDiscriminator({ inputDim: 2 });
const quadratic = { f: (z: number) => z * z, df: (z: number) => 2 * z };

/**
 * Exports that take no arguments, or no user data a check could reject:
 * constants, error classes (their arguments are messages), and helpers whose
 * every argument is valid by design.
 */
const EXEMPT: Record<string, string> = {
  FASHION_MNIST_CLASSES: "a constant",
  ArgumentError: "an error class (where, message)",
  ExerciseError: "an error class (message)",
  IDXFormatError: "an error class (message)",
  NonFiniteLossError: "an error class built by trainLoop",
  OdeSolverError: "an error class (where, message)",
  describeBackend: "takes no arguments",
  isQuick: "takes no arguments",
  byMode: "takes any two values and returns one",
  show: "displays any value (a figure, text, or its String)",
  expect:
    "a check-cell helper: a false condition is the wrong answer it reports (ExerciseError)",
  Chart:
    "built by the chart helpers (scatter, lineChart, ...), whose rows check their options",
};

const TABLE: Record<string, Row[]> = {
  // Ground floor.
  initBackend: [
    range("backend", () => lib.initBackend({ backend: "gpu" as never })),
    key("thread", "threads", () => lib.initBackend({ thread: 2 } as never)),
    nil("options", () => lib.initBackend(null as never)),
  ],
  adam: [
    range("learningRate", () => lib.adam(-1)),
    nan("learningRate", () => lib.adam(NaN)),
    range("beta1", () => lib.adam(1e-3, 1.5)),
  ],
  glorotUniform: [
    shape("shape", () => lib.glorotUniform([2.5, 3])),
    key("sed", "seed", () => lib.glorotUniform([2, 3], { sed: 1 } as never)),
    nil("options", () => lib.glorotUniform([2, 3], null as never)),
  ],
  randomNormal: [
    shape("shape", () => lib.randomNormal([-1, 2])),
    range("std", () => lib.randomNormal([2], { std: -1 })),
    nan("mean", () => lib.randomNormal([2], { mean: NaN })),
    key("sdt", "std", () => lib.randomNormal([2], { sdt: 1 } as never)),
    nil("options", () => lib.randomNormal([2], null as never)),
  ],
  randomUniform: [
    range("high", () => lib.randomUniform([2], { low: 1, high: 0 })),
    nan("low", () => lib.randomUniform([2], { low: NaN })),
    key("hihg", "high", () => lib.randomUniform([2], { hihg: 1 } as never)),
    nil("shape", () => lib.randomUniform(null as never)),
  ],
  resetRandomStream: [
    nan("seed", () => lib.resetRandomStream(NaN)),
    range("seed", () => lib.resetRandomStream("1" as never)),
  ],
  Rng: [
    nan("seed", () => new lib.Rng(NaN)),
    nil("seed", () => new lib.Rng(null as never)),
  ],
  rngFrom: [
    nan("seed", () => lib.rngFrom(NaN)),
    range("seed", () => lib.rngFrom("1" as never)),
  ],
  loadFashionMNIST: [
    range("limit", () => lib.loadFashionMNIST({ subset: true, limit: -5 })),
    range("split", () => lib.loadFashionMNIST({ split: "tset" as never })),
    key("limt", "limit", () => lib.loadFashionMNIST({ limt: 5 } as never)),
    nil("options", () => lib.loadFashionMNIST(null as never)),
  ],
  batches: [
    range("batchSize", () => lib.batches(10, 0)),
    nan("n", () => lib.batches(NaN, 2)),
    key("shufle", "shuffle", () => lib.batches(10, 2, { shufle: 0 } as never)),
    nil("options", () => lib.batches(10, 2, null as never)),
  ],
  batchSampler: [
    range("batchSize", () => lib.batchSampler(x6, 7)),
    empty("data", () => lib.batchSampler(empty2, 1)),
    nan("seed", () => lib.batchSampler(x6, 2, { seed: NaN })),
    key("sed", "seed", () => lib.batchSampler(x6, 2, { sed: 0 } as never)),
    nil("data", () => lib.batchSampler(null as never, 2)),
  ],
  makeBlobs: [
    range("n", () => lib.makeBlobs(0)),
    nan("std", () => lib.makeBlobs(10, { std: NaN })),
    key("center", "centers", () => lib.makeBlobs(10, { center: 2 } as never)),
    nil("options", () => lib.makeBlobs(10, null as never)),
  ],
  makeMoons: [
    range("n", () => lib.makeMoons(-1)),
    nan("noise", () => lib.makeMoons(10, { noise: NaN })),
    key("nosie", "noise", () => lib.makeMoons(10, { nosie: 0 } as never)),
    nil("options", () => lib.makeMoons(10, null as never)),
  ],
  makeRing: [
    range("modes", () => lib.makeRing({ modes: 0 })),
    nan("radius", () => lib.makeRing({ radius: NaN })),
    key("mode", "modes", () => lib.makeRing({ mode: 8 } as never)),
    nil("options", () => lib.makeRing(null as never)),
  ],
  makeSpiral: [
    range("turns", () => lib.makeSpiral(10, { turns: -1 })),
    nan("noise", () => lib.makeSpiral(10, { noise: NaN })),
    key("arm", "arms", () => lib.makeSpiral(10, { arm: 2 } as never)),
    nil("options", () => lib.makeSpiral(10, null as never)),
  ],
  ringCenters: [
    range("modes", () => lib.ringCenters(0)),
    nan("radius", () => lib.ringCenters(8, NaN)),
  ],
  trainStep: [
    shape("model", () => lib.trainStep({} as never, optimizer, x6)),
    nil("model", () => lib.trainStep(null as never, optimizer, x6)),
    nil("optimizer", () => lib.trainStep(linearAE, null as never, x6)),
  ],
  mlp: [
    shape("sizes", () => lib.mlp([2])),
    range("sizes[1]", () => lib.mlp([2, 0])),
    range("activation", () => lib.mlp([2, 1], { activation: "rlu" as never })),
    key("sed", "seed", () => lib.mlp([2, 1], { sed: 1 } as never)),
    nil("options", () => lib.mlp([2, 1], null as never)),
  ],
  convEncoder28: [
    range("channels", () => lib.convEncoder28({ channels: [0, 8] })),
    key(
      "outChanels",
      "outChannels",
      () => lib.convEncoder28({ outChanels: 4 } as never),
    ),
    nil("options", () => lib.convEncoder28(null as never)),
  ],
  convDecoder28: [
    range("inChannels", () => lib.convDecoder28({ inChannels: -1 })),
    key(
      "inChanels",
      "inChannels",
      () => lib.convDecoder28({ inChanels: 4 } as never),
    ),
    nil("options", () => lib.convDecoder28(null as never)),
  ],
  trainableVariables: [
    shape("models[0]", () => lib.trainableVariables({} as never)),
    nil("models[0]", () => lib.trainableVariables(null as never)),
  ],
  saveTensors: [
    shape("tensors", () => lib.saveTensors(`${dir}/a`, { w: [1] as never })),
    empty("path", () => lib.saveTensors("", { w: scalar })),
    range(
      "overwrite",
      () =>
        lib.saveTensors(`${dir}/a`, { w: scalar }, {
          overwrite: "no" as never,
        }),
    ),
    key(
      "overwite",
      "overwrite",
      () =>
        lib.saveTensors(`${dir}/a`, { w: scalar }, { overwite: true } as never),
    ),
    nil("tensors", () => lib.saveTensors(`${dir}/a`, null as never)),
  ],
  loadTensors: [
    empty("path", () => lib.loadTensors("")),
    nil("path", () => lib.loadTensors(null as never)),
  ],

  // Display floor.
  showSource: [
    range("name", () => lib.showSource("lib/vq.ts", "noSuchFunction")),
    key(
      "withDocs",
      "withDoc",
      () => lib.showSource("lib/vq.ts", "kmeans", { withDocs: true } as never),
    ),
    nil("file", () => lib.showSource(null as never, "kmeans")),
  ],
  column: [
    empty("charts", () => lib.column([], ok)),
    key(
      "gapp",
      "gap",
      () =>
        lib.column([lib.histogram([1, 2], ok)], { ...ok, gapp: 1 } as never),
    ),
    nil(
      "options",
      () => lib.column([lib.histogram([1, 2], ok)], null as never),
    ),
  ],
  row: [
    shape("charts", () => lib.row([1 as never], ok)),
    key(
      "gapp",
      "gap",
      () => lib.row([lib.histogram([1, 2], ok)], { ...ok, gapp: 1 } as never),
    ),
    nil("options", () => lib.row([lib.histogram([1, 2], ok)], null as never)),
  ],
  heatmap: [
    shape("matrix", () => lib.heatmap([[1, 2], [3]], ok)),
    nan("matrix", () => lib.heatmap(nan2, ok)),
    key(
      "anotate",
      "annotate",
      () => lib.heatmap([[1]], { ...ok, anotate: true } as never),
    ),
    nil("options", () => lib.heatmap([[1]], null as never)),
  ],
  histogram: [
    empty("values", () => lib.histogram([], ok)),
    range("bins", () => lib.histogram([1, 2], { ...ok, bins: 0 })),
    key("bin", "bins", () => lib.histogram([1, 2], { ...ok, bin: 4 } as never)),
    nil("values", () => lib.histogram(null as never, ok)),
  ],
  imageGrid: [
    dtype("images", () => lib.imageGrid(strings2, ok)),
    shape("images", () => lib.imageGrid(vec2, ok)),
    nan("images", () => lib.imageGrid(nanImages, ok)),
    range("cols", () => lib.imageGrid(images, { ...ok, cols: 0 })),
    key("col", "cols", () => lib.imageGrid(images, { ...ok, col: 2 } as never)),
    nil("options", () => lib.imageGrid(images, null as never)),
  ],
  lineChart: [
    empty("series", () => lib.lineChart({}, ok)),
    shape("series", () => lib.lineChart({ a: "x" as never }, ok)),
    key(
      "logy",
      "logY",
      () => lib.lineChart({ a: [1, 2] }, { ...ok, logy: true } as never),
    ),
    nil("options", () => lib.lineChart({ a: [1, 2] }, null as never)),
  ],
  scatter: [
    shape("points", () => lib.scatter([[1, 2, 3]], ok)),
    nan("points", () => lib.scatter(nan2, ok)),
    key(
      "label",
      "labels",
      () => lib.scatter([[1, 2]], { ...ok, label: [0] } as never),
    ),
    nil("points", () => lib.scatter(null as never, ok)),
  ],
  trainingCurves: [
    empty("history", () => lib.trainingCurves({ step: [] }, ok)),
    key(
      "smoth",
      "smooth",
      () =>
        lib.trainingCurves(
          { step: [0, 1], loss: [1, 2] },
          { ...ok, smoth: 2 } as never,
        ),
    ),
    nil(
      "options",
      () => lib.trainingCurves({ step: [0], loss: [1] }, null as never),
    ),
  ],
  trainLoop: [
    range("options.steps", () => lib.trainLoop(() => 1, { steps: -1 })),
    nan("options.steps", () => lib.trainLoop(() => 1, { steps: NaN })),
    key(
      "step",
      "steps",
      () => lib.trainLoop(() => 1, { steps: 1, step: 2 } as never),
    ),
    nil("options", () => lib.trainLoop(() => 1, null as never)),
  ],
  checkExercise: [
    nil("id", () => lib.checkExercise(null as never, () => {})),
    nil("tests", () => lib.checkExercise("x", null as never)),
  ],
  expectClose: [
    key("rtl", "rtol", () => lib.expectClose(1, 1, "x", { rtl: 1 } as never)),
    range("rtol", () => lib.expectClose(1, 1, "x", { rtol: -1 })),
  ],

  // The ideas.
  kmeans: [
    shape("data", () => lib.kmeans([[1, 2], [3]], 2)),
    dtype("data", () => lib.kmeans(strings as never, 1)),
    range("k", () => lib.kmeans(x6, 0)),
    nan("data", () => lib.kmeans(nan2, 1)),
    empty("data", () => lib.kmeans(empty2, 1)),
    key(
      "maxIters",
      "maxIter",
      () => lib.kmeans(x6, 2, { maxIters: 5 } as never),
    ),
    nil("options", () => lib.kmeans(x6, 2, null as never)),
  ],
  quantize: [
    shape("codebook", () => lib.quantize(x6, [[1, 2, 3]])),
    nan("data", () => lib.quantize(nan2, [[0, 0]])),
    empty("codebook", () => lib.quantize(x6, [])),
    nil("data", () => lib.quantize(null as never, [[0, 0]])),
  ],
  fitGMM: [
    shape("data", () => lib.fitGMM([[1, 2], [3]], 2)),
    range("k", () => lib.fitGMM(x6, 7)),
    nan("data", () => lib.fitGMM(nan2, 1)),
    empty("data", () => lib.fitGMM(empty2, 1)),
    key(
      "covarianse",
      "covariance",
      () => lib.fitGMM(x6, 2, { covarianse: "diagonal" } as never),
    ),
    nil("options", () => lib.fitGMM(x6, 2, null as never)),
  ],
  gmmLogLikelihood: [
    shape("data", () => lib.gmmLogLikelihood(gmm, [[1, 2, 3]])),
    nan("data", () => lib.gmmLogLikelihood(gmm, nan2)),
    nil("model", () => lib.gmmLogLikelihood(null as never, x6)),
  ],
  responsibilities: [
    shape("data", () => lib.responsibilities(gmm, [[1, 2, 3]])),
    nan("data", () => lib.responsibilities(gmm, nan2)),
    nil("model", () => lib.responsibilities(null as never, x6)),
  ],
  sampleGMM: [
    range("n", () => lib.sampleGMM(gmm, -1)),
    nan("n", () => lib.sampleGMM(gmm, NaN)),
    key("sed", "seed", () => lib.sampleGMM(gmm, 2, { sed: 1 } as never)),
    nil("model", () => lib.sampleGMM(null as never, 2)),
  ],
  disposeGMM: [
    shape("model", () => lib.disposeGMM({} as never)),
    nil("model", () => lib.disposeGMM(null as never)),
  ],
  addNoise: [
    range("std", () => lib.addNoise(images, -1)),
    nan("std", () => lib.addNoise(images, NaN)),
    key("sed", "seed", () => lib.addNoise(images, 0.1, { sed: 1 } as never)),
    nil("images", () => lib.addNoise(null as never, 0.1)),
  ],
  Autoencoder: [
    range("latentDim", () => new lib.Autoencoder({ latentDim: 0 })),
    key(
      "latentdim",
      "latentDim",
      () => new lib.Autoencoder({ latentdim: 2 } as never),
    ),
    nil("options", () => new lib.Autoencoder(null as never)),
  ],
  GaussianVAE: [
    range("beta", () => new lib.GaussianVAE({ beta: -1 })),
    nan("decoderVariance", () => new lib.GaussianVAE({ decoderVariance: NaN })),
    key("bta", "beta", () => new lib.GaussianVAE({ bta: 1 } as never)),
    nil("options", () => new lib.GaussianVAE(null as never)),
  ],
  LinearAutoencoder: [
    range("k", () => new lib.LinearAutoencoder(2, 3)),
    nan("d", () => new lib.LinearAutoencoder(NaN, 1)),
    key(
      "sed",
      "seed",
      () => new lib.LinearAutoencoder(2, 1, { sed: 1 } as never),
    ),
    nil("options", () => new lib.LinearAutoencoder(2, 1, null as never)),
  ],
  gaussianGradientEstimates: [
    range(
      "estimator",
      () =>
        lib.gaussianGradientEstimates("reparam" as never, quadratic, {
          mu: 0,
          logSigma: 0,
        }),
    ),
    nan(
      "mu",
      () =>
        lib.gaussianGradientEstimates("reparameterization", quadratic, {
          mu: NaN,
          logSigma: 0,
        }),
    ),
    key(
      "sample",
      "samples",
      () =>
        lib.gaussianGradientEstimates(
          "reparameterization",
          quadratic,
          { mu: 0, logSigma: 0, sample: 5 } as never,
        ),
    ),
    nil(
      "objective",
      () =>
        lib.gaussianGradientEstimates("reparameterization", null as never, {
          mu: 0,
          logSigma: 0,
        }),
    ),
  ],
  gaussianKL: [
    dtype("muQ", () => lib.gaussianKL(int2, int2)),
    shape("logVarQ", () => lib.gaussianKL(x6, int2)),
    nan("muQ", () => lib.gaussianKL(nan2, nan2)),
    nil("muQ", () => lib.gaussianKL(null as never, x6)),
  ],
  pca: [
    range("k", () => lib.pca(x6, 3)),
    nan("data", () => lib.pca(nan2, 1)),
    empty("data", () => lib.pca(empty2, 1)),
    nil("data", () => lib.pca(null as never, 1)),
  ],
  principalAngles: [
    shape("b", () => lib.principalAngles([[1, 0]], [[1, 0, 0]])),
    nan("a", () => lib.principalAngles([[NaN, 0]], [[1, 0]])),
    empty("a", () => lib.principalAngles([], [[1, 0]])),
    nil("a", () => lib.principalAngles(null as never, [[1, 0]])),
  ],
  reparameterize: [
    shape("logVar", () => lib.reparameterize(x6, logits)),
    key("sed", "seed", () => lib.reparameterize(x6, x6, { sed: 1 } as never)),
    nil("mu", () => lib.reparameterize(null as never, x6)),
  ],
  stopGradient: [
    dtype("x", () => lib.stopGradient(strings)),
    nil("x", () => lib.stopGradient(null as never)),
  ],
  straightThrough: [
    dtype("h", () => lib.straightThrough(strings2, strings2)),
    shape("q", () => lib.straightThrough(x6, logits)),
    nil("h", () => lib.straightThrough(null as never, x6)),
  ],
  codeUsage: [
    range("numCodes", () => lib.codeUsage([0, 1], 0)),
    range("indices", () => lib.codeUsage([0, 5], 3)),
    nan("indices", () => lib.codeUsage([0, NaN], 3)),
    nil("indices", () => lib.codeUsage(null as never, 3)),
  ],
  vectorQuantize: [
    dtype("h", () => lib.vectorQuantize(int2, x6 as tf.Tensor2D)),
    shape("codebook", () => lib.vectorQuantize(x6, codebook34)),
    nan("h", () => lib.vectorQuantize(nan2, x6 as tf.Tensor2D)),
    range(
      "beta",
      () => lib.vectorQuantize(x6, x6 as tf.Tensor2D, { beta: -1 }),
    ),
    key(
      "bta",
      "beta",
      () => lib.vectorQuantize(x6, x6 as tf.Tensor2D, { bta: 1 } as never),
    ),
    nil("h", () => lib.vectorQuantize(null as never, x6 as tf.Tensor2D)),
  ],
  VectorQuantizer: [
    range("numCodes", () => new lib.VectorQuantizer({ numCodes: 0, dim: 2 })),
    nan(
      "decay",
      () => new lib.VectorQuantizer({ numCodes: 2, dim: 2, decay: NaN }),
    ),
    key(
      "numcodes",
      "numCodes",
      () => new lib.VectorQuantizer({ numcodes: 2, dim: 2 } as never),
    ),
    nil("options", () => new lib.VectorQuantizer(null as never)),
  ],
  VQVAE: [
    range("beta", () => new lib.VQVAE({ beta: -1 })),
    nan("decay", () => new lib.VQVAE({ decay: NaN })),
    key("numcodes", "numCodes", () => new lib.VQVAE({ numcodes: 2 } as never)),
    nil("options", () => new lib.VQVAE(null as never)),
  ],
  causalMask: [
    range("kernelSize", () => lib.causalMask(2, "A")),
    range("type", () => lib.causalMask(3, "C" as never)),
  ],
  PixelCNNPrior: [
    range("numCodes", () => new lib.PixelCNNPrior({ numCodes: 0 })),
    nan(
      "channels",
      () => new lib.PixelCNNPrior({ numCodes: 4, channels: NaN }),
    ),
    key(
      "layer",
      "layers",
      () => new lib.PixelCNNPrior({ numCodes: 4, layer: 2 } as never),
    ),
    nil("options", () => new lib.PixelCNNPrior(null as never)),
  ],
  categoricalEntropy: [
    dtype("logits", () => lib.categoricalEntropy(strings)),
    nan("logits", () => lib.categoricalEntropy(nanLogits)),
    nil("logits", () => lib.categoricalEntropy(null as never)),
  ],
  klToUniform: [
    dtype("logits", () => lib.klToUniform(strings2)),
    shape("logits", () => lib.klToUniform(scalar)),
    nan("logits", () => lib.klToUniform(nanLogits)),
    nil("logits", () => lib.klToUniform(null as never)),
  ],
  gumbelMax: [
    dtype("logits", () => lib.gumbelMax(strings2)),
    nan("logits", () => lib.gumbelMax(nanLogits)),
    empty("logits", () => lib.gumbelMax(noClasses)),
    key("sed", "seed", () => lib.gumbelMax(logits, { sed: 1 } as never)),
    nil("logits", () => lib.gumbelMax(null as never)),
  ],
  gumbelSoftmax: [
    dtype("logits", () => lib.gumbelSoftmax(int2, { tau: 1 })),
    range("tau", () => lib.gumbelSoftmax(logits, { tau: 0 })),
    nan("tau", () => lib.gumbelSoftmax(logits, { tau: NaN })),
    shape("noise", () => lib.gumbelSoftmax(logits, { tau: 1, noise: x6 })),
    key("tua", "tau", () => lib.gumbelSoftmax(logits, { tua: 1 } as never)),
    nil("options", () => lib.gumbelSoftmax(logits, null as never)),
  ],
  gumbelSoftmaxEstimates: [
    range(
      "samples",
      () =>
        lib.gumbelSoftmaxEstimates(logits, (s) => s.sum(-1), {
          samples: 0,
          tau: 1,
        }),
    ),
    nan(
      "tau",
      () =>
        lib.gumbelSoftmaxEstimates(logits, (s) => s.sum(-1), {
          samples: 2,
          tau: NaN,
        }),
    ),
    shape(
      "f",
      () =>
        lib.gumbelSoftmaxEstimates(logits, (s) => s, { samples: 2, tau: 1 }),
    ),
    key(
      "sample",
      "samples",
      () =>
        lib.gumbelSoftmaxEstimates(
          logits,
          (s) => s.sum(-1),
          { sample: 2, tau: 1 } as never,
        ),
    ),
    nil(
      "options",
      () => lib.gumbelSoftmaxEstimates(logits, (s) => s.sum(-1), null as never),
    ),
  ],
  sampleGumbel: [
    shape("shape", () => lib.sampleGumbel([2, -3])),
    key("sed", "seed", () => lib.sampleGumbel([2], { sed: 1 } as never)),
    nil("shape", () => lib.sampleGumbel(null as never)),
  ],
  scoreFunctionEstimates: [
    range(
      "samples",
      () =>
        lib.scoreFunctionEstimates(logits, (s) => s.sum(-1), { samples: -2 }),
    ),
    nan(
      "baseline",
      () =>
        lib.scoreFunctionEstimates(logits, (s) => s.sum(-1), {
          samples: 2,
          baseline: NaN,
        }),
    ),
    key(
      "baseLine",
      "baseline",
      () =>
        lib.scoreFunctionEstimates(
          logits,
          (s) => s.sum(-1),
          { samples: 2, baseLine: 0 } as never,
        ),
    ),
    nil(
      "f",
      () => lib.scoreFunctionEstimates(logits, null as never, { samples: 2 }),
    ),
  ],
  temperatureSchedule: [
    range(
      "options.tauMin",
      () => lib.temperatureSchedule({ tau0: 1, tauMin: 2 }),
    ),
    nan("options.rate", () => lib.temperatureSchedule({ rate: NaN })),
    key(
      "tauMn",
      "tauMin",
      () => lib.temperatureSchedule({ tauMn: 0.5 } as never),
    ),
    nil("options", () => lib.temperatureSchedule(null as never)),
  ],
  bernoulliNLL: [
    dtype("logits", () => lib.bernoulliNLL(strings2, strings2)),
    shape("x", () => lib.bernoulliNLL(images, wrongImages)),
    nan("logits", () => lib.bernoulliNLL(nanImages, images)),
    nil("logits", () => lib.bernoulliNLL(null as never, images)),
  ],
  DVAE: [
    range("latents", () => new lib.DVAE({ latents: 0 })),
    range("architecture", () => new lib.DVAE({ architecture: "cnn" as never })),
    key("clases", "classes", () => new lib.DVAE({ clases: 4 } as never)),
    nil("options", () => new lib.DVAE(null as never)),
  ],
  convDiscriminator28: [
    range("numClasses", () => lib.convDiscriminator28({ numClasses: -1 })),
    key(
      "chanels",
      "channels",
      () => lib.convDiscriminator28({ chanels: [4, 8] } as never),
    ),
    nil("options", () => lib.convDiscriminator28(null as never)),
  ],
  convGenerator28: [
    range("noiseDim", () => lib.convGenerator28({ noiseDim: 0 })),
    nan("noiseDim", () => lib.convGenerator28({ noiseDim: NaN })),
    key(
      "noisedim",
      "noiseDim",
      () => lib.convGenerator28({ noisedim: 4 } as never),
    ),
    nil("options", () => lib.convGenerator28(null as never)),
  ],
  discriminatorLoss: [
    dtype("realLogits", () => lib.discriminatorLoss(intCol, col6)),
    shape("fakeLogits", () => lib.discriminatorLoss(col6, logits)),
    nan("realLogits", () => lib.discriminatorLoss(nan2, nan2)),
    empty("realLogits", () => lib.discriminatorLoss(empty2, empty2)),
    nil("realLogits", () => lib.discriminatorLoss(null as never, x6)),
  ],
  ExponentialMovingAverage: [
    range("decay", () => new lib.ExponentialMovingAverage(net, { decay: 1.5 })),
    key(
      "decy",
      "decay",
      () => new lib.ExponentialMovingAverage(net, { decy: 0.9 } as never),
    ),
    nil("source", () => new lib.ExponentialMovingAverage(null as never)),
  ],
  GAN: [
    shape(
      "generator",
      () =>
        new lib.GAN({
          generator: {} as never,
          discriminator: net,
          data: x6,
          noiseDim: 2,
        }),
    ),
    range(
      "noiseDim",
      () =>
        new lib.GAN({
          generator: net,
          discriminator: net,
          data: x6,
          noiseDim: 0,
        }),
    ),
    nan(
      "data",
      () => new lib.GAN({ generator, discriminator, data: nan2, noiseDim: 2 }),
    ),
    key(
      "noisedim",
      "noiseDim",
      () =>
        new lib.GAN(
          {
            generator: net,
            discriminator: net,
            data: x6,
            noisedim: 2,
          } as never,
        ),
    ),
    nil("options", () => new lib.GAN(null as never)),
  ],
  mlpDiscriminator: [
    range("inputDim", () => lib.mlpDiscriminator({ inputDim: 0 })),
    key(
      "hiden",
      "hidden",
      () => lib.mlpDiscriminator({ inputDim: 2, hiden: [4] } as never),
    ),
    nil("options", () => lib.mlpDiscriminator(null as never)),
  ],
  mlpGenerator: [
    range("outputDim", () => lib.mlpGenerator({ noiseDim: 2, outputDim: -1 })),
    nan("noiseDim", () => lib.mlpGenerator({ noiseDim: NaN, outputDim: 2 })),
    key(
      "outputdim",
      "outputDim",
      () => lib.mlpGenerator({ noiseDim: 2, outputdim: 2 } as never),
    ),
    nil("options", () => lib.mlpGenerator(null as never)),
  ],
  nonSaturatingGeneratorLoss: [
    dtype("fakeLogits", () => lib.nonSaturatingGeneratorLoss(intCol)),
    nan("fakeLogits", () => lib.nonSaturatingGeneratorLoss(nan2)),
    empty("fakeLogits", () => lib.nonSaturatingGeneratorLoss(empty2)),
    nil("fakeLogits", () => lib.nonSaturatingGeneratorLoss(null as never)),
  ],
  saturatingGeneratorLoss: [
    dtype("fakeLogits", () => lib.saturatingGeneratorLoss(intCol)),
    nan("fakeLogits", () => lib.saturatingGeneratorLoss(nan2)),
    empty("fakeLogits", () => lib.saturatingGeneratorLoss(empty2)),
    nil("fakeLogits", () => lib.saturatingGeneratorLoss(null as never)),
  ],
  r1Penalty: [
    dtype("real", () => lib.r1Penalty(net, int2)),
    shape("real", () => lib.r1Penalty(net, x25)),
    range("gamma", () => lib.r1Penalty(net, x6, { gamma: -1 })),
    key("gama", "gamma", () => lib.r1Penalty(net, x6, { gama: 1 } as never)),
    nil("discriminator", () => lib.r1Penalty(null as never, x6)),
  ],
  ringQuality: [
    shape("samples", () => lib.ringQuality([[1, 2, 3]])),
    nan("samples", () => lib.ringQuality(nan2)),
    range("modes", () => lib.ringQuality(x6, { modes: 0 })),
    key("mode", "modes", () => lib.ringQuality(x6, { mode: 8 } as never)),
    nil("options", () => lib.ringQuality(x6, null as never)),
  ],
  frechetDistance: [
    dtype("featuresA", () => lib.frechetDistance(strings2 as never, x6)),
    shape("featuresB", () => lib.frechetDistance(x6, [[1, 2, 3], [4, 5, 6]])),
    nan("featuresA", () => lib.frechetDistance(nan2, x6)),
    empty("featuresA", () => lib.frechetDistance(empty2, x6)),
    nil("featuresA", () => lib.frechetDistance(null as never, x6)),
  ],
  knnRadii: [
    range("k", () => lib.knnRadii(x6, { k: 6 })),
    nan("features", () => lib.knnRadii(nan2)),
    key("K", "k", () => lib.knnRadii(x6, { K: 3 } as never)),
    nil("features", () => lib.knnRadii(null as never)),
  ],
  precisionRecall: [
    shape("fake", () => lib.precisionRecall(x6, [[1, 2, 3], [4, 5, 6]])),
    range("k", () => lib.precisionRecall(x6, x6, { k: 0 })),
    key("kk", "k", () => lib.precisionRecall(x6, x6, { kk: 3 } as never)),
    nil("fake", () => lib.precisionRecall(x6, null as never)),
  ],
  withinClassDiversity: [
    shape("labels", () => lib.withinClassDiversity(x6, [0, 1])),
    nan("features", () => lib.withinClassDiversity(nan2, [0, 1])),
    range("labels", () => lib.withinClassDiversity(x6, [0, 1, 0, 1, -1, 0.5])),
    nil("labels", () => lib.withinClassDiversity(x6, null as never)),
  ],
  jacobiEigen: [
    shape("matrix", () => lib.jacobiEigen([1, 2, 3], 2)),
    nan("matrix", () => lib.jacobiEigen([NaN, 0, 0, 1], 2)),
    range(
      "maxSweeps",
      () => lib.jacobiEigen([1, 0, 0, 1], 2, { maxSweeps: 0 }),
    ),
    key(
      "maxSweep",
      "maxSweeps",
      () => lib.jacobiEigen([1, 0, 0, 1], 2, { maxSweep: 5 } as never),
    ),
    nil("matrix", () => lib.jacobiEigen(null as never, 2)),
  ],
  classifierFeatures: [
    shape(
      "images",
      () => lib.classifierFeatures(net, wrongImages as tf.Tensor4D),
    ),
    range(
      "batchSize",
      () =>
        lib.classifierFeatures(net, images as tf.Tensor4D, { batchSize: 0 }),
    ),
    key(
      "batchsize",
      "batchSize",
      () =>
        lib.classifierFeatures(
          net,
          images as tf.Tensor4D,
          { batchsize: 2 } as never,
        ),
    ),
    nil(
      "model",
      () => lib.classifierFeatures(null as never, images as tf.Tensor4D),
    ),
  ],
  classifierProbabilities: [
    shape(
      "images",
      () => lib.classifierProbabilities(net, wrongImages as tf.Tensor4D),
    ),
    range(
      "batchSize",
      () =>
        lib.classifierProbabilities(net, images as tf.Tensor4D, {
          batchSize: 0.5,
        }),
    ),
    nan(
      "batchSize",
      () =>
        lib.classifierProbabilities(net, images as tf.Tensor4D, {
          batchSize: NaN,
        }),
    ),
    key(
      "batchsize",
      "batchSize",
      () =>
        lib.classifierProbabilities(
          net,
          images as tf.Tensor4D,
          { batchsize: 2 } as never,
        ),
    ),
    nil(
      "options",
      () =>
        lib.classifierProbabilities(net, images as tf.Tensor4D, null as never),
    ),
  ],
  loadOrTrainClassifier: [
    range("epochs", () => lib.loadOrTrainClassifier({ epochs: 0 })),
    key(
      "trainlimit",
      "trainLimit",
      () => lib.loadOrTrainClassifier({ trainlimit: 10 } as never),
    ),
    nil("options", () => lib.loadOrTrainClassifier(null as never)),
  ],
  adjointDynamics: [
    shape("a", () => lib.adjointDynamics(f, 0, x6, logits, [])),
    nan("t", () => lib.adjointDynamics(f, NaN, x6, x6, [])),
    nil("f", () => lib.adjointDynamics(null as never, 0, x6, x6, [])),
  ],
  NeuralODE: [
    range(
      "sizes",
      () => new lib.NeuralODE({ sizes: [2], windowTimes: [0, 1] }),
    ),
    range(
      "windowTimes",
      () => new lib.NeuralODE({ sizes: [2, 4, 2], windowTimes: [0, 1, 0.5] }),
    ),
    nan(
      "windowTimes",
      () => new lib.NeuralODE({ sizes: [2, 4, 2], windowTimes: [0, NaN] }),
    ),
    key(
      "windowtimes",
      "windowTimes",
      () =>
        new lib.NeuralODE({ sizes: [2, 4, 2], windowtimes: [0, 1] } as never),
    ),
    nil("options", () => new lib.NeuralODE(null as never)),
  ],
  neuralVectorField: [
    nil("model", () => lib.neuralVectorField(null as never)),
    key(
      "tim",
      "time",
      () => lib.neuralVectorField(net, { tim: true } as never),
    ),
  ],
  OdeClassifier: [
    range("numClasses", () => new lib.OdeClassifier({ numClasses: 1 })),
    nan("augment", () => new lib.OdeClassifier({ augment: NaN })),
    key(
      "solversteps",
      "solverSteps",
      () => new lib.OdeClassifier({ solversteps: 4 } as never),
    ),
    nil("options", () => new lib.OdeClassifier(null as never)),
  ],
  odeint: [
    dtype("y0", () => lib.odeint(f, int2, [0, 1])),
    shape("ts", () => lib.odeint(f, x6, [[0, 1]] as never)),
    range("ts", () => lib.odeint(f, x6, [1, 0, 2])),
    nan("y0", () => lib.odeint(f, nan2, [0, 1])),
    empty("ts", () => lib.odeint(f, x6, [])),
    key(
      "stp",
      "step",
      () => lib.odeint(f, x6, [0, 1], { method: "euler", stp: 0.1 } as never),
    ),
    nil("f", () => lib.odeint(null as never, x6, [0, 1])),
  ],
  odeintAdjoint: [
    nan("y0", () => lib.odeintAdjoint(f, nan2, [0, 1], [], (s) => s.sum())),
    range(
      "ts",
      () => lib.odeintAdjoint(f, x6, [0, 1, 0.5], [], (s) => s.sum()),
    ),
    shape(
      "loss",
      () => lib.odeintAdjoint(f, x6, [0, 1], [], (s) => s as tf.Scalar),
    ),
    key(
      "atl",
      "atol",
      () =>
        lib.odeintAdjoint(
          f,
          x6,
          [0, 1],
          [],
          (s) => s.sum(),
          { atl: 1 } as never,
        ),
    ),
    nil("loss", () => lib.odeintAdjoint(f, x6, [0, 1], [], null as never)),
  ],
  odeintWithStats: [
    range(
      "method",
      () => lib.odeintWithStats(f, x6, [0, 1], { method: "rk5" as never }),
    ),
    nan("ts", () => lib.odeintWithStats(f, x6, [0, NaN])),
    key(
      "rtl",
      "rtol",
      () => lib.odeintWithStats(f, x6, [0, 1], { rtl: 1 } as never),
    ),
    nil("y0", () => lib.odeintWithStats(f, null as never, [0, 1])),
  ],
  residualNetwork: [
    shape("blocks", () => lib.residualNetwork([1 as never], x6)),
    nan("dt", () => lib.residualNetwork([(z) => z], x6, { dt: NaN })),
    key(
      "dT",
      "dt",
      () => lib.residualNetwork([(z) => z], x6, { dT: 1 } as never),
    ),
    nil("x", () => lib.residualNetwork([(z) => z], null as never)),
  ],
  causalAttentionMask: [
    range("length", () => lib.causalAttentionMask(0)),
    nan("length", () => lib.causalAttentionMask(NaN)),
  ],
  TransformerPrior: [
    range(
      "vocabSize",
      () => new lib.TransformerPrior({ vocabSize: 0, length: 4 }),
    ),
    range(
      "heads",
      () =>
        new lib.TransformerPrior({ vocabSize: 4, length: 4, dim: 6, heads: 4 }),
    ),
    key(
      "lenght",
      "length",
      () => new lib.TransformerPrior({ vocabSize: 4, lenght: 4 } as never),
    ),
    nil("options", () => new lib.TransformerPrior(null as never)),
  ],
  adaptiveWeight: [
    dtype("gradRec", () => lib.adaptiveWeight(int2, int2)),
    shape("gradGan", () => lib.adaptiveWeight(x6, logits)),
    range("delta", () => lib.adaptiveWeight(x6, x6, { delta: 0 })),
    key(
      "delt",
      "delta",
      () => lib.adaptiveWeight(x6, x6, { delt: 1 } as never),
    ),
    nil("gradRec", () => lib.adaptiveWeight(null as never, x6)),
  ],
  gradientsAt: [
    shape(
      "variable",
      () => lib.gradientsAt({ a: () => x6.sum() }, x6 as never),
    ),
    nil("losses", () => lib.gradientsAt(null as never, variable)),
  ],
  layerFeatures: [
    empty("layerNames", () => lib.layerFeatures(net, [])),
    range("layerNames", () => lib.layerFeatures(net, ["noSuchLayer"])),
    nil("model", () => lib.layerFeatures(null as never, ["a"])),
  ],
  patchDiscriminator28: [
    range("channels", () => lib.patchDiscriminator28({ channels: [0, 4] })),
    key(
      "chanels",
      "channels",
      () => lib.patchDiscriminator28({ chanels: [4, 8] } as never),
    ),
    nil("options", () => lib.patchDiscriminator28(null as never)),
  ],
  VQGAN: [
    shape("vqvae", () => new lib.VQGAN({ vqvae: {} as never })),
    nil("options", () => new lib.VQGAN(null as never)),
  ],
  TwoLevelVQVAE: [
    range("topCodes", () => new lib.TwoLevelVQVAE({ topCodes: 0 })),
    nan("beta", () => new lib.TwoLevelVQVAE({ beta: NaN })),
    key(
      "bottomcodes",
      "bottomCodes",
      () => new lib.TwoLevelVQVAE({ bottomcodes: 8 } as never),
    ),
    nil("options", () => new lib.TwoLevelVQVAE(null as never)),
  ],
};

Deno.test("every export of lib/mod.ts has a bad-input row or a stated exemption", () => {
  const exports = Object.keys(lib).sort();
  const missing = exports.filter((name) =>
    !(name in TABLE) && !(name in EXEMPT)
  );
  assertEquals(
    missing,
    [],
    `exports without bad-input rows: ${missing.join(", ")}`,
  );
  const stale = [...Object.keys(TABLE), ...Object.keys(EXEMPT)].filter((name) =>
    !exports.includes(name)
  );
  assertEquals(
    stale,
    [],
    `rows for names lib/mod.ts no longer exports: ${stale.join(", ")}`,
  );
  const both = Object.keys(TABLE).filter((name) => name in EXEMPT);
  assertEquals(both, [], "a name is either exempt or has rows");
});

/** Runs one bad call: returns what was wrong with it ("" when it behaved). */
async function verdict(name: string, r: Row): Promise<string> {
  const where = r.where ?? name;
  const before = tf.memory().numTensors;
  let caught: unknown;
  let result: unknown;
  try {
    result = r.call();
    if (result instanceof Promise) result = await result;
    // A generator checks on its first next(): run it as a user would.
    if (result && typeof (result as Iterator<unknown>).next === "function") {
      (result as Iterator<unknown>).next();
    }
  } catch (e) {
    caught = e;
  }
  const leaked = tf.memory().numTensors - before;
  if (caught === undefined) {
    if (result instanceof tf.Tensor) result.dispose();
    if (
      result && typeof (result as { dispose?: unknown }).dispose === "function"
    ) {
      (result as { dispose(): void }).dispose();
    }
    return "did not throw";
  }
  const error = caught as Error;
  const problems: string[] = [];
  if (!(error instanceof ArgumentError)) {
    problems.push(
      `threw ${error?.name ?? typeof error} instead of ArgumentError`,
    );
  }
  const message = String(error?.message);
  if (!message.startsWith(`${where}:`) && !message.startsWith(`${where} `)) {
    problems.push(`does not start with "${where}:"`);
  }
  for (const part of r.names) {
    if (!message.includes(part)) problems.push(`does not name ${part}`);
  }
  if (leaked !== 0) problems.push(`left ${leaked} tensors`);
  return problems.length ? `${problems.join("; ")}: ${message}` : "";
}

for (const [name, rows] of Object.entries(TABLE)) {
  Deno.test(`bad input: ${name} (${rows.map((r) => r.kind).join(", ")})`, async () => {
    const failures: string[] = [];
    for (const r of rows) {
      const wrong = await verdict(name, r);
      if (wrong) failures.push(`  ${r.kind} ${r.names.join(" ")}: ${wrong}`);
    }
    assert(failures.length === 0, `${name}:\n${failures.join("\n")}`);
  });
}

Deno.test("the table covers every kind of bad input", () => {
  const counts = new Map<Kind, number>();
  for (const rows of Object.values(TABLE)) {
    for (const r of rows) counts.set(r.kind, (counts.get(r.kind) ?? 0) + 1);
  }
  for (
    const kind of [
      "shape",
      "dtype",
      "range",
      "nan",
      "empty",
      "null",
      "key",
    ] as Kind[]
  ) {
    assert((counts.get(kind) ?? 0) > 0, `no ${kind} rows`);
  }
});
