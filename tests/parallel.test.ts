import { inInputOrder, inParallel } from "../tasks/parallel.ts";
import { assert, assertEquals } from "./assert.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("inParallel runs at most `jobs` at a time and returns results in input order", async () => {
  let running = 0, most = 0;
  const finished: number[] = [];
  const seen: number[] = [];
  const results = await inParallel(
    [40, 5, 25, 1, 10],
    2,
    async (ms, i) => {
      most = Math.max(most, ++running);
      await sleep(ms);
      running--;
      finished.push(i);
      return ms * 2;
    },
    inInputOrder((_, i) => seen.push(i)),
  );
  assertEquals(most, 2);
  assertEquals(results, [80, 10, 50, 2, 20]);
  // The jobs finished out of order; the report saw them in order.
  assert(finished.join() !== "0,1,2,3,4", `finished ${finished}`);
  assertEquals(seen, [0, 1, 2, 3, 4]);
});

Deno.test("inInputOrder holds a result until every earlier one has arrived", () => {
  const seen: string[] = [];
  const report = inInputOrder<string>((r, i) => seen.push(`${i}:${r}`));
  report("c", 2);
  assertEquals(seen, []);
  report("a", 0);
  assertEquals(seen, ["0:a"]);
  report("b", 1);
  assertEquals(seen, ["0:a", "1:b", "2:c"]);
});
