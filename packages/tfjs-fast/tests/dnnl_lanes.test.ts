/**
 * kernels/dnnl_lanes.ts without oneDNN: parts run on this thread, in order,
 * when no helper started. The helpers' own runs are in dnnl.test.ts.
 */
import { type Executor, type Part, startLanes } from "../kernels/dnnl_lanes.ts";
import { MAX_PARTS } from "../kernels/dnnl_claims.ts";
import { assertEquals, assertThrows } from "../../../tests/assert.ts";

/** An executor that records what it was asked to run. */
function recorder() {
  const log: string[] = [];
  const executor: Executor = {
    execute: (primitive, stream, args) =>
      log.push(
        `run ${Deno.UnsafePointer.value(primitive)} on ${
          Deno.UnsafePointer.value(stream)
        } (${args.length / 2} args)`,
      ),
    wait: (stream) => log.push(`wait ${Deno.UnsafePointer.value(stream)}`),
  };
  return { log, executor };
}

const pointer = (n: number) => Deno.UnsafePointer.create(BigInt(n));
const part = (stream: number, ...primitives: number[]): Part => ({
  stream: pointer(stream),
  executions: primitives.map((p) => ({
    primitive: pointer(p),
    args: new BigUint64Array(4),
  })),
});

Deno.test("lanes whose helpers fail to start run every part here, in order", async () => {
  const { log, executor } = recorder();
  const lanes = startLanes(executor, 3, "/nonexistent/libdnnl.so.2", "/x.so");
  await lanes.ready;
  try {
    assertEquals(lanes.threads, 1);
    lanes.run([part(100, 1, 2), part(200, 3)]);
    assertEquals(log, [
      "run 1 on 100 (2 args)",
      "run 2 on 100 (2 args)",
      "wait 100",
      "run 3 on 200 (2 args)",
      "wait 200",
    ]);
    assertEquals(lanes.partsOnHelpers, 0);
  } finally {
    lanes.stop();
  }
});

Deno.test("lanes refuse more parts than they can hold", () => {
  const { executor } = recorder();
  const lanes = startLanes(executor, 1, "", "");
  const parts = Array.from({ length: MAX_PARTS + 1 }, (_, i) => part(i + 1, 1));
  assertThrows(() => lanes.run(parts), Error, `at most ${MAX_PARTS} parts`);
});
