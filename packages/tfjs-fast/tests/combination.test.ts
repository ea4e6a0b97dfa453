/**
 * The fused combination and Pow-gradient kernels (kernels/combination.ts,
 * ops.ts): `linearCombination` gives the bits of tfjs's ops (Multiply per
 * term, AddN, Add) on wasm and the cpu backend's bits, its gradient too
 * (checked against finite differences as well); a gradient of a gradient
 * falls back to tfjs's ops; Pow's gradient gives tfjs's own bits; every
 * kernel runs as one, and nothing leaks (tensors and wasm data ids).
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend.ts";
import {
  fusedPowGradientInUse,
  linearCombination,
  useFusedPowGradient,
} from "../ops.ts";
import { ArgumentError } from "../errors.ts";
import { builtin } from "../kernels/fast_kernels.ts";
import { randomNormal } from "./seeded.ts";
import { bits } from "./bits.ts";
import {
  assert,
  assertEquals,
  assertGradientMatches,
  assertNoTensorLeak,
  assertThrows,
} from "../../../tests/assert.ts";

await initBackend({ quiet: true });

/** Values with the edge cases: signed zeros, infinities, NaN, subnormals. */
function edgy(shape: number[], seed: number): tf.Tensor {
  const values = randomNormal(shape, { seed }).dataSync().slice();
  const special = [0, -0, Infinity, -Infinity, NaN, 1e-40, -1e-40, 3e38];
  special.forEach((v, i) => {
    if (i < values.length && (seed + i) % 3 === 0) {
      values[(i * 7 + seed) % values.length] = v;
    }
  });
  return tf.tensor(values, shape);
}

function assertSameBits(a: tf.Tensor, b: tf.Tensor, message: string) {
  assertEquals(a.shape, b.shape, `${message}: shape`);
  assertEquals(bits(a), bits(b), message);
}

/** tfjs's ops for base + sum c_i x_i, as the fused kernel replaces them. */
function tfjsOps(base: tf.Tensor | null, xs: tf.Tensor[], c: number[]) {
  const terms = xs.map((x, i) => tf.mul(x, c[i]));
  const sum = terms.length === 1 ? terms[0] : tf.addN(terms);
  return base ? tf.add(base, sum) : sum;
}

async function onCpu<T>(fn: () => T): Promise<T> {
  await tf.setBackend("cpu");
  try {
    return fn();
  } finally {
    await tf.setBackend("wasm");
  }
}

/** Kernel names run by `fn` (tf.profile). */
async function kernelsOf(fn: () => void): Promise<string[]> {
  const p = await tf.profile(() => tf.tidy(fn));
  return p.kernels.map((k) => k.name);
}

