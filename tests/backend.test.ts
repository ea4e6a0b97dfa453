// The course's entry points to the performance package (lib/backend.ts,
// lib/optim.ts): the package's own tests are in packages/tfjs-fast/tests/.
import * as tf from "@tensorflow/tfjs";
import * as fast from "@course/tfjs-fast";
import { describeBackend, initBackend } from "../lib/backend.ts";
import { adam } from "../lib/optim.ts";
import { ArgumentError } from "../lib/validate.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";

Deno.test("lib/backend.ts starts the package's wasm backend", async () => {
  assertEquals(initBackend, fast.initBackend);
  assertEquals(await initBackend({ quiet: true }), "wasm");
  assertEquals(tf.getBackend(), "wasm");
  assert(describeBackend().startsWith("wasm (SIMD"), describeBackend());
});

Deno.test("lib/optim.ts adam is the package's fused Adam", () => {
  const optimizer = adam(1e-3);
  assert(optimizer instanceof fast.FusedAdamOptimizer);
  assert(optimizer instanceof tf.AdamOptimizer);
  optimizer.dispose();
});

Deno.test("the package's bad arguments are the course's ArgumentError", async () => {
  assertEquals(ArgumentError, fast.ArgumentError);
  await assertRejects(
    () => initBackend({ threads: 0, quiet: true }),
    ArgumentError,
    "initBackend",
    "threads",
  );
  assertThrows(() => adam(-1), ArgumentError, "adam", "learningRate");
});
