"""Dev-only PyTorch reference for notebook 03 (the VQ-VAE): same architecture,
losses, optimizer, batch size, schedule and codebook tricks as lib/vqvae.ts in
the notebook's full mode, to compare the test-set reconstruction MSE, the code
perplexity and the number of codes used. Not a runtime dependency.

Architecture (as lib/nn.ts convEncoder28 / convDecoder28 with channels [16, 32], d = 16):
  encoder: conv 4x4 s2 (1->16) ReLU, conv 4x4 s2 (16->32) ReLU, conv 1x1 (32->16)   28 -> 7x7x16
  decoder: conv 3x3 (16->32) ReLU, convT 4x4 s2 (32->16) ReLU, convT 4x4 s2 (16->1) linear
  ("same" padding = padding 1 for the 4x4 stride-2 layers), Glorot-uniform kernels, zero biases.
Quantizer: K = 64 codes, nearest code per 7x7 position, straight-through
  h + (e - h).detach(), loss = mse(x^, x) + mse(e, h.detach()) + 0.25 mse(h, e.detach());
  codebook initialised by k-means (25 Lloyd iterations, k-means++ seeding) of the first batch's
  49 * 64 vectors; a code unused for 100 consecutive steps is moved onto a random
  encoder output of the current batch.
Training: Adam lr 2e-3 (encoder, decoder and codebook), batch 64, 2000 steps over the
  60,000 training images reshuffled every epoch; evaluation on the 10,000 test images.

usage: /usr/bin/python3 tasks/reference/vqvae_torch.py [--steps 2000] [--seed 0]
(Debian's python3-torch; 2 threads.)
"""
import argparse
import gzip
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist/"


def load(prefix):
    with gzip.open(f"{DATA}{prefix}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    return torch.tensor(x.astype(np.float32) / 255.0)


def glorot(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(m.bias)


def kmeans_pp(x, k, iters, gen):
    n = x.shape[0]
    centres = [x[torch.randint(n, (1,), generator=gen)].squeeze(0)]
    closest = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        i = torch.multinomial(closest / closest.sum(), 1, generator=gen)
        centres.append(x[i].squeeze(0))
        closest = torch.minimum(closest, ((x - centres[-1]) ** 2).sum(1))
    c = torch.stack(centres)
    for _ in range(iters):
        z = torch.cdist(x, c).argmin(1)
        for j in range(k):
            sel = x[z == j]
            if len(sel):
                c[j] = sel.mean(0)
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dead-after", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    train, test = load("train"), load("t10k")
    K, d = 64, 16
    enc = nn.Sequential(
        nn.Conv2d(1, 16, 4, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, d, 1)
    )
    dec = nn.Sequential(
        nn.Conv2d(d, 32, 3, 1, 1), nn.ReLU(), nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(16, 1, 4, 2, 1),
    )
    enc.apply(glorot)
    dec.apply(glorot)
    codebook = nn.Parameter(torch.empty(K, d))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=2e-3)
    opt_cb = torch.optim.Adam([codebook], lr=2e-3)
    idle = torch.zeros(K, dtype=torch.long)
    n = train.shape[0]
    order, pos, epoch = None, n, -1
    t0 = time.time()
    restarts = 0
    for step in range(args.steps):
        if pos + 64 > n:
            epoch += 1
            order = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed + epoch))
            pos = 0
        x = train[order[pos:pos + 64]]
        pos += 64
        h = enc(x).permute(0, 2, 3, 1).reshape(-1, d)
        if step == 0:
            with torch.no_grad():
                codebook.copy_(kmeans_pp(h.detach(), K, 25, gen))
        z = torch.cdist(h.detach(), codebook.detach()).argmin(1)
        e = codebook[z]
        q = h + (e - h).detach()
        xhat = dec(q.reshape(-1, 7, 7, d).permute(0, 3, 1, 2))
        recon = F.mse_loss(xhat, x)
        loss = recon + F.mse_loss(e, h.detach()) + 0.25 * F.mse_loss(h, e.detach())
        opt.zero_grad()
        opt_cb.zero_grad()
        loss.backward()
        opt.step()
        opt_cb.step()
        counts = torch.bincount(z, minlength=K)
        idle = torch.where(counts > 0, torch.zeros_like(idle), idle + 1)
        dead = (idle >= args.dead_after).nonzero().flatten()
        if args.dead_after > 0 and len(dead):
            with torch.no_grad():
                pick = torch.randint(h.shape[0], (len(dead),), generator=gen)
                codebook[dead] = h.detach()[pick]
            idle[dead] = 0
            restarts += len(dead)
        if step % 200 == 0 or step == args.steps - 1:
            print(f"step {step} recon {recon.item():.5f} used {int((counts > 0).sum())} "
                  f"restarts {restarts} {time.time() - t0:.0f}s", flush=True)
    with torch.no_grad():
        sq, allz = 0.0, []
        for s in range(0, test.shape[0], 500):
            x = test[s:s + 500]
            h = enc(x).permute(0, 2, 3, 1).reshape(-1, d)
            z = torch.cdist(h, codebook).argmin(1)
            xhat = dec(codebook[z].reshape(-1, 7, 7, d).permute(0, 3, 1, 2))
            sq += ((xhat - x) ** 2).sum().item()
            allz.append(z)
        z = torch.cat(allz)
        p = torch.bincount(z, minlength=K).float() / len(z)
        ppl = math.exp(-(p[p > 0] * p[p > 0].log()).sum().item())
        print(f"TEST mse {sq / (test.shape[0] * 784):.5f} perplexity {ppl:.1f} "
              f"used {int((p > 0).sum())}/{K} train_time {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
