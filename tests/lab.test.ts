/**
 * `deno task lab` works on copies (build/lab/notebooks), so saving notebooks
 * with outputs and checkpoints in Jupyter leaves the masters and `git status`
 * clean; edited copies survive a change of their master.
 */
import { assert, assertEquals } from "./assert.ts";
import { makeTestDir } from "./temp.ts";
import { prepareLab } from "../tasks/lab.ts";
import { ensureJupyter } from "../tasks/setup.ts";

const root = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

const notebook = (text: string) =>
  JSON.stringify({
    cells: [{
      cell_type: "code",
      metadata: {},
      source: [text],
      outputs: [],
      execution_count: null,
    }],
    metadata: { kernelspec: { name: "deno", display_name: "Deno" } },
    nbformat: 4,
    nbformat_minor: 5,
  });

Deno.test("prepareLab copies the masters, refreshes untouched copies and keeps edited ones", async () => {
  const dir = await makeTestDir("lab-");
  try {
    const masters = `${dir}/masters`;
    const ws = `${dir}/ws`;
    await Deno.mkdir(masters);
    await Deno.writeTextFile(`${masters}/a.ipynb`, notebook("1"));
    await Deno.writeTextFile(`${masters}/b.ipynb`, notebook("2"));
    const first = await prepareLab(masters, ws);
    assertEquals(first.copied, ["a.ipynb", "b.ipynb"]);
    assertEquals(
      await Deno.readTextFile(`${ws}/notebooks/a.ipynb`),
      notebook("1"),
    );
    // The notebooks' ../lib/mod.ts and the data resolve inside the workspace.
    assertEquals(
      await Deno.realPath(`${ws}/lib`),
      await Deno.realPath(`${root}/lib`),
    );
    assert((await Deno.stat(`${ws}/lib/mod.ts`)).isFile);
    assertEquals(
      await Deno.realPath(`${ws}/data`),
      await Deno.realPath(`${root}/data`),
    );
    // Nothing changed: nothing to do.
    assertEquals((await prepareLab(masters, ws)).copied, []);
    // The student works in a's copy; then both masters change.
    await Deno.writeTextFile(`${ws}/notebooks/a.ipynb`, notebook("my work"));
    await Deno.writeTextFile(`${masters}/a.ipynb`, notebook("1 v2"));
    await Deno.writeTextFile(`${masters}/b.ipynb`, notebook("2 v2"));
    const third = await prepareLab(masters, ws);
    assertEquals(third.copied, ["b.ipynb"]);
    assertEquals(third.kept, ["a.ipynb"]);
    assert(
      third.notes[0].includes("has your edits and is kept"),
      third.notes[0],
    );
    assertEquals(
      await Deno.readTextFile(`${ws}/notebooks/a.ipynb`),
      notebook("my work"),
    );
    assertEquals(
      await Deno.readTextFile(`${ws}/notebooks/b.ipynb`),
      notebook("2 v2"),
    );
    // Deleting the copy brings the new master.
    await Deno.remove(`${ws}/notebooks/a.ipynb`);
    assertEquals((await prepareLab(masters, ws)).copied, ["a.ipynb"]);
    assertEquals(
      await Deno.readTextFile(`${ws}/notebooks/a.ipynb`),
      notebook("1 v2"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function gitStatus(): Promise<string[]> {
  const out = await new Deno.Command("git", {
    args: ["status", "--porcelain", "--untracked-files=all"],
    cwd: root,
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean);
}

Deno.test({
  name:
    "saving a notebook with outputs and a checkpoint in `deno task lab` leaves the masters and git status clean",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await ensureJupyter();
    const ws = await makeTestDir("lab-");
    const port = freePort();
    const token = crypto.randomUUID();
    const [file] = [...Deno.readDirSync(`${root}/notebooks`)]
      .map((e) => e.name).filter((n) => n.endsWith(".ipynb")).sort();
    const master = await Deno.readTextFile(`${root}/notebooks/${file}`);
    const before = new Set(await gitStatus());
    const lab = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write=build",
        "--allow-env",
        "--allow-run",
        "--allow-sys",
        `${root}/tasks/lab.ts`,
        `--port=${port}`,
        `--workspace=${ws}`,
      ],
      cwd: root,
      env: { JUPYTER_TOKEN: token },
      stdout: "null",
      stderr: "null",
    }).spawn();
    const api = (path: string, init?: RequestInit) =>
      fetch(`http://127.0.0.1:${port}/api/${path}?token=${token}`, init);
    try {
      let up = false;
      let exited = false;
      lab.status.then(() => exited = true);
      for (let i = 0; i < 120 && !up && !exited; i++) {
        await new Promise((r) => setTimeout(r, 500));
        up = await api("status").then(async (r) => {
          await r.body?.cancel();
          return r.ok;
        }, () => false);
      }
      assert(
        up,
        `Jupyter did not start${exited ? ": the lab task exited" : ""}`,
      );
      const got = await (await api(`contents/${file}`)).json();
      const content = got.content;
      const code = content.cells.find((c: { cell_type: string }) =>
        c.cell_type === "code"
      );
      code.outputs = [{ output_type: "stream", name: "stdout", text: "ran\n" }];
      code.execution_count = 1;
      const put = await api(`contents/${file}`, {
        method: "PUT",
        body: JSON.stringify({ type: "notebook", format: "json", content }),
      });
      const putText = await put.text();
      assert(put.ok, putText);
      const cp = await api(`contents/${file}/checkpoints`, { method: "POST" });
      const cpText = await cp.text();
      assert(cp.ok, cpText);
    } finally {
      try {
        lab.kill("SIGTERM");
      } catch { /* already ended */ }
      await lab.status;
    }
    try {
      // The save went to the copy ...
      const saved = await Deno.readTextFile(`${ws}/notebooks/${file}`);
      assert(saved.includes('"ran\\n"'), "the save did not reach the copy");
      assert(
        (await Deno.stat(`${ws}/notebooks/.ipynb_checkpoints`)).isDirectory,
      );
      // ... not to the master, and git sees nothing new.
      assertEquals(
        await Deno.readTextFile(`${root}/notebooks/${file}`),
        master,
      );
      const added = (await gitStatus()).filter((l) => !before.has(l));
      assertEquals(
        added.filter((l) =>
          l.includes("notebooks/") || l.includes("checkpoint")
        ),
        [],
      );
    } finally {
      await Deno.remove(ws, { recursive: true });
    }
  },
});
