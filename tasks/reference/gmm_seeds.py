"""Dev-only: sklearn GaussianMixture(10, diag) for random_state 0-4 on the first 10k Fashion-MNIST
training images; compare with tasks/reference/gmm_seeds.ts. Run: /usr/bin/python3 tasks/reference/gmm_seeds.py"""
import numpy as np, gzip
from sklearn.mixture import GaussianMixture
with gzip.open('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz') as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16)[:10000*784].reshape(10000, 784).astype(np.float32) / 255
for s in range(5):
    print("sklearn random_state", s, round(GaussianMixture(10, covariance_type="diag", random_state=s).fit(x).score(x), 2), flush=True)
