/**
 * The claim protocol shared by OpenBLAS's split products and oneDNN's parts
 * (kernels/claim_queue.ts).
 */
import { CLAIM, claimNext } from "../kernels/claim_queue.ts";
import { assertEquals } from "../../../tests/assert.ts";

const countersAt = (claimed: number) => {
  const counters = new Int32Array(new SharedArrayBuffer(64));
  counters[CLAIM.claimed] = claimed;
  return counters;
};

Deno.test("claimNext claims the calls before posted, one at a time, then none", () => {
  const counters = countersAt(3);
  assertEquals(claimNext(counters, 5), 3);
  assertEquals(claimNext(counters, 5), 4);
  assertEquals(claimNext(counters, 5), null);
  assertEquals(counters[CLAIM.claimed], 5);
});

Deno.test("claimNext with a stale posted claims nothing, however far the others claimed", () => {
  // A helper read posted = 3; meanwhile the main thread posted and claimed
  // calls 3 to 6 itself. Call 7 is not posted: its slot still holds an
  // earlier call's operands, and running it crashed the process.
  for (const claimed of [3, 4, 7, 3 + 2 ** 20]) {
    const counters = countersAt(claimed);
    assertEquals(claimNext(counters, 3), null, `claimed ${claimed}`);
    assertEquals(counters[CLAIM.claimed], claimed, `claimed ${claimed}`);
  }
});

Deno.test("claimNext counts across the int32 wrap", () => {
  const counters = countersAt(2 ** 31 - 1);
  const posted = (2 ** 31 + 1) | 0;
  assertEquals(claimNext(counters, posted), 2 ** 31 - 1);
  assertEquals(claimNext(counters, posted), -(2 ** 31));
  assertEquals(claimNext(counters, posted), null);
  // Stale across the wrap: claimed has gone past a posted read before it.
  assertEquals(claimNext(countersAt((2 ** 31 + 5) | 0), 2 ** 31 - 2), null);
});