const SIZES = [[1], [3], [4], [7], [20, 2], [20, 50], [1000]];
// RK4's final weights, dopri5's rows, a negative and a tiny one.
const COEFFICIENTS = [
  [0.05],
  [0.025, 0.05],
  [1 / 6 * 0.1, 1 / 3 * 0.1, 1 / 3 * 0.1, 1 / 6 * 0.1],
  [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
  [35 / 384, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, -1 / 40, 1e-30],
];

Deno.test("linearCombination gives the bits of tfjs's ops on wasm and of the cpu backend", async () => {
  for (const shape of SIZES) {
    for (const c of COEFFICIENTS) {
      for (const withBase of [true, false]) {
        const make = () => ({
          base: withBase ? edgy(shape, 1) : null,
          xs: c.map((_, i) => edgy(shape, 2 + i)),
        });
        const label = `[${shape}] ${c.length} terms ${
          withBase ? "+ base" : "alone"
        }`;
        tf.tidy(() => {
          const { base, xs } = make();
          const fused = linearCombination(base, xs, c);
          assertSameBits(fused, tfjsOps(base, xs, c), `${label} vs tfjs ops`);
        });
        const cpu = await onCpu(() =>
          tf.tidy(() => {
            const { base, xs } = make();
            return bits(linearCombination(base, xs, c));
          })
        );
        tf.tidy(() => {
          const { base, xs } = make();
          assertEquals(
            bits(linearCombination(base, xs, c)),
            cpu,
            `${label} vs cpu`,
          );
        });
      }
    }
  }
});

Deno.test("linearCombination: one kernel forward and one backward on wasm", async () => {
  const base = randomNormal([20, 2], { seed: 1 });
  const xs = [2, 3, 4, 5].map((seed) => randomNormal([20, 2], { seed }));
  const c = [0.1, 0.2, 0.3, 0.4];
  const forward = await kernelsOf(() => linearCombination(base, xs, c));
  assertEquals(forward, ["ProjectLinearCombination"]);
  const dy = randomNormal([20, 2], { seed: 9 });
  const both = await kernelsOf(() =>
    tf.grads((b: tf.Tensor, x: tf.Tensor) =>
      linearCombination(b, [x, ...xs.slice(1)], c)
    )([base, xs[0]], dy)
  );
  assertEquals(both, ["ProjectLinearCombination", "ProjectScaleMany"]);
  dy.dispose();
  tf.dispose([base, ...xs]);
});

Deno.test("linearCombination's gradient: c_i dy and dy on wasm, the cpu backend's bits, finite differences", async () => {
  const c = COEFFICIENTS[3];
  const grads = (withBase: boolean) =>
    tf.tidy(() => {
      const base = randomNormal([7, 3], { seed: 1 });
      const xs = c.map((_, i) => randomNormal([7, 3], { seed: 2 + i }));
      const w = randomNormal([7, 3], { seed: 40 });
      // A nonlinear loss, so that dy is not constant.
      const loss = (...ts: tf.Tensor[]) => {
        const out = linearCombination(
          withBase ? ts[0] : null,
          withBase ? ts.slice(1) : ts,
          c,
        );
        return tf.sum(tf.mul(tf.square(out), w)) as tf.Scalar;
      };
      return tf.grads(loss)(withBase ? [base, ...xs] : xs).map(bits);
    });
  for (const withBase of [true, false]) {
    const wasm = grads(withBase);
    const cpu = await onCpu(() => grads(withBase));
    assertEquals(wasm, cpu, `gradients vs cpu (base: ${withBase})`);
  }
  // Against finite differences, through each argument in turn.
  const base = randomNormal([5], { seed: 7 });
  const xs = [8, 9, 10].map((seed) => randomNormal([5], { seed }));
  const cs = [0.5, -1.25, 2];
  const square = (t: tf.Tensor) => tf.sum(tf.square(t)) as tf.Scalar;
  assertGradientMatches((b) => square(linearCombination(b, xs, cs)), base);
  for (let i = 0; i < xs.length; i++) {
    assertGradientMatches((x) => {
      const terms = xs.map((xi, j) => (j === i ? x : xi));
      return square(linearCombination(base, terms, cs));
    }, xs[i]);
  }
  tf.dispose([base, ...xs]);
});

Deno.test("linearCombination: a gradient of a gradient takes tfjs's ops and matches cpu", async () => {
  const second = () =>
    tf.tidy(() => {
      const x = randomNormal([6], { seed: 3 });
      const k = randomNormal([6], { seed: 4 });
      // d/dx sum((d/dx sum(f(x)^3)))
      const inner = (v: tf.Tensor) =>
        tf.sum(
          tf.pow(linearCombination(v, [k, v], [0.5, 0.25]), 3),
        ) as tf.Scalar;
      return Array.from(
        tf.grad((v: tf.Tensor) => tf.sum(tf.grad(inner)(v)) as tf.Scalar)(x)
          .dataSync(),
      );
    });
  const wasm = second();
  const cpu = await onCpu(second);
  // Pow differs between the backends in the last bit (powf against
  // Math.pow): compare as numbers.
  wasm.forEach((v, i) =>
    assert(
      Math.abs(v - cpu[i]) <= 1e-5 * Math.abs(cpu[i]) + 1e-6,
      `second derivative ${i}: ${v} vs ${cpu[i]}`,
    )
  );
});

Deno.test("linearCombination: no terms copies base; bad arguments are ArgumentErrors", () => {
  const y = tf.tensor1d([1, -0, 3]);
  const copy = linearCombination(y, [], []);
  assertSameBits(copy, y, "no terms");
  assert(copy !== y, "a new tensor");
  const z = tf.zeros([2]);
  assertThrows(
    () => linearCombination(y, [y], []),
    ArgumentError,
    "one coefficient per term",
  );
  assertThrows(() => linearCombination(y, [z], [1]), ArgumentError, "not [3]");
  assertThrows(
    () => linearCombination(null, [], []),
    ArgumentError,
    "nothing to combine",
  );
  assertThrows(
    () => linearCombination(y, [tf.tensor1d([1, 2, 3], "int32")], [1]),
    ArgumentError,
    "float32",
  );
  tf.dispose([y, copy, z]);
});

Deno.test("linearCombination frees what it allocates (tensors and wasm data ids), also for a pruned gradient", async () => {
  const base = randomNormal([20, 2], { seed: 1 });
  const xs = [2, 3, 4].map((seed) => randomNormal([20, 2], { seed }));
  const work = () =>
    tf.tidy(() => {
      linearCombination(base, xs, [1, 2, 3]);
      linearCombination(null, xs, [1, 2, 3]);
      // Only some inputs need a gradient: the other outputs of the
      // gradient kernel must be freed.
      tf.grad((x: tf.Tensor) =>
        tf.sum(linearCombination(base, [x, xs[1], xs[2]], [1, 2, 3]))
      )(xs[0]);
      tf.grads((b: tf.Tensor, x: tf.Tensor) =>
        tf.sum(linearCombination(b, [x, x, xs[2]], [1, 2, 3]))
      )([base, xs[0]]);
    });
  work();
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const ids = backend.numDataIds();
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 5; i++) work();
  });
  assertEquals(backend.numDataIds(), ids, "wasm data ids");
  tf.dispose([base, ...xs]);
});

