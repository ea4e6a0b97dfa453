/**
 * saveTensors/loadTensors as a file format that cannot be half-written:
 * concurrent writers, symbolic links, retries after a refused save, and
 * strict options (issue 18).
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend.ts";
import { loadTensors, saveTensors } from "../lib/nn.ts";
import { ArgumentError } from "../lib/validate.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertNoTensorLeak,
  assertRejects,
} from "./assert.ts";
import { withTestDir } from "./temp.ts";

await initBackend({ quiet: true });

const names = (dir: string) =>
  [...Deno.readDirSync(dir)].map((e) => e.name).sort();

Deno.test("five concurrent saves to one path: one wins, the others write nothing", () =>
  withTestDir(async (dir) => {
    const writers = [0, 1, 2, 3, 4].map((i) => ({
      w: tf.fill([64, 64], i + 1),
    }));
    const results = await Promise.allSettled(
      writers.map((t, i) =>
        saveTensors(`${dir}/m`, t, { config: { writer: i } })
      ),
    );
    const won = results.flatMap((r, i) => r.status === "fulfilled" ? [i] : []);
    assertEquals(won.length, 1, "exactly one concurrent save may succeed");
    for (const r of results) {
      if (r.status === "rejected") {
        assert(r.reason instanceof ArgumentError, String(r.reason));
      }
    }
    // The .json and the .bin come from the same writer.
    const { tensors, config } = await loadTensors(`${dir}/m`);
    assertEquals(config.writer, won[0]);
    assertAllClose(tensors.w, writers[won[0]].w, { atol: 0, rtol: 0 });
    assertEquals(names(dir), ["m.bin", "m.json"], "no temporary file is left");
    tf.dispose([...writers.flatMap((t) => Object.values(t)), tensors.w]);
  }));

Deno.test("concurrent overwriting saves leave one writer's complete pair", () =>
  withTestDir(async (dir) => {
    const writers = [0, 1, 2].map((i) => ({ w: tf.fill([32, 32], i + 1) }));
    await saveTensors(`${dir}/m`, { w: tf.zeros([32, 32]) });
    await Promise.all(
      writers.map((t, i) =>
        saveTensors(`${dir}/m`, t, { config: { writer: i }, overwrite: true })
      ),
    );
    const { tensors, config } = await loadTensors(`${dir}/m`);
    assertAllClose(
      tensors.w,
      writers[config.writer as number].w,
      { atol: 0, rtol: 0 },
    );
    assertEquals(names(dir), ["m.bin", "m.json"]);
    tf.dispose([...writers.flatMap((t) => Object.values(t)), tensors.w]);
  }));

Deno.test("a symbolic link as destination is refused, even a dangling one", () =>
  withTestDir(async (dir) => {
    // Deno.symlink needs unscoped write permission, which the unit task does not grant.
    const ln = await new Deno.Command("ln", {
      args: ["-s", `${dir}/elsewhere.json`, `${dir}/m.json`],
    }).output();
    assertEquals(ln.code, 0, new TextDecoder().decode(ln.stderr));
    const t = { w: tf.ones([2, 2]) };
    for (const overwrite of [false, true]) {
      await assertRejects(
        () => saveTensors(`${dir}/m`, t, { overwrite }),
        ArgumentError,
        "symbolic link",
      );
    }
    assertEquals(
      names(dir),
      ["m.json"],
      "nothing written, the link not followed",
    );
    t.w.dispose();
  }));

Deno.test("a refused save writes nothing, and a retry after removing the obstacle succeeds", () =>
  withTestDir(async (dir) => {
    const t = { w: tf.tensor1d([1, 2, 3]) };
    await Deno.writeTextFile(`${dir}/run.history.json`, "{}");
    const files = { "history.json": JSON.stringify({ loss: [1, 0.5] }) };
    await assertRejects(
      () => saveTensors(`${dir}/run`, t, { files }),
      ArgumentError,
      "already exists",
    );
    assertEquals(
      names(dir),
      ["run.history.json"],
      "nothing of the save is left",
    );
    await Deno.remove(`${dir}/run.history.json`);
    await saveTensors(`${dir}/run`, t, { files });
    assertEquals(names(dir), ["run.bin", "run.history.json", "run.json"]);
    assertEquals(
      JSON.parse(await Deno.readTextFile(`${dir}/run.history.json`)),
      { loss: [1, 0.5] },
    );
    const { tensors } = await loadTensors(`${dir}/run`);
    assertAllClose(tensors.w, t.w);
    tf.dispose([t.w, tensors.w]);
  }));

Deno.test("overwrite must be a boolean; unknown options and bad suffixes are errors", () =>
  withTestDir(async (dir) => {
    const t = { w: tf.ones([2]) };
    await assertRejects(
      () =>
        saveTensors(`${dir}/m`, t, {
          overwrite: "no" as unknown as boolean,
        }),
      ArgumentError,
      "overwrite must be true or false",
    );
    await assertRejects(
      () =>
        saveTensors(`${dir}/m`, t, {
          overwirte: true,
        } as unknown as { overwrite: boolean }),
      ArgumentError,
      'did you mean "overwrite"',
    );
    await assertRejects(
      () => saveTensors(`${dir}/m`, t, null as unknown as undefined),
      ArgumentError,
      "options must be an object",
    );
    await assertRejects(
      () => saveTensors(`${dir}/m`, t, { files: { "../x": "" } }),
      ArgumentError,
      "suffix",
    );
    assertEquals(names(dir), []);
    t.w.dispose();
  }));

Deno.test("a .bin from another save is detected by its checksum", () =>
  withTestDir(async (dir) => {
    const a = { w: tf.tensor1d([1, 2, 3]) };
    const b = { w: tf.tensor1d([4, 5, 6]) };
    await saveTensors(`${dir}/a`, a);
    await saveTensors(`${dir}/b`, b);
    await Deno.copyFile(`${dir}/b.bin`, `${dir}/a.bin`);
    await assertRejects(
      () => loadTensors(`${dir}/a`),
      ArgumentError,
      "checksum",
    );
    tf.dispose([a.w, b.w]);
  }));

Deno.test("saving and loading leak no tensors", () =>
  withTestDir(async (dir) => {
    const t = { w: tf.ones([3, 3]) };
    await assertNoTensorLeak(async () => {
      await saveTensors(`${dir}/m`, t);
      const { tensors } = await loadTensors(`${dir}/m`);
      tf.dispose(Object.values(tensors));
    });
    t.w.dispose();
  }));
