// Dev-only: fitGMM (diagonal, K = 10) on the first 10k Fashion-MNIST training images for seeds 0-4.
// Compare with tasks/reference/gmm_seeds.py (sklearn). Run: deno run -A tasks/reference/gmm_seeds.ts
import type * as tf from "@tensorflow/tfjs";
import {
  disposeGMM,
  fitGMM,
  initBackend,
  loadFashionMNIST,
} from "../../lib/mod.ts";
await initBackend({ quiet: true });
const { images } = await loadFashionMNIST({ split: "train", limit: 10000 });
const x = images.reshape([10000, 784]) as tf.Tensor2D;
for (const seed of [0, 1, 2, 3, 4]) {
  const t0 = performance.now();
  const g = fitGMM(x, 10, { covariance: "diagonal", seed });
  console.log(
    `seed ${seed}: ${g.logLikelihood.toFixed(2)} (${g.history.length} it, ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s)`,
  );
  disposeGMM(g);
}
