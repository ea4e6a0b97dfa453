"""Dev-only reference numbers for lib/vae.ts and notebooks/02_gaussian_vae.ipynb.

Never imported by the package; needs numpy (and optionally torch).

    python3 tasks/reference/vae_torch.py

Prints:
1. PCA of the first 4000 Fashion-MNIST training images average-pooled to
   14x14 (as in notebook section 1), by numpy SVD: the top-8 variances and the
   variance left outside the top-8 subspace (the linear autoencoder's optimal
   loss, which the notebook prints next to its trained loss).
2. Closed-form KL of diagonal Gaussians on the example of notebook section 2
   and, if torch is installed, torch.distributions.kl_divergence on it.
3. Exact variances of the three one-sample gradient estimators of
   d/dmu E[(z - 2)^2], z ~ N(0.5, 0.8^2) (notebook section 3).
"""
import gzip
import os

import numpy as np

ROOTS = ["data/fashion-mnist", "/usr/share/datasets/fashion-mnist"]


def load_images(n):
    for root in ROOTS:
        path = os.path.join(root, "train-images-idx3-ubyte.gz")
        if os.path.exists(path):
            with gzip.open(path) as f:
                raw = np.frombuffer(f.read(), np.uint8, offset=16)
            return raw[: n * 784].reshape(n, 28, 28).astype(np.float64) / 255
    raise SystemExit("Fashion-MNIST training images not found in " + ", ".join(ROOTS))


def pca_reference():
    x = load_images(4000)
    small = x.reshape(4000, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(4000, 196)
    xc = small - small.mean(0)
    s = np.linalg.svd(xc, compute_uv=False)
    eig = s**2 / (len(xc) - 1)
    print("PCA top-8 variances:", np.round(eig[:8], 4))
    print("variance outside the top-8 subspace (optimal linear AE loss): %.4f" % eig[8:].sum())


def kl_reference():
    mu = np.array([1.0, -0.5])
    var = np.array([0.5, 2.0])
    kl = np.sum(0.5 * (var + mu**2 - 1 - np.log(var)))
    print("closed-form KL(N([1, -0.5], diag[0.5, 2]) || N(0, I)) = %.6f" % kl)
    try:
        import torch
        from torch.distributions import Normal, kl_divergence

        q = Normal(torch.tensor(mu), torch.tensor(np.sqrt(var)))
        p = Normal(torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64))
        print("torch kl_divergence summed: %.6f" % kl_divergence(q, p).sum().item())
    except ImportError:
        print("(torch not installed: skipped the torch comparison)")


def estimator_reference():
    mu, sigma, a = 0.5, 0.8, 2.0
    b, s2 = mu - a, sigma**2
    print("exact gradient d/dmu: %.3f" % (2 * b))
    print("variance, reparameterization: %.3f" % (4 * s2))
    print("variance, score function: %.3f" % ((b**4 + 18 * b * b * s2 + 15 * s2 * s2) / s2 - 4 * b * b))
    print("variance, score function with baseline f(mu): %.3f" % (8 * b * b + 15 * s2))


if __name__ == "__main__":
    pca_reference()
    kl_reference()
    estimator_reference()
