"""Dev-only reference for lib/ode.ts (never a runtime dependency).

Solves the course's test problems with scipy's solve_ivp(method="DOP853",
rtol=1e-10, atol=1e-12) in float64 and writes the states to
build/ode_scipy_reference.json. build/nb06_compare.ts (or any Deno snippet)
then solves the same problems with odeint(..., {method: "dopri5"}) at several
tolerances and reports the largest deviation relative to the requested
tolerance. For a like-for-like baseline this script also prints the global
error of scipy's own Dormand-Prince 5(4) (method="RK45") at the same
tolerances: a local-error controller does not bound the global error, so
lib/ode.ts's dopri5 should be about as far from the reference as RK45 is.

usage: python3 tasks/reference/ode_scipy.py [out.json]

Problems (same definitions as the notebook):
- spiral: dy/dt = (y**3) @ A, A = [[-0.1, 2], [-2, -0.1]], y0 = [2, 0], t in [0, 25]
  (Chen et al. 2018, torchdiffeq's ode_demo), 26 output times.
- vanderpol: x'' = mu (1 - x^2) x' - x with mu = 1, y0 = [2, 0], t in [0, 10].
- oscillator: x'' = -x, y0 = [1, 0], t in [0, 10] (closed form cos t).
"""
import json
import sys

import numpy as np
from scipy.integrate import solve_ivp

A = np.array([[-0.1, 2.0], [-2.0, -0.1]])

PROBLEMS = {
    "spiral": (lambda t, y: (y**3) @ A, [2.0, 0.0], np.linspace(0, 25, 26)),
    "vanderpol": (
        lambda t, y: [y[1], 1.0 * (1 - y[0] ** 2) * y[1] - y[0]],
        [2.0, 0.0],
        np.linspace(0, 10, 11),
    ),
    "oscillator": (lambda t, y: [y[1], -y[0]], [1.0, 0.0], np.linspace(0, 10, 11)),
}


def main() -> None:
    out_path = sys.argv[1] if len(sys.argv) > 1 else "build/ode_scipy_reference.json"
    result = {}
    for name, (f, y0, ts) in PROBLEMS.items():
        sol = solve_ivp(f, (ts[0], ts[-1]), y0, method="DOP853", t_eval=ts, rtol=1e-10, atol=1e-12)
        assert sol.success, sol.message
        result[name] = {"y0": y0, "ts": ts.tolist(), "states": sol.y.T.tolist(), "nfev": int(sol.nfev)}
        print(f"{name}: nfev={sol.nfev}, final state={sol.y[:, -1]}")
        for rtol in [1e-3, 1e-4, 1e-5, 1e-6]:
            atol = rtol * 1e-2
            rk = solve_ivp(f, (ts[0], ts[-1]), y0, method="RK45", t_eval=ts, rtol=rtol, atol=atol)
            err = np.abs(rk.y - sol.y)
            scaled = (err / (atol + rtol * np.abs(sol.y))).max()
            print(f"  RK45 rtol={rtol:.0e} atol={atol:.0e} nfe={rk.nfev:5d} "
                  f"max|err|={err.max():.2e} max err/(atol+rtol|y|)={scaled:.2f}")
    with open(out_path, "w") as fh:
        json.dump(result, fh)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