Deno.test("Pow's gradient: one kernel on wasm, tfjs's own bits, any scalar exponent", async () => {
  assert(fusedPowGradientInUse(), "initBackend installs it");
  const x = edgy([40], 5);
  const xPositive = tf.abs(randomNormal([40], { seed: 6 }));
  const w = randomNormal([40], { seed: 7 });
  const cases: [tf.Tensor, number][] = [
    [x, 3],
    [x, 2],
    [x, 1],
    [x, 0],
    [x, -2],
    [xPositive, 0.5],
    [xPositive, -1.5],
  ];
  const gradient = (input: tf.Tensor, e: number) =>
    tf.tidy(() =>
      bits(tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.pow(v, e), w)))(input))
    );
  for (const [input, e] of cases) {
    const fused = gradient(input, e);
    const kernels = await kernelsOf(() =>
      tf.grad((v: tf.Tensor) => tf.sum(tf.pow(v, e)))(input)
    );
    assert(
      kernels.includes("ProjectPowGrad") && !kernels.includes("Cast"),
      `exponent ${e}: ${kernels.join(", ")}`,
    );
    useFusedPowGradient(false);
    try {
      assert(!fusedPowGradientInUse(), "tfjs's gradient back");
      assertEquals(fused, gradient(input, e), `exponent ${e}: tfjs's bits`);
    } finally {
      useFusedPowGradient(true);
    }
  }
  tf.dispose([x, xPositive, w]);
});

Deno.test("Pow's gradient: a tensor exponent and the exponent's own gradient keep tfjs's code", () => {
  const a = tf.tensor1d([0.5, 1.5, 2, 3]);
  const b = tf.tensor1d([2, 3, 0.5, -1]);
  const [da, db] = tf.grads((x: tf.Tensor, e: tf.Tensor) =>
    tf.sum(tf.pow(x, e))
  )([a, b]);
  const want = [2 * 0.5, 3 * 1.5 ** 2, 0.5 / Math.sqrt(2), -1 / 9];
  Array.from(da.dataSync()).forEach((v, i) =>
    assert(Math.abs(v - want[i]) < 1e-5, `d/da ${i}: ${v} vs ${want[i]}`)
  );
  const wantB = [
    0.25 * Math.log(0.5),
    1.5 ** 3 * Math.log(1.5),
    Math.sqrt(2) * Math.log(2),
    Math.log(3) / 3,
  ];
  Array.from(db.dataSync()).forEach((v, i) =>
    assert(Math.abs(v - wantB[i]) < 1e-5, `d/db ${i}: ${v} vs ${wantB[i]}`)
  );
  // A scalar exponent tensor that needs its gradient: d/de sum(a^e).
  const e = tf.scalar(2);
  const de = tf.grad((s: tf.Tensor) => tf.sum(tf.pow(a, s)))(e);
  const wantE = [0.5, 1.5, 2, 3].reduce((s, v) => s + v * v * Math.log(v), 0);
  assert(
    Math.abs(de.dataSync()[0] - wantE) < 1e-4,
    `d/de: ${de.dataSync()[0]} vs ${wantE}`,
  );
  tf.dispose([a, b, da, db, e, de]);
});

