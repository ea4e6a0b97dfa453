// Dev-only: solves the problems of tasks/reference/ode_dopri5_global.py with
// lib/ode.ts's dopri5 (tfjs, float32) at rtol 1e-3 .. 1e-6 (atol = rtol / 100)
// and writes the states and evaluation counts as JSON for that script; also
// with `tolerance: "global"` at rtol 1e-3 .. 1e-6 (keys "name:rtol:global",
// with the number of refinements, or the error message when it throws).
//
// usage: deno run -A tasks/reference/ode_dopri5_ours.ts [out.json] [--rtol-scale=S]
//   (S scales rtol and atol passed to odeint; default 1, for experiments)
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/backend.ts";
import {
  odeintWithStats,
  type OdeTolerance,
  type VectorField,
} from "../../lib/ode.ts";

await initBackend({ quiet: true });
const out = Deno.args.find((a) => !a.startsWith("--")) ??
  "build/ode_helper/dopri5_ours.json";
const A = tf.tensor2d([[-0.1, 2], [-2, -0.1]]);
const range = (n: number, end: number) =>
  Array.from({ length: n }, (_, i) => (i * end) / (n - 1));
const problems: Record<string, [VectorField, number[], number[]]> = {
  oscillator: [
    (_t, y) =>
      tf.tidy(() => tf.stack([tf.gather(y, 1), tf.neg(tf.gather(y, 0))])),
    [1, 0],
    range(11, 10),
  ],
  vanderpol: [
    (_t, y) =>
      tf.tidy(() => {
        const [x, v] = tf.unstack(y);
        return tf.stack([v, tf.sub(tf.mul(tf.sub(1, tf.square(x)), v), x)]);
      }),
    [2, 0],
    range(11, 10),
  ],
  spiral: [
    (_t, y) =>
      tf.tidy(() =>
        tf.reshape(tf.matMul(tf.reshape(tf.pow(y, 3), [1, 2]), A), [2])
      ),
    [2, 0],
    range(26, 25),
  ],
};
const scale = Number(
  Deno.args.find((a) => a.startsWith("--rtol-scale="))?.split("=")[1] ?? 1,
);
const result: Record<
  string,
  { states?: number[][]; nfe?: number; refinements?: number; error?: string }
> = {};
for (const [name, [f, y0, ts]] of Object.entries(problems)) {
  for (const rtol of [1e-3, 1e-4, 1e-5, 1e-6]) {
    for (const tolerance of ["local", "global"] as OdeTolerance[]) {
      const key = `${name}:${rtol.toExponential(0)}` +
        (tolerance === "global" ? ":global" : "");
      const y = tf.tensor1d(y0);
      try {
        const { states, stats } = odeintWithStats(f, y, ts, {
          rtol: rtol * scale,
          atol: rtol * 1e-2 * scale,
          tolerance,
        });
        result[key] = {
          states: states.arraySync() as number[][],
          nfe: stats.nfe,
          refinements: stats.refinements,
        };
        states.dispose();
      } catch (e) {
        result[key] = { error: (e as Error).message };
      }
      y.dispose();
    }
  }
}
Deno.writeTextFileSync(out, JSON.stringify(result));
console.log(`wrote ${out}`);
