import { jacobiEigen } from "../lib/linalg.ts";
import { Rng } from "../lib/random.ts";
import { ArgumentError } from "../lib/validate.ts";
import { assert, assertAllClose, assertThrows } from "./assert.ts";

Deno.test("jacobiEigen diagonalises symmetric matrices (known spectrum, reconstruction)", () => {
  const two = jacobiEigen([2, 1, 1, 2], 2);
  assertAllClose(two.values, [1, 3], { atol: 1e-14 });
  const d = 12;
  const rng = new Rng(4);
  const b = Array.from({ length: d * d }, () => rng.normal());
  const a = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) a[i * d + j] = b[i * d + j] + b[j * d + i];
  }
  const { values, vectors } = jacobiEigen(a, d);
  for (let i = 1; i < d; i++) assert(values[i] >= values[i - 1], "ascending");
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let rec = 0;
      let gram = 0;
      for (let k = 0; k < d; k++) {
        rec += vectors[i * d + k] * values[k] * vectors[j * d + k];
        gram += vectors[k * d + i] * vectors[k * d + j];
      }
      assertAllClose(rec, a[i * d + j], { atol: 1e-11 });
      assertAllClose(gram, i === j ? 1 : 0, { atol: 1e-12 });
    }
  }
  assertThrows(() => jacobiEigen([1, 2, 3, 4], 2), ArgumentError, "symmetric");
  assertThrows(() => jacobiEigen([1, 2, 3], 2), ArgumentError, "d * d = 4");
  assertThrows(() => jacobiEigen([1, NaN, NaN, 1], 2), ArgumentError, "finite");
  assertThrows(
    () => jacobiEigen([1, 0, 0, 1], 2, { maxSweep: 3 } as never),
    ArgumentError,
    "jacobiEigen",
    'did you mean "maxSweeps"',
  );
  assertThrows(
    () => jacobiEigen([1, 0, 0, 1], 2, null as never),
    ArgumentError,
    "jacobiEigen",
    "options",
  );
});