Deno.test("Pow's gradient: tfjs's bits on cpu too (the output recomputed for the exponent's gradient)", async () => {
  const grads = () =>
    tf.tidy(() => {
      const a = tf.abs(randomNormal([12], { seed: 11 }));
      const b = randomNormal([12], { seed: 12 });
      const w = randomNormal([12], { seed: 13 });
      return tf.grads((x: tf.Tensor, e: tf.Tensor) =>
        tf.sum(tf.mul(tf.pow(x, e), w))
      )([a, b]).map(bits);
    });
  const ours = await onCpu(grads);
  useFusedPowGradient(false);
  try {
    assertEquals(
      ours,
      await onCpu(grads),
      "cpu: the same bits as tfjs's gradient",
    );
  } finally {
    useFusedPowGradient(true);
  }
});

Deno.test("Pow's gradient matches cpu and finite differences, and frees what it allocates", async () => {
  const grad = () =>
    tf.tidy(() => {
      const x = randomNormal([20, 2], { seed: 9 });
      return Array.from(
        tf.grad((v: tf.Tensor) => tf.sum(tf.square(tf.pow(v, 3))))(x)
          .dataSync(),
      );
    });
  const wasm = grad();
  const cpu = await onCpu(grad);
  wasm.forEach((v, i) =>
    assert(
      Math.abs(v - cpu[i]) <= 1e-5 * Math.abs(cpu[i]) + 1e-6,
      `${i}: ${v} vs ${cpu[i]}`,
    )
  );
  const x = randomNormal([6], { seed: 10 });
  assertGradientMatches(
    (v) => tf.sum(tf.mul(tf.pow(v, 3), 0.5)) as tf.Scalar,
    x,
  );
  const work = () =>
    tf.tidy(() => {
      tf.grad((v: tf.Tensor) => tf.sum(tf.pow(v, 3)))(x);
    });
  work();
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const ids = backend.numDataIds();
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 5; i++) work();
  });
  assertEquals(backend.numDataIds(), ids, "wasm data ids");
  x.dispose();
});

Deno.test("Pow with a scalar exponent gives the built-in's bits (direct native call); other exponents take the built-in", () => {
  const shapes = [[], [1], [7], [20, 2], [3, 4, 5], [0, 3]];
  const exponents = [3, 2, 0.5, -1.5, 0, 1, -0, Infinity, NaN, 1e-3];
  for (const shape of shapes) {
    for (const e of exponents) {
      tf.tidy(() => {
        const a = edgy(shape, 21);
        const b = tf.scalar(e);
        const ours = tf.engine().runKernel("Pow", { a, b }) as tf.Tensor;
        const theirs = tf.engine().makeTensorFromTensorInfo(
          builtin("Pow")({
            inputs: { a, b },
            backend: tf.backend(),
            attrs: {},
          }),
        );
        assertSameBits(ours, theirs, `pow [${shape}] ^ ${e}`);
      });
    }
  }
  tf.tidy(() => {
    const a = edgy([4, 3], 22);
    for (const b of [edgy([4, 3], 23), edgy([3], 24), tf.tensor1d([2])]) {
      const ours = tf.engine().runKernel("Pow", { a, b }) as tf.Tensor;
      const theirs = tf.engine().makeTensorFromTensorInfo(
        builtin("Pow")({ inputs: { a, b }, backend: tf.backend(), attrs: {} }),
      );
      assertSameBits(ours, theirs, `pow [4, 3] ^ [${b.shape}]`);
    }
  });
});
