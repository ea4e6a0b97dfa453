#!/usr/bin/env python3
"""PyTorch counterparts of the workloads in tasks/bench.ts (dev-only).

Run by `deno task bench` once per round when /usr/bin/python3 can import
torch (Debian: apt-get install python3-torch); never a runtime dependency of
the course. Each model mirrors its tfjs twin layer for layer (NCHW instead of
NHWC; "same" padding of a 4x4 stride-2 convolution is padding=1 here).

OMP_WAIT_POLICY defaults to PASSIVE here (see below); pass
OMP_WAIT_POLICY=ACTIVE in the environment to measure the default. glibc's
malloc keeps freed memory here (see steady_malloc); pass
BENCH_TORCH_MALLOC=default to measure glibc's own policy.

Which BLAS torch uses matters more than anything else: Debian's torch is
built with BLAS_INFO=generic and calls whatever libblas.so.3 the alternatives
system points at (OpenBLAS if installed, else the slow reference BLAS). The
library actually mapped into the process is reported as `blas`.

Usage:
  python3 tasks/reference/bench_torch.py [--json] [--only=a,b] [--budget-ms=N] [--threads=N]
Prints ms/step per workload (the mean over a block of up to 50 steps within
one call, as the tfjs side is timed; the caller interleaves calls and takes
medians across rounds).
"""
import json
import os
import re
import sys
import time

# On a shared 2-core machine, OpenMP threads that spin while waiting fight
# OpenBLAS's own threads and other processes: a Linear layer's backward pass
# took 14 ms with the default (active) policy and 1 ms with PASSIVE. Must be
# set before libgomp loads, i.e. before importing torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import ctypes  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def steady_malloc():
    """Keeps glibc from handing each freed tensor's pages back to the kernel.

    A step allocates and frees the same large tensors (a 128 x 784 batch is
    400 KB) again and again. glibc serves blocks above its mmap threshold with
    fresh mmaps, and gives the top of the heap back above its trim threshold;
    both thresholds move with what was freed earlier in the process. So a
    workload's time depended on which workloads ran before it in the same
    process: the GAN step took 31-34 ms alone and 10 ms after the VQ-VAE
    rows, the difference being ~150k minor page faults, which cost ~10 us
    each on a VM. Fixing both thresholds (the mmap one at glibc's maximum,
    32 MB) makes every step reuse its memory, as tfjs's wasm heap does.
    Returns what was set, for the report.
    """
    if os.environ.get("BENCH_TORCH_MALLOC") == "default":
        return "glibc default (BENCH_TORCH_MALLOC=default)"
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return "not glibc: allocator default"
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    ok = libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1
    ok = libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 and ok
    if not ok:
        raise RuntimeError("bench_torch.py: mallopt refused the thresholds")
    return "mmap threshold 32 MB, trim threshold 1 GB (mallopt)"


MALLOC = steady_malloc()


def arg(name, default=None):
    for a in sys.argv[1:]:
        if a == f"--{name}":
            return ""
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return default


def blas_in_use():
    """The BLAS shared object mapped into this process, resolved through symlinks."""
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if "blas" in path.lower() and ".so" in path:
                libs.add(os.path.realpath(path))
    if not libs:
        return "no separate BLAS mapped (MKL/bundled?)"
    return ", ".join(sorted(libs))


def encoder(d):
    return nn.Sequential(
        nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(),
        nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
        nn.Conv2d(64, d, 1),
    )


def decoder(d):
    return nn.Sequential(
        nn.Conv2d(d, 64, 3, 1, 1), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(32, 1, 4, 2, 1),
    )


