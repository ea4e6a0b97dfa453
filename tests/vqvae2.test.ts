import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { trainStep } from "../lib/model.ts";
import { adam } from "../lib/optim.ts";
import { ArgumentError } from "../lib/validate.ts";
import { TwoLevelVQVAE } from "../lib/vqvae2.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertThrows,
} from "./assert.ts";

await initBackend({ quiet: true });

/** Blurry blobs at random places: images with a coarse layout and fine detail. */
function blobs(n: number, seed: number): tf.Tensor4D {
  return tf.tidy(() => {
    const u = tf.randomUniform([n, 2], 6, 22, "float32", seed);
    const grid = tf.range(0, 28).toFloat();
    const dy = grid.reshape([1, 28, 1]).sub(
      u.slice([0, 0], [n, 1]).reshape([n, 1, 1]),
    );
    const dx = grid.reshape([1, 1, 28]).sub(
      u.slice([0, 1], [n, 1]).reshape([n, 1, 1]),
    );
    return dy.square().add(dx.square()).div(-18).exp().reshape([n, 28, 28, 1]);
  });
}

Deno.test("TwoLevelVQVAE: a 7x7 top and a 14x14 bottom grid, codes swap between images, reconstruction equals decoding its own codes", () => {
  const model = new TwoLevelVQVAE({
    topCodes: 8,
    bottomCodes: 4,
    dim: 4,
    channels: 8,
    seed: 1,
  });
  const x = blobs(6, 1);
  model.initCodebooks(x);
  const { top, bottom } = model.codes(x);
  assertEquals(top.shape, [6, 7, 7]);
  assertEquals(bottom.shape, [6, 14, 14]);
  assertEquals(top.dtype, "int32");
  const recon = model.reconstruct(x);
  const decoded = model.decodeCodes(top, bottom);
  assertAllClose(recon, decoded, { atol: 1e-6 });
  // The top of image 0 with the bottom of image 1 decodes to a different image than either's own codes.
  const mixed = tf.tidy(() =>
    model.decodeCodes(
      top.slice([0, 0, 0], [1, 7, 7]),
      bottom.slice([1, 0, 0], [1, 14, 14]),
    )
  );
  assertEquals(mixed.shape, [1, 28, 28, 1]);
  const e = model.evaluate(x);
  assertAllClose([e.mse], [
    tf.tidy(() => recon.sub(x).square().mean().dataSync()[0]),
  ], { rtol: 1e-4 });
  assert(e.topUsed >= 1 && e.topUsed <= 8 && e.bottomUsed <= 4);
  tf.dispose([x, top, bottom, recon, decoded, mixed]);
  model.dispose();
});

Deno.test("TwoLevelVQVAE trains with trainStep: the loss falls; the two codebooks are their own group; no leaks over 200 steps", async () => {
  const model = new TwoLevelVQVAE({
    topCodes: 8,
    bottomCodes: 4,
    dim: 4,
    channels: 8,
    deadAfter: 20,
    seed: 0,
  });
  const data = blobs(64, 2);
  model.initCodebooks(data);
  const groups = model.trainableVariables();
  assertEquals(groups.codebooks, [model.top.codebook, model.bottom.codebook]);
  const optimizer = { networks: adam(3e-3), codebooks: adam(3e-3) };
  const batch = (i: number) =>
    data.slice([(i % 8) * 8, 0, 0, 0], [8, 28, 28, 1]);
  const first = tf.tidy(() => trainStep(model, optimizer, batch(0)));
  tf.tidy(() => trainStep(model, optimizer, batch(1)));
  let last = first;
  await assertNoTensorLeak(() => {
    for (let i = 0; i < 200; i++) {
      last = tf.tidy(() => trainStep(model, optimizer, batch(i)));
    }
  });
  for (
    const key of ["recon", "top", "bottom", "topPerplexity", "bottomPerplexity"]
  ) {
    assert(Number.isFinite(last[key]), `${key} = ${last[key]}`);
  }
  assert(
    last.recon < 0.5 * first.recon,
    `recon ${first.recon} -> ${last.recon}`,
  );
  data.dispose();
  model.dispose();
});

Deno.test("TwoLevelVQVAE: bad arguments are ArgumentErrors naming the call; nothing is built or leaked", async () => {
  await assertNoTensorLeak(() => {
    assertThrows(
      () => new TwoLevelVQVAE({ topCode: 8 } as never),
      ArgumentError,
      'did you mean "topCodes"',
    );
    assertThrows(
      () => new TwoLevelVQVAE(null as never),
      ArgumentError,
      "TwoLevelVQVAE: options",
    );
    assertThrows(
      () => new TwoLevelVQVAE({ bottomCodes: 0 }),
      ArgumentError,
      "bottomCodes",
    );
  });
  const model = new TwoLevelVQVAE({
    topCodes: 4,
    bottomCodes: 4,
    dim: 2,
    channels: 4,
  });
  const x = blobs(2, 3);
  const badTop = tf.zeros([1, 7, 7], "int32");
  const badBottom = tf.fill([1, 14, 14], 9, "int32");
  const empty = tf.zeros([0, 28, 28, 1]);
  const small = tf.zeros([1, 14, 14, 1]);
  await assertNoTensorLeak(() => {
    assertThrows(
      () => model.loss(x),
      ArgumentError,
      "TwoLevelVQVAE.loss: the codebooks are not initialised",
    );
    assertThrows(
      () => model.loss(empty as never),
      ArgumentError,
      "empty batch",
    );
    assertThrows(
      () => model.decodeCodes(badTop, badBottom),
      ArgumentError,
      "bottom codes must be in [0, 3], got 9",
    );
    assertThrows(
      () => model.codes(small as never),
      ArgumentError,
      "TwoLevelVQVAE.codes: images must have shape",
    );
  });
  tf.dispose([x, badTop, badBottom, empty, small]);
  model.dispose();
});
