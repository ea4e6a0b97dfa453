/**
 * What a check cell says when something is wrong (lib/exercise.ts): plain
 * words instead of tfjs's gradient error, no stack lines from the checking
 * machinery, and a hint after a kernel restart.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import {
  checkExercise,
  ExerciseError,
  expect,
  expectClose,
} from "../lib/exercise.ts";
import {
  assert,
  assertEquals,
  assertNoTensorLeak,
  assertRejects,
} from "./assert.ts";

await initBackend({ quiet: true });

/** The error a failing check throws. */
async function failure(
  tests: () => void | Promise<void>,
): Promise<ExerciseError> {
  return await assertRejects(
    () => checkExercise("t-1", tests),
    ExerciseError,
  ) as ExerciseError;
}

Deno.test("a right value with no gradient (straight-through as q.clone()) says which input gets none", async () => {
  const myStraightThrough = (_h: tf.Tensor, q: tf.Tensor) => q.clone();
  const err = await failure(() => {
    const h = tf.tensor2d([[0.2, 1.5], [-0.7, 0.1]]);
    const q = tf.tensor2d([[0, 2], [-1, 0]]);
    expectClose(myStraightThrough(h, q), q, "the value (must be q)");
    tf.grads((a: tf.Tensor, b: tf.Tensor) => myStraightThrough(a, b).sum())([
      h,
      q,
    ]);
  });
  assert(
    err.message.startsWith(
      "❌ Exercise t-1: no gradient reaches the first of the 2 inputs (shape [2, 2])",
    ),
    err.message,
  );
  assert(!err.message.includes("Cannot compute gradient"), err.message);
  // One input, no path at all (a constant).
  const one = await failure(() => {
    tf.grad((_x: tf.Tensor) => tf.scalar(3))(tf.scalar(1));
  });
  assert(one.message.includes("no gradient reaches the input."), one.message);
  // The engine is left as it was: an ordinary gradient works after a check.
  assertEquals(
    Array.from(tf.grad((x: tf.Tensor) => x.square())(tf.scalar(3)).dataSync()),
    [6],
  );
});

Deno.test("check messages end without stack lines from lib/exercise.ts", async () => {
  const wrong = await failure(() => expectClose([1, 2], [1, 3], "two numbers"));
  assertEquals(
    wrong.stack,
    "ExerciseError: ❌ Exercise t-1: two numbers: expected [1, 3], got [1, 2] (first difference at index 1: 2 vs 3)",
  );
  const unmet = await failure(() => expect(false, "must hold"));
  assertEquals(unmet.stack, "ExerciseError: ❌ Exercise t-1: must hold");
  // The student's own code throwing: its frames stay, the checker's go.
  function studentCode(): number {
    throw new RangeError("index 7 out of range");
  }
  const thrown = await failure(() => void studentCode());
  assert(thrown.message.includes("your code threw RangeError: index 7"));
  assert(!thrown.stack!.includes("lib/exercise.ts"), thrown.stack);
  assert(thrown.stack!.includes("studentCode"), thrown.stack);
});

Deno.test("a name that is not defined (after a kernel restart) says to run the first cell first", async () => {
  // A check cell calling a solution whose cell has not run (a real ReferenceError).
  const err = await failure(() => new Function("return mySg(1)")());
  assert(
    err.message.startsWith(
      "❌ Exercise t-1: mySg is not defined: run the first cell (the imports) first",
    ),
    err.message,
  );
});

Deno.test("checkExercise frees the tensors of a failing check and keeps the old messages", async () => {
  await assertNoTensorLeak(async () => {
    await failure(() => {
      const x = tf.ones([4, 4]);
      expectClose(x, tf.zeros([4, 4]), "ones vs zeros");
    });
  });
  const todo = await failure(() => {
    throw new Error("Exercise t-1: not implemented");
  });
  assertEquals(
    todo.message,
    "❌ Exercise t-1: not implemented yet (fill in the cell above)",
  );
  const lines: string[] = [];
  const original = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    await checkExercise("t-2", () => expectClose(1, 1, "one"));
  } finally {
    console.log = original;
  }
  assertEquals(lines, ["✅ Exercise t-2: correct"]);
});
