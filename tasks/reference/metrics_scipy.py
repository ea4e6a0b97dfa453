"""Dev-only check of lib/metrics.ts frechetDistance against scipy.linalg.sqrtm.

Not a runtime dependency. Usage (from the repo root):
    python3 tasks/reference/metrics_scipy.py

It asks Deno (`deno eval`) for the cases: two feature sets per case (the
seeded correlated Gaussian sets x = z A + shift that tests/metrics.test.ts
also builds, from lib/random.ts's Rng) and lib/metrics.ts's value. For each case this prints the textbook FID
|mu_a - mu_b|^2 + tr(S_a + S_b - 2 sqrtm(S_a S_b)) with scipy's general
(Schur-based) sqrtm, our value, and the relative difference. When the
covariances are singular (n <= d) sqrtm's result has an imaginary part and
the usual FID code retries with an eps * I offset; both are shown.
"""
import json
import os
import subprocess

import numpy as np
from scipy import linalg


def fid(a, b, eps=0.0):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    if eps:
        off = np.eye(s1.shape[0]) * eps
        s1, s2 = s1 + off, s2 + off
    covmean = linalg.sqrtm(s1 @ s2)
    imag = np.max(np.abs(np.imag(covmean))) if np.iscomplexobj(covmean) else 0.0
    covmean = np.real(covmean)
    d = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    return float(d), float(imag)


ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

DENO_CASES = """
import { Rng } from "%(root)s/lib/random.ts";
import { frechetDistance } from "%(root)s/lib/metrics.ts";
function randomSets(seed, n, m, d) {
  const rng = new Rng(seed);
  const mix = (rows, shift) => {
    const a = Array.from({ length: d }, () => Array.from({ length: d }, () => rng.normal() / Math.sqrt(d)));
    return Array.from({ length: rows }, () => {
      const z = Array.from({ length: d }, () => rng.normal());
      return a.map((_, j) => z.reduce((s, zi, i) => s + zi * a[i][j], shift));
    });
  };
  return [mix(n, 0), mix(m, 0.3)];
}
const cases = [[1, 50, 60, 5], [2, 200, 150, 20], [3, 100, 100, 64], [4, 30, 40, 64]].map(([seed, n, m, d]) => {
  const [a, b] = randomSets(seed, n, m, d);
  return { seed, n, m, d, a, b, ours: frechetDistance(a, b) };
});
console.log(JSON.stringify(cases));
"""


def deno_cases():
    out = subprocess.run(
        ["deno", "eval", "--config", os.path.join(ROOT, "deno.json"), DENO_CASES % {"root": ROOT}],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    cases = deno_cases()
    print(f"{'seed':>4} {'n':>4} {'m':>4} {'d':>3} {'scipy':>20} {'ours':>20} {'rel.diff':>10} {'imag':>9}")
    for c in cases:
        a, b = np.array(c["a"], dtype=np.float64), np.array(c["b"], dtype=np.float64)
        ref, imag = fid(a, b)
        rel = abs(ref - c["ours"]) / abs(ref)
        print(f"{c['seed']:>4} {c['n']:>4} {c['m']:>4} {c['d']:>3} {ref:>20.12f} {c['ours']:>20.12f} {rel:>10.2e} {imag:>9.1e}")
        if imag > 1e-6 or c["n"] <= c["d"] or c["m"] <= c["d"]:
            ref_eps, _ = fid(a, b, eps=1e-6)
            print(f"{'':>18} eps=1e-6 offset: {ref_eps:.12f} (rel.diff {abs(ref_eps - c['ours']) / abs(ref_eps):.2e})")


if __name__ == "__main__":
    main()
