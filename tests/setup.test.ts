/**
 * The first-run set-up (tasks/setup.ts): quiet steps that show a tool's log
 * only when it fails, and a Deno kernel registered on a path that lasts.
 */
import { assert, assertEquals } from "./assert.ts";
import { makeTestDir } from "./temp.ts";
import {
  ensureDenoKernel,
  ensureJupyter,
  isEphemeralPath,
  log,
  quietStep,
} from "../tasks/setup.ts";

const root = new URL("../", import.meta.url).pathname;

async function captured<T>(fn: () => Promise<T>): Promise<[T, string[]]> {
  const lines: string[] = [];
  const original = log.line;
  log.line = (text) => void lines.push(text);
  try {
    return [await fn(), lines];
  } finally {
    log.line = original;
  }
}

Deno.test("a set-up step prints one line, and the tool's log only when it fails", async () => {
  const chatty = "for i in $(seq 1 300); do echo progress $i; done";
  const [ok, quiet] = await captured(() =>
    quietStep("installing demo", "for a test", [["sh", ["-c", chatty]]])
  );
  assert(ok);
  assertEquals(quiet, ["setup: installing demo (for a test)"]);
  const [failed, loud] = await captured(() =>
    quietStep("installing demo", "for a test", [
      ["sh", ["-c", chatty]],
      ["sh", ["-c", `${chatty}; echo 'E: no such package' >&2; exit 100`]],
      ["sh", ["-c", "echo never"]],
    ])
  );
  assert(!failed);
  assertEquals(loud.length, 2);
  assert(loud[1].includes("installing demo failed"), loud[1]);
  assert(loud[1].includes("E: no such package"), loud[1]);
  // The tail only, not 600 lines of progress.
  assert(loud[1].split("\n").length <= 32, loud[1]);
  assert(!loud[1].includes("never"));
});

Deno.test("npx's cache is not a lasting place for the kernel's Deno", () => {
  assert(
    isEphemeralPath(
      "/root/.npm/_npx/8a3f/node_modules/@deno/linux-x64/deno",
    ),
  );
  assert(isEphemeralPath("/tmp/deno-1/deno"));
  assert(!isEphemeralPath("/usr/bin/deno"));
  assert(!isEphemeralPath("/root/.deno/bin/deno"));
  // npm install -g deno: lasting.
  assert(!isEphemeralPath("/usr/lib/node_modules/deno/deno"));
});

Deno.test({
  name:
    "a kernel registered from npx's cache keeps starting after the cache is cleared",
  sanitizeResources: false,
  fn: async () => {
    const { jupyter } = await ensureJupyter();
    const dir = await makeTestDir("kernelspec-");
    try {
      const npx = `${dir}/.npm/_npx/8a3f/node_modules/@deno/linux-x64`;
      await Deno.mkdir(npx, { recursive: true });
      // `ln`: Deno.symlink needs unscoped --allow-write, the test task has build/ only.
      const ln = await new Deno.Command("ln", {
        args: ["-s", Deno.execPath(), `${npx}/deno`],
      }).output();
      assert(ln.success);
      const dataDir = `${dir}/jupyter`;
      const [specPath, lines] = await captured(() =>
        ensureDenoKernel(jupyter, { deno: `${npx}/deno`, dataDir })
      );
      const spec = JSON.parse(await Deno.readTextFile(specPath));
      assertEquals(spec.argv[0], `${dataDir}/kernels/deno/deno`);
      assertEquals(spec.argv.slice(1), [
        "jupyter",
        "--kernel",
        "--conn",
        "{connection_file}",
      ]);
      assertEquals(lines.length, 1);
      assert(lines[0].includes("a lasting copy of"), lines[0]);
      // npm clears its cache: the registered kernel still runs.
      await Deno.remove(`${dir}/.npm`, { recursive: true });
      const version = await new Deno.Command(spec.argv[0], {
        args: ["--version"],
        stdout: "piped",
      }).output();
      assert(version.success);
      assert(
        new TextDecoder().decode(version.stdout).includes(Deno.version.deno),
      );
      // Nothing to do the second time, and nothing printed.
      const [, again] = await captured(() =>
        ensureDenoKernel(jupyter, { deno: Deno.execPath(), dataDir })
      );
      assertEquals(again, []);
      // A registered binary that is gone is registered again.
      await Deno.remove(spec.argv[0]);
      const [, redo] = await captured(() =>
        ensureDenoKernel(jupyter, { deno: Deno.execPath(), dataDir })
      );
      assertEquals(redo.length, 1);
      const respec = JSON.parse(await Deno.readTextFile(specPath));
      assertEquals(respec.argv[0], Deno.execPath());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "set-up on a ready machine prints only setup: lines, a few at most",
  sanitizeResources: false,
  fn: async () => {
    await ensureJupyter();
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-env",
        "--allow-run",
        "--allow-sys",
        `${root}tasks/setup.ts`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    assert(out.success, text + new TextDecoder().decode(out.stderr));
    const lines = text.split("\n");
    assert(lines.length <= 4, text);
    assert(lines.every((l) => l.startsWith("setup:")), text);
    assert(lines.at(-1)!.startsWith("setup: ok"), text);
  },
});
