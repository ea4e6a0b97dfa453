"""Dev-only: where does lib/ode.ts's dopri5 global error come from?

For the three problems of tasks/reference/ode_scipy.py (oscillator, Van der
Pol mu = 1, the cubic spiral) and rtol = 1e-3 .. 1e-6 (atol = rtol / 100),
prints the largest error over all output times and components, normalized
per component as |err| / (atol + rtol * |y_ref|) (1 = "the requested
tolerance"), against scipy's DOP853 at rtol 1e-12, atol 1e-14, for:

- ours:     lib/ode.ts odeint(..., {method: "dopri5"}) in tfjs float32, read
            from the JSON written by tasks/reference/ode_dopri5_ours.ts;
- emu64:    this file's line-by-line port of lib/ode.ts's controller (same
            tableau, error norm, initial step, safety/min/max factors, step
            clipping at output times) in float64: what ours would give
            without round-off;
- emu32:    the same port with every state operation rounded to float32 (a
            check that the port reproduces ours);
- RK45:     scipy solve_ivp(method="RK45") at the same rtol/atol, float64.

the round-off part, |emu32 - emu64| in the same normalized units, and a
float32 floor: emu32 at rtol = 1e-10, atol = 1e-12 (truncation error
negligible, so what is left is round-off over many tiny steps, an upper
bound on the round-off at the looser tolerances). A second table gives the
absolute errors and the errors scaled by the whole state's size,
max_t ||err||_inf / (atol + rtol ||y_ref||_inf), and the log-log slope of the
absolute error against rtol (tolerance proportionality). A third table
compares odeint's tolerance "local" (the default) with tolerance "global"
(solve at rtol and rtol / 10, refine until two consecutive solves agree to
the requested tolerance), both read from the JSON: the same normalized error,
the number of refinements and the function evaluations.

usage:
  deno run -A tasks/reference/ode_dopri5_ours.ts build/ode_helper/dopri5_ours.json
  /usr/bin/python3 tasks/reference/ode_dopri5_global.py build/ode_helper/dopri5_ours.json
"""
import json
import sys

import numpy as np
from scipy.integrate import solve_ivp

A = np.array([[-0.1, 2.0], [-2.0, -0.1]])
PROBLEMS = {
    "oscillator": (lambda t, y: np.array([y[1], -y[0]]), [1.0, 0.0], np.linspace(0, 10, 11)),
    "vanderpol": (
        lambda t, y: np.array([y[1], (1 - y[0] * y[0]) * y[1] - y[0]]),
        [2.0, 0.0],
        np.linspace(0, 10, 11),
    ),
    "spiral": (lambda t, y: (y**3) @ A, [2.0, 0.0], np.linspace(0, 25, 26)),
}
RTOLS = [1e-3, 1e-4, 1e-5, 1e-6]

C = [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1]
AA = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
]
E = [
    35 / 384 - 5179 / 57600,
    0,
    500 / 1113 - 7571 / 16695,
    125 / 192 - 393 / 640,
    -2187 / 6784 + 92097 / 339200,
    11 / 84 - 187 / 2100,
    -1 / 40,
]


def dopri5_port(f, y0, ts, rtol, atol, dtype, safety=0.9, min_factor=0.2, max_factor=10.0, max_steps=200000):
    """lib/ode.ts solve() for dopri5, state arithmetic in `dtype`."""
    cast = lambda v: np.asarray(v, dtype=dtype)
    fd = lambda t, y: cast(f(t, y.astype(np.float64)) if dtype == np.float32 else f(t, y))

    def combine(y, ks, w, h):  # y + addN(k_i * (h w_i)), each op rounded to dtype
        terms = [ks[i] * dtype(h * w[i]) for i in range(min(len(w), len(ks))) if w[i] != 0]
        if not terms:
            return y.copy()
        s = terms[0]
        for t in terms[1:]:
            s = cast(s + t)
        return cast(y + s)

    def rms(x, scales):
        size = np.max(np.abs(np.array(scales, dtype=np.float64)), axis=0)
        return float(np.sqrt(np.mean((x.astype(np.float64) / (atol + rtol * size)) ** 2)))

    y = cast(y0)
    t = float(ts[0])
    direction = np.sign(ts[1] - ts[0])
    k1 = fd(t, y)
    # Hairer's initial step, as lib/ode.ts initialStep
    d0, d1 = rms(y, [y]), rms(k1, [y])
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    f1 = fd(t + direction * h0, combine(y, [k1], [1], direction * h0))
    d2 = rms(cast(f1 - k1), [y]) / h0
    m = max(d1, d2)
    h1 = max(1e-6, h0 * 1e-3) if m <= 1e-15 else (0.01 / m) ** (1 / 5)
    h = min(100 * h0, h1, abs(ts[-1] - ts[0]))
    out, steps, nfe = [y.astype(np.float64)], 0, 2
    for target in ts[1:]:
        while direction * (target - t) > 0:
            remaining = abs(target - t)
            clipped = h >= remaining * (1 - 1e-10)
            hs = remaining if clipped else h
            steps += 1
            assert steps <= max_steps
            ks = [k1]
            ys = y
            for s in range(1, 7):
                ys = combine(y, ks, AA[s], direction * hs)
                ks.append(fd(t + C[s] * direction * hs, ys))
            nfe += 6
            err = combine(np.zeros_like(y), ks, E, direction * hs)
            norm = rms(err, [y, ys])
            if np.isfinite(norm) and norm <= 1:
                t = target if clipped else t + direction * hs
                y, k1 = ys, ks[6]
                factor = max_factor if norm == 0 else min(max_factor, max(min_factor, safety * norm ** -0.2))
                h = max(h, hs * factor) if clipped else hs * factor
            else:
                factor = min(1, max(min_factor, safety * norm ** -0.2)) if np.isfinite(norm) else min_factor
                h = hs * factor
        out.append(y.astype(np.float64))
    return np.array(out), nfe


