import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { type LossTerms, type Trainable, trainStep } from "../lib/model.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

/** y = w x + b with loss mean((y - t)^2), and its gradient in closed form. */
function linearModel(w0: number, b0: number) {
  const w = tf.variable(tf.scalar(w0), true, `w${Math.random()}`);
  const b = tf.variable(tf.scalar(b0), true, `b${Math.random()}`);
  const model: Trainable<[tf.Tensor1D, tf.Tensor1D]> & {
    w: tf.Variable;
    b: tf.Variable;
  } = {
    w,
    b,
    trainableVariables: () => ({ weight: [w], bias: [b] }),
    loss: ([x, t]): LossTerms => {
      const residual = x.mul(w).add(b).sub(t);
      return {
        total: residual.square().mean() as tf.Scalar,
        terms: { meanResidual: residual.mean() as tf.Scalar },
      };
    },
  };
  return model;
}

Deno.test("trainStep: one SGD step per variable group equals the closed-form gradient step", () => {
  const xs = [1, 2, 3, 4];
  const ts = [3, 5, 7, 9];
  const [w0, b0] = [0.5, -1];
  const model = linearModel(w0, b0);
  const x = tf.tensor1d(xs);
  const t = tf.tensor1d(ts);
  const metrics = trainStep(model, {
    weight: tf.train.sgd(0.1),
    bias: tf.train.sgd(0.01),
  }, [x, t]);
  // dL/dw = 2 mean(r x), dL/db = 2 mean(r), r = w0 x + b0 - t.
  const r = xs.map((xi, i) => w0 * xi + b0 - ts[i]);
  const mean = (v: number[]) => v.reduce((a, c) => a + c, 0) / v.length;
  const gw = 2 * mean(r.map((ri, i) => ri * xs[i]));
  const gb = 2 * mean(r);
  assertAllClose(model.w, [w0 - 0.1 * gw], { atol: 1e-6 });
  assertAllClose(model.b, [b0 - 0.01 * gb], { atol: 1e-6 });
  assertAllClose([metrics.loss], [mean(r.map((v) => v * v))], { atol: 1e-5 });
  assertAllClose([metrics.meanResidual], [mean(r)], { atol: 1e-6 });
  tf.dispose([x, t, model.w, model.b]);
});

Deno.test("trainStep: afterStep sees the saved tensors and adds its metrics; nothing leaks", async () => {
  const v = tf.variable(tf.tensor1d([1, 2]), true, `v${Math.random()}`);
  let seen: number[] = [];
  const model: Trainable<tf.Tensor1D> = {
    trainableVariables: () => [v],
    loss: (x) => ({
      total: v.sub(x).square().sum() as tf.Scalar,
      saved: { doubled: v.mul(2) },
    }),
    afterStep: (_x, saved) => {
      seen = Array.from(saved.doubled.dataSync());
      return { hook: 42 };
    },
  };
  const optimizer = tf.train.sgd(0.25);
  const x = tf.tensor1d([0, 0]);
  const metrics = await assertNoTensorLeak(() =>
    trainStep(model, optimizer, x)
  );
  assertEquals(metrics.hook, 42);
  assertEquals(metrics.loss, 5);
  // saved was computed in the forward pass, before the update.
  assertEquals(seen, [2, 4]);
  // v <- v - 0.25 * 2 v = v / 2
  assertAllClose(v, [0.5, 1]);
  tf.dispose([x, v]);
});

Deno.test("trainStep: a loss that throws leaves no tensor behind", async () => {
  const v = tf.variable(tf.tensor1d([1, 2]), true, `v${Math.random()}`);
  const model: Trainable<tf.Tensor> = {
    trainableVariables: () => [v],
    loss: (x) => {
      x.mul(v).square(); // tensors made before the failure
      throw new Error("boom");
    },
  };
  const optimizer = tf.train.sgd(0.1);
  const x = tf.tensor1d([1, 1]);
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 20; i++) {
      assertThrows(() => trainStep(model, optimizer, x), Error, "boom");
    }
  });
  tf.dispose([x, v]);
});

