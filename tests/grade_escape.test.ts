/**
 * The grading sandbox (tasks/sandbox.ts) holds: the submission
 * tests/fixtures/grading/escape/escape.ipynb tries to open sockets (to a
 * port this test listens on, and to the internet), to write next to the
 * master and into the reports folder, and to read the master (whose
 * solution it would then use for g-add), the course's notebooks/ and .git.
 * In bubblewrap every attempt fails and g-add scores nothing; the same
 * notebook graded without the sandbox shows that each attempt is real.
 *
 * Linux only; needs bubblewrap (Debian: apt-get install bubblewrap),
 * Jupyter and the Deno kernel, and `deno test --allow-net --allow-run ...`.
 */
import { assert, assertEquals } from "./assert.ts";
import { cellSource, type Notebook, readNotebook } from "../tasks/ipynb.ts";
import { loadMasters } from "../tasks/handout.ts";
import { gradeSubmission } from "../tasks/grade.ts";
import { sandboxStatus } from "../tasks/sandbox.ts";

const root = new URL("../", import.meta.url).pathname;
const fixtures = `${root}tests/fixtures/grading`;
// The folder the escape notebook aims at (paths relative to notebooks/).
const dir = `${root}build/test-grading/escape`;

async function python(): Promise<string> {
  const { ensureDenoKernel, ensureJupyter } = await import("../tasks/setup.ts");
  const found = await ensureJupyter();
  await ensureDenoKernel(found.jupyter);
  return found.python;
}

/** The attempts the notebook printed (`ESCAPE {...}`), by name. */
function attempts(nb: Notebook): Record<string, string> {
  for (const cell of nb.cells) {
    for (const o of cell.outputs ?? []) {
      const text = (o as { text?: string | string[] }).text;
      const line = (Array.isArray(text) ? text.join("") : text ?? "")
        .split("\n").find((l) => l.startsWith("ESCAPE "));
      if (line) return JSON.parse(line.slice(7));
    }
  }
  throw new Error("the escape cell printed nothing");
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test({
  name:
    "grade: in the sandbox a submission reaches no socket, writes nothing and reads no master; unsandboxed it would",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const status = await sandboxStatus("auto");
    assert(
      status.kind === "bubblewrap",
      `this test needs the grading sandbox: ${status.detail}`,
    );
    const py = await python();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(`${dir}/masters`, { recursive: true });
    await Deno.mkdir(`${dir}/reports`, { recursive: true });
    await Deno.copyFile(
      `${fixtures}/masters/01_grading.ipynb`,
      `${dir}/masters/01_grading.ipynb`,
    );
    const masters = await loadMasters(`${dir}/masters`);
    // A listener on this machine, on the first free port the notebook tries.
    let listener: Deno.TcpListener | null = null;
    let port = 0;
    for (const p of [47311, 47312, 47313]) {
      try {
        listener = Deno.listen({ hostname: "127.0.0.1", port: p });
        port = p;
        break;
      } catch {
        // taken: the next one
      }
    }
    assert(listener, "ports 47311-47313 are all taken");
    const received: string[] = [];
    const accepting = (async () => {
      for await (const conn of listener!) {
        const buf = new Uint8Array(64);
        const n = await conn.read(buf).catch(() => null);
        received.push(new TextDecoder().decode(buf.subarray(0, n ?? 0)));
        conn.close();
      }
    })();
    const grade = (sandbox: "bubblewrap" | "none", name: string) =>
      gradeSubmission(`${fixtures}/escape/escape.ipynb`, {
        masters,
        outDir: `${dir}/reports`,
        name,
        timeout: 60,
        python: py,
        sandbox,
      });
    try {
      const boxed = await grade("bubblewrap", "boxed");
      assertEquals(boxed.sandbox, "bubblewrap");
      const tried = attempts(await readNotebook(`${dir}/reports/boxed.ipynb`));
      assertEquals(Object.keys(tried).length, 9, JSON.stringify(tried));
      for (const [what, result] of Object.entries(tried)) {
        assert(result !== "ok", `in the sandbox "${what}" worked`);
      }
      assertEquals(received, []);
      assertEquals(await exists(`${dir}/masters/pwned.txt`), false);
      assertEquals(await exists(`${dir}/reports/pwned.txt`), false);
      // The grade does not depend on the attempts: g-add (which would use the
      // master's solution) is not implemented, the honest answers score.
      assertEquals(boxed.exercises.map((e) => [e.id, e.status]), [
        ["g-add", "not implemented"],
        ["g-square", "pass"],
        ["g-relu", "pass"],
      ]);
      assertEquals([boxed.score, boxed.maxScore], [6, 8]);
      // The executed submission does not carry the master's solution.
      const executed = await readNotebook(`${dir}/reports/boxed.ipynb`);
      assert(
        !executed.cells.some((c) => cellSource(c).includes("grading-secret")),
      );

      // The control: without the sandbox every attempt is real.
      const open = await grade("none", "unboxed");
      assertEquals(open.sandbox, "none");
      const got = attempts(await readNotebook(`${dir}/reports/unboxed.ipynb`));
      for (
        const what of [
          `connect 127.0.0.1:${port}`,
          "write masters",
          "write reports",
          "read master",
          "read course notebooks",
          "read .git",
        ]
      ) {
        assertEquals(got[what], "ok", `unsandboxed "${what}": ${got[what]}`);
      }
      assertEquals(received, ["escaped"]);
      assert(await exists(`${dir}/masters/pwned.txt`));
      assertEquals(
        open.score,
        8,
        "the stolen solution scores without a sandbox",
      );
    } finally {
      listener!.close();
      await accepting.catch(() => {});
    }
  },
});
