/**
 * What a student sees in the classic Jupyter Notebook (6.4) with the Deno
 * kernel, in headless Chromium: after "Run All" with one CPU core kept busy,
 * each figure shown with `await show(...)` (lib/display.ts) is in the output
 * area of the cell that made it, and nowhere else; no cell shows an error or
 * a stray output; and the page logs no error or warning (show()'s probes,
 * `update_display_data` for no display, must stay invisible, in the page and
 * in its console).
 *
 * @module
 */
import { assert, assertEquals } from "./assert.ts";
import { withBrowser } from "./browser.ts";
import { makeTestDir } from "./temp.ts";
import { ensureDenoKernel, ensureJupyter } from "../tasks/setup.ts";
import { notebookServerArgs } from "../tasks/lab.ts";

const display = new URL("../lib/display.ts", import.meta.url).href;

/** Figure cells (each does some work, then `await show(figure(i))`). */
const FIGURES = 8;

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

const code = (source: string) => ({
  cell_type: "code",
  metadata: {},
  source: source.split(/(?<=\n)/),
  outputs: [],
  execution_count: null,
});

/** The notebook: set-up, FIGURES figure cells, a last cell with a plain value. */
function notebook(): string {
  const cells = [code(`import { show } from ${JSON.stringify(display)};
const figure = (i: number) => ({
  [Symbol.for("Jupyter.display")]: () => ({
    "image/svg+xml": \`<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300"><text x="10" y="20" class="marker">figure \${i}</text>\${
      Array.from({ length: 400 }, (_, k) => \`<circle cx="\${k}" cy="\${(k * i) % 300}" r="2"/>\`).join("")
    }</svg>\`,
    "text/plain": \`figure \${i}\`,
  }),
});
/** CPU work that returns nothing (so a cell ending with it shows no value). */
const work = (n: number): void => {
  let s = 0;
  for (let k = 0; k < n; k++) s += k;
  if (s < 0) console.log(s);
};`)];
  for (let i = 1; i <= FIGURES; i++) {
    // Work before the figure; every other cell works after it too.
    cells.push(code(
      `work(2e6);\nawait show(figure(${i}));${i % 2 ? "" : "\nwork(1e6);"}`,
    ));
  }
  cells.push(code(`"done " + 6 * 7`));
  return JSON.stringify({
    cells,
    metadata: {
      kernelspec: {
        name: "deno",
        display_name: "Deno",
        language: "typescript",
      },
    },
    nbformat: 4,
    nbformat_minor: 5,
  });
}

/** What one code cell holds and shows once the run has settled. */
interface CellView {
  /** `execution_count` of the cell (a number once it ran). */
  count: number | null;
  /** The output_type of each output in the cell's model. */
  types: string[];
  /** The text/plain of each output (or the error's ename). */
  texts: string[];
  /** The text of each rendered `<svg>`'s marker, in the cell's output area. */
  svgs: string[];
  /** Rendered outputs in the cell's output area. */
  rendered: number;
  /** Rendered error or stderr outputs. */
  errors: number;
}

/**
 * What Debian's Notebook 6.4 logs when it opens any notebook, before a cell
 * runs: its config enables the ipywidgets extension, whose files are not
 * installed (a 404 and a refused script), and it binds an action of an
 * extension that is absent. Nothing of ours.
 */
const PAGE_NOISE = [
  /nbextensions\/widgets\//,
  /^warn: Widgets are not available/,
  /^warn: actions jupyter-notebook:find-and-replace does not exist/,
];

// In-page code is a string: the page's types (jQuery, Jupyter) are not Deno's.
const CELLS = `Jupyter.notebook.get_cells()
  .filter((c) => c.cell_type === "code")
  .map((c) => ({
    count: typeof c.input_prompt_number === "number" ? c.input_prompt_number : null,
    types: c.output_area.outputs.map((o) => o.output_type),
    texts: c.output_area.outputs.map((o) =>
      o.output_type === "error" ? o.ename : String((o.data || {})["text/plain"] ?? o.text ?? "")),
    svgs: [...c.element[0].querySelectorAll(".output_area svg")]
      .map((s) => s.querySelector("text.marker")?.textContent ?? "(no marker)"),
    rendered: c.element[0].querySelectorAll(".output_area").length,
    errors: c.element[0].querySelectorAll(".output_error, .output_stderr").length,
  }))`;

/** Every code cell has run (a number, not "*") and the kernel is idle. */
const FINISHED = `Jupyter.notebook.get_cells()
  .filter((c) => c.cell_type === "code")
  .every((c) => typeof c.input_prompt_number === "number" &&
    !c.element[0].classList.contains("running")) &&
  !Jupyter.notebook.kernel_busy`;

