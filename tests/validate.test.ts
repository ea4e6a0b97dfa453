import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import {
  ArgumentError,
  checkBoolean,
  checkChoice,
  checkFinite,
  checkInteger,
  checkNumber,
  checkOptions,
  checkTensor,
  toMatrix,
} from "../lib/validate.ts";
import { assertAllClose, assertEquals, assertThrows } from "./assert.ts";

await initBackend({ quiet: true });

Deno.test("checks name the function, the argument and the expectation", () => {
  assertThrows(
    () => checkInteger("kmeans", "k", 0, { min: 1 }),
    ArgumentError,
    "kmeans: k must be a positive integer, got 0",
  );
  assertThrows(
    () => checkInteger("f", "n", 2.5),
    ArgumentError,
    "n must be",
    "2.5",
  );
  assertThrows(
    () => checkNumber("g", "tau", 0, { min: 0, minExclusive: true }),
    ArgumentError,
    "tau",
    "> 0",
  );
  assertThrows(() => checkNumber("g", "x", NaN), ArgumentError, "finite");
  assertThrows(
    () => checkChoice("h", "init", "kmeans+", ["kmeans++", "random"]),
    ArgumentError,
    '"kmeans++", "random"',
  );
  assertEquals(checkInteger("f", "n", 3, { min: 1, max: 3 }), 3);
});

Deno.test("checkTensor checks type, rank, shape, dtype and disposal", () => {
  const t = tf.zeros([2, 3]);
  assertThrows(
    () => checkTensor("f", "x", [1, 2]),
    ArgumentError,
    "x must be a tf.Tensor",
  );
  assertThrows(
    () => checkTensor("f", "x", t, { rank: 3 }),
    ArgumentError,
    "rank 3",
    "[2, 3]",
  );
  assertThrows(
    () => checkTensor("f", "x", t, { shape: [null, 4] }),
    ArgumentError,
    "[*, 4]",
  );
  assertThrows(
    () => checkTensor("f", "x", t, { dtype: "int32" }),
    ArgumentError,
    "int32",
  );
  checkTensor("f", "x", t, { shape: [2, null], dtype: "float32" });
  t.dispose();
  assertThrows(() => checkTensor("f", "x", t), ArgumentError, "disposed");
});

Deno.test("checkFinite and toMatrix reject NaN and ragged rows", () => {
  const bad = tf.tensor1d([1, NaN]);
  assertThrows(
    () => checkFinite("f", "data", bad),
    ArgumentError,
    "element 1 is NaN",
  );
  bad.dispose();
  assertThrows(
    () => toMatrix("f", "data", [[1, 2], [3]]),
    ArgumentError,
    "rectangular",
    "row 1",
  );
  assertThrows(
    () => toMatrix("f", "data", [[1, NaN]]),
    ArgumentError,
    "data[0][1]",
  );
  assertThrows(() => toMatrix("f", "data", []), ArgumentError, "non-empty");
  const { matrix, created } = toMatrix("f", "data", [[1, 2], [3, 4]]);
  assertEquals(created, true);
  assertAllClose(matrix, [[1, 2], [3, 4]]);
  matrix.dispose();
});

Deno.test("checkOptions: unknown keys name the closest known key; null and non-objects are rejected", () => {
  const known = ["method", "step", "rtol", "atol"];
  assertEquals(checkOptions("odeint", undefined, known), {});
  assertEquals(checkOptions("odeint", { step: 0.1 }, known), { step: 0.1 });
  assertThrows(
    () => checkOptions("odeint", { method: "euler", stp: 0.01 }, known),
    ArgumentError,
    'odeint: unknown option "stp" in options (did you mean "step"?)',
  );
  assertThrows(
    () => checkOptions("VQVAE", { learningrate: 1 }, ["learningRate", "beta"]),
    ArgumentError,
    'did you mean "learningRate"?',
  );
  // A key far from every known one gets no misleading hint.
  assertThrows(
    () => checkOptions("f", { zzzzzzzz: 1 }, known),
    ArgumentError,
    "known options: method, step, rtol, atol",
  );
  assertThrows(
    () => checkOptions("kmeans", null as never, known),
    ArgumentError,
    "kmeans: options must be an object",
  );
  assertThrows(
    () => checkOptions("kmeans", 3 as never, known),
    ArgumentError,
    "got 3",
  );
  assertThrows(
    () => checkOptions("kmeans", [] as never, known),
    ArgumentError,
    "an array",
  );
});

Deno.test("checkBoolean accepts only true and false", () => {
  assertEquals(checkBoolean("save", "overwrite", false), false);
  assertThrows(
    () => checkBoolean("save", "overwrite", "no"),
    ArgumentError,
    'save: overwrite must be true or false, got "no"',
  );
  assertThrows(
    () => checkBoolean("save", "overwrite", 0),
    ArgumentError,
    "got 0",
  );
});
