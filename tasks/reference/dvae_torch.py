"""Dev-only PyTorch reference for notebook 04 (the Gumbel-softmax dVAE).

Trains the same model with the same schedule as the notebook's full mode and
prints the test-set negative ELBO (nats per image), to compare with the
tfjs result of lib/dvae.ts. Not a runtime dependency of the course.

Model (lib/dvae.ts, createDVAE({ latents: 30, classes: 10, hidden: [256] })):
  encoder 784 -> 256 (ReLU) -> 30*10 logits; decoder 300 -> 256 (ReLU) -> 784
  Bernoulli logits; Glorot-uniform weights, zero biases.
Loss: -ELBO = sum_pixels BCE(logits, x) at a relaxed sample
  F.gumbel_softmax(logits, tau) + sum_n KL(q_n || U(10)), mean over the batch.
Schedule: Adam(1e-3), batch 100, STEPS steps over shuffled epochs of the
  60k training images, tau = max(0.5, exp(-r t)) reaching 0.5 at 70% of STEPS.
Evaluation: 10k test images, one exact categorical sample per image
  (hard one-hots) for the reconstruction term, the exact KL.

Usage: OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 tasks/reference/dvae_torch.py [steps=2000] [seed=0]
(PASSIVE: on a loaded machine OpenMP's spinning threads make Debian's torch
10-20x slower.)
Needs torch and numpy (apt-get install -y python3-torch).
"""
import gzip
import math
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
SEED = int(sys.argv[2]) if len(sys.argv) > 2 else 0
N, K, HIDDEN, BATCH, LR = 30, 10, 256, 100, 1e-3
TAU0, TAU_MIN = 1.0, 0.5
RATE = math.log(TAU0 / TAU_MIN) / round(0.7 * STEPS)
DATA = "/usr/share/datasets/fashion-mnist/"


def load(prefix):
    with gzip.open(f"{DATA}{prefix}-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16)
    return torch.tensor(raw.reshape(-1, 784).astype(np.float32) / 255.0)


def dense(i, o):
    layer = nn.Linear(i, o)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def kl_to_uniform(logits):
    logq = F.log_softmax(logits, -1)
    return (logq.exp() * (logq + math.log(K))).sum(-1)


def main():
    torch.manual_seed(SEED)
    train, test = load("train"), load("t10k")
    enc = nn.Sequential(dense(784, HIDDEN), nn.ReLU(), dense(HIDDEN, N * K))
    dec = nn.Sequential(dense(N * K, HIDDEN), nn.ReLU(), dense(HIDDEN, 784))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=LR, eps=1e-7)

    def neg_elbo(x, tau=None):
        logits = enc(x).view(-1, N, K)
        if tau is None:  # exact discrete sample
            c = F.one_hot(torch.distributions.Categorical(logits=logits).sample(), K).float()
        else:
            c = F.gumbel_softmax(logits, tau=tau, hard=False)
        recon = F.binary_cross_entropy_with_logits(dec(c.view(-1, N * K)), x, reduction="none").sum(1)
        return recon, kl_to_uniform(logits).sum(1)

    start, step = time.time(), 0
    while step < STEPS:
        for idx in torch.randperm(len(train)).split(BATCH):
            if step >= STEPS:
                break
            tau = max(TAU_MIN, TAU0 * math.exp(-RATE * step))
            recon, kl = neg_elbo(train[idx], tau)
            loss = (recon + kl).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % 200 == 0:
                print(f"step {step} tau {tau:.3f} loss {loss.item():.2f} kl {kl.mean().item():.2f}", flush=True)
            step += 1
    with torch.no_grad():
        recon, kl = neg_elbo(test)
    print(f"trained {STEPS} steps in {time.time() - start:.1f}s")
    print(f"test -ELBO {(recon + kl).mean().item():.2f} nats/image "
          f"(recon {recon.mean().item():.2f}, KL {kl.mean().item():.2f})")


if __name__ == "__main__":
    main()