Deno.test({
  name:
    "classic Notebook, Run All with a busy core: each `await show(...)` figure is in its own cell, and the page logs no error",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { jupyter, python } = await ensureJupyter();
    await ensureDenoKernel(jupyter);
    const dir = await makeTestDir("frontend-");
    let server: Deno.ChildProcess | undefined;
    let busy: Deno.ChildProcess | undefined;
    let logged: Promise<void> = Promise.resolve();
    try {
      await Deno.writeTextFile(`${dir}/figures.ipynb`, notebook());
      const port = freePort();
      const token = crypto.randomUUID();
      const base = `http://127.0.0.1:${port}`;
      server = new Deno.Command(jupyter, {
        args: [
          ...notebookServerArgs(port, dir),
          "--port-retries=0",
          `--NotebookApp.token=${token}`,
        ],
        stdout: "null",
        stderr: "piped",
      }).spawn();
      let log = ""; // the server's log, for the failure messages
      logged = server.stderr.pipeThrough(new TextDecoderStream())
        .pipeTo(
          new WritableStream({
            write: (t) => void (log = (log + t).slice(-20000)),
          }),
        ).catch(() => {});
      let exited = false;
      server.status.then(() => exited = true);
      // One core kept busy, as on a loaded machine.
      busy = new Deno.Command(python, {
        args: ["-c", "while True: pass"],
        stdout: "null",
        stderr: "null",
      }).spawn();
      let up = false;
      for (let i = 0; i < 120 && !up && !exited; i++) {
        await new Promise((r) => setTimeout(r, 250));
        up = await fetch(`${base}/api/status?token=${token}`).then(
          async (r) => {
            await r.body?.cancel();
            return r.ok;
          },
          () => false,
        );
      }
      assert(up, `Jupyter did not start:\n${log}`);

      const { cells, console: messages } = await withBrowser(
        async (browser) => {
          const page = await browser.newPage();
          const messages: string[] = [];
          page.on("console", (m) => {
            if (m.type() === "error" || m.type().startsWith("warn")) {
              const at = m.location().url;
              messages.push(`${m.type()}: ${m.text()}${at ? ` (${at})` : ""}`);
            }
          });
          page.on("pageerror", (e) => messages.push(`pageerror: ${e.message}`));
          await page.goto(`${base}/notebooks/figures.ipynb?token=${token}`, {
            waitUntil: "load",
          });
          // The kernel has answered kernel_info: it is started and connected.
          await page.waitForFunction(
            `window.Jupyter?.notebook?.kernel?.is_connected() &&
              Jupyter.notebook.kernel.info_reply?.status === "ok" &&
              !Jupyter.notebook.kernel_busy`,
            { timeout: 60_000, polling: 100 },
          );
          await page.evaluate(`Jupyter.notebook.execute_all_cells()`);
          await page.waitForFunction(FINISHED, {
            timeout: 120_000,
            polling: 100,
          });
          // A late output would come now: wait until nothing changes for 1.5 s.
          let last = "";
          let cells: CellView[] = [];
          for (let stable = 0, i = 0; stable < 15 && i < 100; i++) {
            cells = await page.evaluate<CellView[]>(CELLS);
            const now = JSON.stringify(cells);
            stable = now === last ? stable + 1 : 0;
            last = now;
            await new Promise((r) => setTimeout(r, 100));
          }
          // Stop the kernel from the page, as File > Close and Halt does.
          await page.evaluate(`Jupyter.notebook.kernel.kill()`).catch(() => {});
          await page.close();
          return { cells, console: messages };
        },
      );

      const all = JSON.stringify(cells, null, 1);
      assertEquals(cells.length, FIGURES + 2, all);
      // Every cell ran, in order.
      assertEquals(
        cells.map((c) => c.count),
        cells.map((_, i) => i + 1),
        all,
      );
      assertEquals(cells[0].types, [], `the set-up cell shows output: ${all}`);
      for (let i = 1; i <= FIGURES; i++) {
        const c = cells[i];
        assertEquals(
          c.svgs,
          [`figure ${i}`],
          `cell ${i} should show exactly figure ${i}: ${all}`,
        );
        assertEquals(c.types, ["display_data"], `cell ${i}: ${all}`);
        assertEquals(c.texts, [`figure ${i}`], `cell ${i}: ${all}`);
        assertEquals(c.rendered, 1, `cell ${i}: ${all}`);
      }
      const last = cells[FIGURES + 1];
      assertEquals(last.types, ["execute_result"], all);
      // The kernel colours the value's text/plain (ANSI escapes).
      assertEquals(
        // deno-lint-ignore no-control-regex
        last.texts.map((t) => t.replace(/\x1b\[[0-9;]*m/g, "")),
        ['"done 42"'],
        all,
      );
      assertEquals(last.svgs, [], all);
      assertEquals(cells.map((c) => c.errors), cells.map(() => 0), all);
      // The page's console: nothing from the comm manager nor anything else,
      // apart from what Debian's Notebook 6.4 logs on opening any notebook.
      // show()'s first probes were comm_msgs for a comm that does not exist,
      // which Notebook 6.4's CommManager.comm_msg (services/kernels/comm.js)
      // answers with console.error("Comm promise not found for comm id ..."):
      // a red error per probe that a student sees in devtools. The probes
      // (lib/iopub.ts) are now update_display_data for an unknown display,
      // which Notebook drops silently; a comm error here fails the test
      // rather than being filtered out.
      const ours = messages.filter((m) => !PAGE_NOISE.some((r) => r.test(m)));
      const probes = ours.filter((m) => /comm/i.test(m)).length;
      assertEquals(
        ours,
        [],
        `the page logged${
          probes
            ? ` (${probes} from the comm manager: show()'s probe comm_msgs)`
            : ""
        }:\n${messages.join("\n")}`,
      );
    } finally {
      try {
        busy?.kill("SIGKILL");
      } catch { /* already ended */ }
      await busy?.status;
      if (server) {
        const stopped = server.status;
        try {
          server.kill("SIGTERM"); // Jupyter shuts its kernels down on SIGTERM
        } catch { /* already ended */ }
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise((r) => timer = setTimeout(r, 15_000, "late"));
        if (await Promise.race([stopped, late]) === "late") {
          try {
            server.kill("SIGKILL");
          } catch { /* ended meanwhile */ }
        }
        clearTimeout(timer);
        await stopped;
      }
      await logged;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