Deno.test("trainStep: contract and optimizer errors name trainStep and say what is expected", () => {
  const v = tf.variable(tf.scalar(1), true, `v${Math.random()}`);
  const model: Trainable<null> = {
    trainableVariables: () => ({ networks: [v] }),
    loss: () => ({ total: v.square() as tf.Scalar }),
  };
  assertThrows(
    () => trainStep({} as unknown as Trainable<null>, tf.train.sgd(1), null),
    ArgumentError,
    "trainStep: model must follow the Trainable contract",
  );
  assertThrows(
    () => trainStep(model, { codebook: tf.train.sgd(1) }, null),
    ArgumentError,
    'no optimizer for the variable group "networks"',
  );
  assertThrows(
    () =>
      trainStep(
        model,
        { networks: tf.train.sgd(1), extra: tf.train.sgd(1) },
        null,
      ),
    ArgumentError,
    'unknown variable group "extra"',
  );
  v.dispose();
});

Deno.test("trainStep: a loss whose total is not a scalar is an ArgumentError, and nothing leaks", async () => {
  const v = tf.variable(tf.tensor1d([1, 2]), true, `v${Math.random()}`);
  const model: Trainable<null> = {
    trainableVariables: () => [v],
    loss: () => ({ total: v.square() as unknown as tf.Scalar }),
  };
  const optimizer = tf.train.sgd(0.1); // SGD keeps its learning rate as a tensor
  await assertNoTensorLeak(() =>
    assertThrows(
      () => trainStep(model, optimizer, null),
      ArgumentError,
      "model.loss(batch).total must be a scalar tensor, got shape [2]",
    )
  );
  v.dispose();
});

Deno.test("trainStep: one Adam shared by several groups moves them exactly as tf.train.adam's minimize over all of them", () => {
  const make = (tag: string) => ({
    a: tf.variable(tf.tensor1d([1, -2, 0.5]), true, `a${tag}${Math.random()}`),
    b: tf.variable(tf.tensor1d([0.3]), true, `b${tag}${Math.random()}`),
    // Gets a gradient only on even steps: its moment slot must not shift the others'.
    c: tf.variable(tf.tensor1d([2, 2]), true, `c${tag}${Math.random()}`),
  });
  const loss = (v: ReturnType<typeof make>, step: number) =>
    tf.tidy(() => {
      let total = v.a.square().sum().add(v.b.mul(v.a.sum()).square().sum());
      if (step % 2 === 0) total = total.add(v.c.sub(1).square().sum());
      return total as tf.Scalar;
    });
  const ours = make("ours");
  const ref = make("ref");
  let step = 0;
  const model: Trainable<null> = {
    trainableVariables: () => ({ first: [ours.a], second: [ours.b, ours.c] }),
    loss: () => ({ total: loss(ours, step) }),
  };
  const shared = tf.train.adam(0.05);
  const reference = tf.train.adam(0.05);
  for (step = 0; step < 20; step++) {
    trainStep(model, shared, null);
    reference.minimize(() => loss(ref, step), false, [ref.a, ref.b, ref.c]);
  }
  for (const k of ["a", "b", "c"] as const) {
    assertAllClose(ours[k], ref[k].arraySync() as number[], {
      atol: 0,
      rtol: 0,
      message: k,
    });
  }
  tf.dispose([ours.a, ours.b, ours.c, ref.a, ref.b, ref.c]);
});

Deno.test("trainStep: a variable in two groups is an ArgumentError", () => {
  const v = tf.variable(tf.scalar(1), true, `v${Math.random()}`);
  const model: Trainable<null> = {
    trainableVariables: () => ({ x: [v], y: [v] }),
    loss: () => ({ total: v.square() as tf.Scalar }),
  };
  assertThrows(
    () => trainStep(model, tf.train.sgd(1), null),
    ArgumentError,
    "is in two groups (x and y)",
  );
  v.dispose();
});