def scaled(states, ref, rtol, atol):
    states = np.asarray(states, dtype=np.float64)
    return float(np.max(np.abs(states - ref) / (atol + rtol * np.abs(ref))))


def state_scaled(states, ref, rtol, atol):
    """max over times of ||err||_inf / (atol + rtol ||y_ref||_inf): scaled by the whole state's size."""
    err = np.abs(np.asarray(states, dtype=np.float64) - ref).max(axis=1)
    return float(np.max(err / (atol + rtol * np.abs(ref).max(axis=1))))


def main() -> None:
    ours = json.load(open(sys.argv[1])) if len(sys.argv) > 1 else {}
    rows = []
    print("| problem | rtol | atol | ours (tfjs f32) | nfe | emu64 | nfe | emu32 | round-off | f32 floor | scipy RK45 | nfe |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, (f, y0, ts) in PROBLEMS.items():
        ref = solve_ivp(f, (ts[0], ts[-1]), y0, method="DOP853", t_eval=ts, rtol=1e-12, atol=1e-14).y.T
        floor, _ = dopri5_port(f, y0, ts, 1e-10, 1e-12, np.float32)
        for rtol in RTOLS:
            atol = rtol * 1e-2
            e64, n64 = dopri5_port(f, y0, ts, rtol, atol, np.float64)
            e32, _ = dopri5_port(f, y0, ts, rtol, atol, np.float32)
            rk = solve_ivp(f, (ts[0], ts[-1]), y0, method="RK45", t_eval=ts, rtol=rtol, atol=atol)
            key = f"{name}:{rtol:.0e}".replace("e-0", "e-")  # JS toExponential(0)
            o = ours.get(key)
            row = {
                "problem": name,
                "rtol": rtol,
                "atol": atol,
                "ours": scaled(o["states"], ref, rtol, atol) if o else None,
                "oursNfe": o["nfe"] if o else None,
                "emu64": scaled(e64, ref, rtol, atol),
                "emu64Nfe": n64,
                "emu32": scaled(e32, ref, rtol, atol),
                "rk45": scaled(rk.y.T, ref, rtol, atol),
                "rk45Nfe": int(rk.nfev),
                "roundoff": scaled(e32, e64, rtol, atol),
                "oursAbs": float(np.abs(np.asarray(o["states"]) - ref).max()) if o else None,
                "oursState": state_scaled(o["states"], ref, rtol, atol) if o else None,
                "rk45Abs": float(np.abs(rk.y.T - ref).max()),
                "rk45State": state_scaled(rk.y.T, ref, rtol, atol),
                "floor": scaled(floor, ref, rtol, atol),
            }
            rows.append(row)
            fmt = lambda v: "-" if v is None else f"{v:.2f}"
            print(f"| {name} | {rtol:.0e} | {atol:.0e} | {fmt(row['ours'])} | {row['oursNfe'] or '-'} | "
                  f"{fmt(row['emu64'])} | {n64} | {fmt(row['emu32'])} | {fmt(row['roundoff'])} | "
                  f"{fmt(row['floor'])} | {fmt(row['rk45'])} | {row['rk45Nfe']} |")
    print()
    print("| problem | rtol | ours max abs err | RK45 max abs err | ours state-scaled | RK45 state-scaled |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        e = lambda v: "-" if v is None else f"{v:.2e}"
        g = lambda v: "-" if v is None else f"{v:.2f}"
        print(f"| {r['problem']} | {r['rtol']:.0e} | {e(r['oursAbs'])} | {e(r['rk45Abs'])} | "
              f"{g(r['oursState'])} | {g(r['rk45State'])} |")
    for name in PROBLEMS:
        abs_errs = [r["oursAbs"] for r in rows if r["problem"] == name]
        if None not in abs_errs:
            slope = np.polyfit(np.log(RTOLS), np.log(abs_errs), 1)[0]
            print(f"{name}: log-log slope of ours' max abs error vs rtol = {slope:.2f}")
    if ours:
        print()
        print(global_table(ours))
    if len(sys.argv) > 2:
        json.dump(rows, open(sys.argv[2], "w"), indent=1)


def global_table(ours) -> str:
    """Markdown table: tolerance "local" vs "global" against DOP853 at rtol 1e-12."""
    lines = [
        "| problem | rtol | atol | local ratio | global ratio | refinements | nfe local | nfe global | cost | f32 floor |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, (f, y0, ts) in PROBLEMS.items():
        ref = solve_ivp(f, (ts[0], ts[-1]), y0, method="DOP853", t_eval=ts, rtol=1e-12, atol=1e-14).y.T
        floor, _ = dopri5_port(f, y0, ts, 1e-10, 1e-12, np.float32)
        for rtol in RTOLS:
            atol = rtol * 1e-2
            key = f"{name}:{rtol:.0e}".replace("e-0", "e-")
            loc, glo = ours.get(key), ours.get(key + ":global")
            if loc is None or glo is None:
                continue
            lr = scaled(loc["states"], ref, rtol, atol)
            if "error" in glo:
                gr, refs, gn, cost = "throws", "-", "-", "-"
            else:
                gr = f"{scaled(glo['states'], ref, rtol, atol):.3f}"
                refs, gn, cost = glo["refinements"], glo["nfe"], f"{glo['nfe'] / loc['nfe']:.1f}x"
            lines.append(f"| {name} | {rtol:.0e} | {atol:.0e} | {lr:.2f} | {gr} | {refs} | {loc['nfe']} | {gn} | {cost} | "
                         f"{scaled(floor, ref, rtol, atol):.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
