/**
 * `deno task grade` grades a folder in parallel with the same results as one
 * at a time: tests/fixtures/grading/parallel/ (four submissions) graded
 * with --jobs=1 and --jobs=2 gives byte-identical JSON reports.
 *
 * Runs the command itself (Jupyter and the Deno kernel needed; `deno test
 * --allow-run ...`).
 */
import { assert, assertEquals } from "./assert.ts";

const root = new URL("../", import.meta.url).pathname;
const out = `${root}build/test-grading/parallel`;

async function grade(
  jobs: number,
): Promise<{ files: Record<string, string>; stdout: string; seconds: number }> {
  const dir = `${out}/jobs${jobs}`;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  const started = performance.now();
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write=build",
      "--allow-env",
      "--allow-run",
      "--allow-sys",
      "tasks/grade.ts",
      `--jobs=${jobs}`,
      "--timeout=60",
      "--masters=tests/fixtures/grading/masters",
      `--out=${dir}`,
      "tests/fixtures/grading/parallel",
    ],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(r.stdout);
  assert(
    r.success,
    `grade --jobs=${jobs} failed:\n${stdout}\n${
      new TextDecoder().decode(r.stderr)
    }`,
  );
  const files: Record<string, string> = {};
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".json")) {
      files[e.name] = await Deno.readTextFile(`${dir}/${e.name}`);
    }
  }
  return { files, stdout, seconds: (performance.now() - started) / 1000 };
}

Deno.test("grade --jobs=2 gives the same reports as --jobs=1", async () => {
  const one = await grade(1);
  const two = await grade(2);
  console.log(
    `  --jobs=1 ${one.seconds.toFixed(0)} s, --jobs=2 ${
      two.seconds.toFixed(0)
    } s`,
  );
  assertEquals(Object.keys(one.files).sort(), [
    "alice.json",
    "bob.json",
    "carol.json",
    "dave.json",
    "summary.json",
  ]);
  for (const name of Object.keys(one.files)) {
    assertEquals(two.files[name], one.files[name], `${name} differs`);
  }
  const scores = JSON.parse(one.files["summary.json"]).map((
    s: { name: string; score: number; maxScore: number },
  ) => `${s.name} ${s.score}/${s.maxScore}`);
  assertEquals(scores, ["alice 8/8", "bob 3/8", "carol 0/8", "dave 3/8"]);
  // The tables come out in the folder's order whatever order the jobs end in.
  const order = (s: string) =>
    [...s.matchAll(/parallel\/(\w+)\.ipynb/g)].map((m) => m[1]);
  assertEquals(order(two.stdout), ["alice", "bob", "carol", "dave"]);
  assert(two.stdout.includes("sandbox: "), two.stdout);
});