def make_vqvae(batch=64, d=16, K=128):
    torch.manual_seed(0)
    enc, dec = encoder(d), decoder(d)
    codebook = nn.Parameter(torch.randn(K, d) * 0.1)
    x = torch.rand(batch, 1, 28, 28)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters(), codebook], 1e-3)

    def step():
        h = enc(x)  # [b, d, 7, 7]
        flat = h.permute(0, 2, 3, 1).reshape(-1, d)
        with torch.no_grad():
            idx = torch.argmin(-2 * flat @ codebook.t() + (codebook ** 2).sum(1), 1)
        q = codebook[idx]
        st = flat + (q - flat).detach()
        xr = dec(st.reshape(batch, 7, 7, d).permute(0, 3, 1, 2))
        loss = F.mse_loss(xr, x) + F.mse_loss(q, flat.detach()) + 0.25 * F.mse_loss(flat, q.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def mlp(sizes, act, out_act=None):
    layers = []
    for i in range(1, len(sizes)):
        layers.append(nn.Linear(sizes[i - 1], sizes[i]))
        if i < len(sizes) - 1:
            layers.append(act())
    if out_act:
        layers.append(out_act())
    return nn.Sequential(*layers)


def make_gan(batch=128, z=64, hidden=256, g_act=lambda: nn.LeakyReLU(0.2)):
    torch.manual_seed(0)
    G = mlp([z, hidden, hidden, 784], g_act, nn.Sigmoid)
    D = mlp([784, hidden, hidden, 1], lambda: nn.LeakyReLU(0.2))
    real = torch.rand(batch, 784)
    optD = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
    bce = F.binary_cross_entropy_with_logits

    def step():
        noise = torch.randn(batch, z)
        fake = G(noise)
        lossD = bce(D(real), ones) + bce(D(fake.detach()), zeros)
        optD.zero_grad()
        lossD.backward()
        optD.step()
        lossG = bce(D(G(noise)), ones)
        optG.zero_grad()
        lossG.backward()
        optG.step()

    return step


def make_dvae(batch=128, N=30, K=10):
    torch.manual_seed(0)
    enc = mlp([784, 512, 256, N * K], nn.ReLU)
    dec = mlp([N * K, 256, 512, 784], nn.ReLU)
    x = torch.rand(batch, 784)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], 1e-3)

    def step():
        logits = enc(x).reshape(batch, N, K)
        c = F.gumbel_softmax(logits, tau=1.0)
        recon = F.binary_cross_entropy_with_logits(dec(c.reshape(batch, -1)), x, reduction="none").sum(1).mean()
        logq = F.log_softmax(logits, -1)
        kl = (logq.exp() * (logq + torch.log(torch.tensor(float(K))))).sum((1, 2)).mean()
        loss = recon + kl
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def make_ode(batch=20, seg=10):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 50), nn.Tanh(), nn.Linear(50, 2))
    times = [i * 0.025 for i in range(seg)]
    target = torch.randn(seg, batch, 2)
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    f = lambda y: net(y ** 3)

    def step():
        y = target[0]
        ys = [y]
        for i in range(seg - 1):
            h = times[i + 1] - times[i]
            k1 = f(y)
            k2 = f(y + h / 2 * k1)
            k3 = f(y + h / 2 * k2)
            k4 = f(y + h * k3)
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            ys.append(y)
        loss = (torch.stack(ys) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def make_matmul(n):
    a, b = torch.randn(n, n), torch.randn(n, n)
    return lambda: torch.mm(a, b)


def make_readback(n):
    """A new copy of an n x n float32 result (tfjs: await c.data())."""
    c = torch.mm(torch.randn(n, n), torch.randn(n, n))
    return lambda: c.numpy().copy()


CONV_KEY = re.compile(
    r"^(convgrad|convtgrad)_k(\d+)_s(\d+)_(same|valid)_c(\d+)_(\d+)_h(\d+)_b(\d+)$")


def make_conv_grad(key):
    """One conv layer's forward pass and both gradients, as in tasks/bench.ts.

    "same" is tfjs's padding: (k - 1) // 2 on each side here, which gives
    the same output size for the geometries of the bench (tfjs puts an odd
    total padding's extra pixel at the bottom/right; the cost is the same).
    """
    kind, k, s, pad, cin, cout, h, b = CONV_KEY.match(key).groups()
    k, s, cin, cout, h, b = map(int, (k, s, cin, cout, h, b))
    torch.manual_seed(0)
    x = torch.randn(b, cin, h, h, requires_grad=True)
    if kind == "convgrad":
        p = (k - 1) // 2 if pad == "same" else 0
        if pad == "same" and k % 2 == 0:
            p = k // 2 - 1 if s == 2 else k // 2  # 4x4/2 same: 1
        layer = nn.Conv2d(cin, cout, k, s, p, bias=False)
    else:
        # tfjs conv2dTranspose "same": output = input * stride.
        p = (k - s + 1) // 2 if pad == "same" else 0
        out_pad = h * s - ((h - 1) * s - 2 * p + k) if pad == "same" else 0
        layer = nn.ConvTranspose2d(cin, cout, k, s, p, output_padding=out_pad, bias=False)
    upstream = torch.randn_like(layer(x))

    def step():
        x.grad = None
        layer.weight.grad = None
        (layer(x) * upstream).sum().backward()

    return step


WORKLOADS = {
    "matmul1024": lambda: make_matmul(1024),
    "readback1024": lambda: make_readback(1024),
    "vqvae": make_vqvae,
    "vqvae256": lambda: make_vqvae(K=256),
    "vqvae_lib": lambda: make_vqvae(K=64),
    "gan": make_gan,
    "gan_lib": lambda: make_gan(g_act=nn.ReLU),
    "dvae": make_dvae,
    "ode": make_ode,
}


def time_step(step, budget_ms):
    """ms per step: the mean over a block of up to 50 steps, as tasks/bench.ts
    times the tfjs side (a median of single steps would drop the slow ones,
    such as a collection or a burst of page faults, that a training run pays)."""
    step()
    step()
    t0 = time.perf_counter()
    step()
    est = (time.perf_counter() - t0) * 1000
    reps = max(1, min(50, round(budget_ms / max(est, 1e-3))))
    t0 = time.perf_counter()
    for _ in range(reps):
        step()
    return (time.perf_counter() - t0) * 1000 / reps


def main():
    threads = int(arg("threads", "2"))
    torch.set_num_threads(threads)
    only = [n for n in (arg("only", "") or "").split(",") if n] or list(WORKLOADS)
    budget = float(arg("budget-ms", "1000"))
    ms = {}
    for name in only:
        if name in WORKLOADS:
            ms[name] = time_step(WORKLOADS[name](), budget)
        elif CONV_KEY.match(name):
            ms[name] = time_step(make_conv_grad(name), budget)
    info = {
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": blas_in_use(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "malloc": MALLOC,
    }
    if arg("json") is not None:
        print(json.dumps({"info": info, "ms": ms}))
    else:
        print(f"PyTorch {info['version']}, {info['threads']} threads, BLAS {info['blas']}, malloc: {info['malloc']}")
        for k, v in ms.items():
            print(f"{k:12s} {v:8.2f} ms/step")


if __name__ == "__main__":
    main()
