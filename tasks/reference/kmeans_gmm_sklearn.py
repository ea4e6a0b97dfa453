#!/usr/bin/python3
"""Dev-only check: lib/vq.ts `kmeans` and lib/gmm.ts `fitGMM` against scikit-learn.

Not a dependency of the package: scikit-learn is only needed to run this
script (Debian: apt-get install -y python3-sklearn). It builds two data sets,
fits both implementations on exactly the same float32 data (k-means with
n_init=10 restarts; the GMM with sklearn's default n_init=1 and with a few
restarts on both sides, since a single EM run can stop in a different local
optimum on either side) and prints the
k-means inertia and the diagonal-GMM average log-likelihood (natural log,
sklearn's `score`) side by side with the relative difference:

  * blobs: 3,000 points in 5D from 8 Gaussian blobs (sklearn make_blobs,
    random_state=0);
  * Fashion-MNIST: the first 10,000 training images, pixels / 255, 784-D
    (read from /usr/share/datasets/fashion-mnist/ or data/fashion-mnist/).

The target (issue 4) is agreement within 0.5%.

Run from the repository root:

    /usr/bin/python3 tasks/reference/kmeans_gmm_sklearn.py            # all cases
    /usr/bin/python3 tasks/reference/kmeans_gmm_sklearn.py --quick    # blobs only
"""
import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.mixture import GaussianMixture

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build", "reference")

DENO_SIDE = r"""
import * as tf from "@tensorflow/tfjs";
import { initBackend, kmeans, fitGMM, disposeGMM } from "../../lib/mod.ts";
await initBackend({ quiet: true });
const cases = JSON.parse(Deno.readTextFileSync(Deno.args[0]));
const out: Record<string, unknown>[] = [];
for (const c of cases) {
  const bytes = Deno.readFileSync(c.file);
  const x = tf.tensor2d(new Float32Array(bytes.buffer), [c.n, c.d]);
  const t0 = performance.now();
  let value: number;
  if (c.kind === "kmeans") {
    const r = kmeans(x, c.k, { nInit: 10, seed: 0 });
    value = r.inertia;
    tf.dispose([r.centroids, r.assignments]);
  } else {
    const g = fitGMM(x, c.k, { covariance: "diagonal", seed: 0, nInit: c.nInit });
    value = g.logLikelihood;
    disposeGMM(g);
  }
  out.push({ name: c.name, value, seconds: (performance.now() - t0) / 1000 });
  x.dispose();
}
console.log(JSON.stringify(out));
"""


def fashion_mnist(n):
    for folder in ["/usr/share/datasets/fashion-mnist", os.path.join(ROOT, "data", "fashion-mnist")]:
        path = os.path.join(folder, "train-images-idx3-ubyte.gz")
        if os.path.exists(path):
            with gzip.open(path) as f:
                raw = np.frombuffer(f.read(), np.uint8, offset=16)
            return (raw.reshape(-1, 784)[:n] / 255.0).astype(np.float32)
    sys.exit("Fashion-MNIST train images not found")


def main():
    quick = "--quick" in sys.argv
    os.makedirs(BUILD, exist_ok=True)
    blobs, _ = make_blobs(3000, n_features=5, centers=8, cluster_std=1.5, random_state=0)
    datasets = {"blobs": blobs.astype(np.float32)}
    if not quick:
        datasets["fmnist10k"] = fashion_mnist(10000)
    # (kind, data, K, n_init); k-means always uses n_init=10 on both sides.
    cases = [
        ("kmeans", "blobs", 8, 10), ("gmm", "blobs", 8, 1), ("gmm", "blobs", 8, 5),
    ]
    if not quick:
        cases += [("kmeans", "fmnist10k", 10, 10), ("kmeans", "fmnist10k", 32, 10),
                  ("gmm", "fmnist10k", 10, 1), ("gmm", "fmnist10k", 10, 3)]
    spec = []
    for name, x in datasets.items():
        path = os.path.join(BUILD, f"{name}.f32")
        x.tofile(path)
    reference = {}
    for kind, data, k, n_init in cases:
        x = datasets[data].astype(np.float64)
        t0 = time.time()
        if kind == "kmeans":
            value = KMeans(n_clusters=k, n_init=10, random_state=0).fit(x).inertia_
        else:
            value = GaussianMixture(n_components=k, covariance_type="diag", n_init=n_init,
                                    random_state=0).fit(x).score(x)
        label = f"{kind} {data} K={k} nInit={n_init}"
        reference[label] = (value, time.time() - t0)
        n, d = datasets[data].shape
        spec.append({"name": label, "kind": kind, "k": k, "nInit": n_init, "n": n, "d": d,
                     "file": os.path.join(BUILD, f"{data}.f32")})
    spec_path = os.path.join(BUILD, "cases.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    script = os.path.join(BUILD, "deno_side.ts")
    with open(script, "w") as f:
        f.write(DENO_SIDE)
    result = subprocess.run(["deno", "run", "--allow-read", "--allow-env", script, spec_path],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    ours = {r["name"]: r for r in json.loads(result.stdout.strip().splitlines()[-1])}
    print(f"{'case':36} {'sklearn':>14} {'ours':>14} {'rel. diff':>10} {'t sk':>6} {'t ours':>6}")
    for label, (ref, t_ref) in reference.items():
        mine = ours[label]["value"]
        rel = (mine - ref) / abs(ref)
        print(f"{label:36} {ref:14.6g} {mine:14.6g} {100 * rel:9.3f}% {t_ref:6.1f} {ours[label]['seconds']:6.1f}")


if __name__ == "__main__":
    main()
