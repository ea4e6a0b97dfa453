/**
 * Showing things in a notebook: `show(chart)` displays a chart, an image grid
 * or any value as its own output of the running cell (awaited, so it reaches
 * the cell that made it), and `showSource(file, name)` displays the source of
 * a library function, read from the file when the cell runs.
 *
 * ```ts
 * await showSource("lib/autodiff.ts", "stopGradient");
 * await show(lossCurveFigure(history));
 * ```
 *
 * Outside Jupyter (tests, a terminal) both print plain text to stdout.
 *
 * @module
 */
import { sourceFor, type SourceOptions } from "./source.ts";

type Bundle = Record<string, unknown>;
const JUPYTER_DISPLAY = Symbol.for("Jupyter.display");

interface JupyterApi {
  display(obj: unknown, options?: { raw?: boolean }): Promise<void>;
  broadcast(type: string, content: Record<string, unknown>): void;
}

function jupyterApi(): JupyterApi | null {
  try {
    // Deno.jupyter exists only inside the kernel; elsewhere the getter throws.
    const j = (Deno as unknown as { jupyter?: JupyterApi }).jupyter;
    return j && typeof j.display === "function" ? j : null;
  } catch {
    return null;
  }
}

/** True inside the Jupyter Deno kernel. */
export function inJupyter(): boolean {
  return jupyterApi() !== null;
}

function bundleOf(value: unknown): Bundle {
  const own = (value as Record<symbol, unknown> | null)?.[JUPYTER_DISPLAY];
  if (typeof own === "function") return own.call(value) as Bundle;
  return {
    "text/plain": typeof value === "string" ? value : Deno.inspect(value, {
      colors: false,
      depth: 4,
    }),
  };
}

/**
 * Displays `value` (a chart, an image grid, a markdown block, any value) as
 * an output of the current cell. Await it: the output then belongs to the
 * cell that made it, even when the kernel is slow.
 */
export async function show(value: unknown): Promise<void> {
  const bundle = bundleOf(value);
  const j = jupyterApi();
  if (!j) return console.log(String(bundle["text/plain"] ?? ""));
  await j.display(bundle, { raw: true }); // only queues the message
  await sent(j); // the kernel has written it to the frontend
}

/**
 * Resolves once the kernel has written every output queued so far to the
 * frontend, so before it reports the cell finished. Deno's kernel (2.9,
 * cli/js/jupyter_kernel.js) writes queued outputs from a loop of its own,
 * one at a time and in order, each to every subscriber before the next; the
 * cell's end (`status: idle`) does not wait for that loop. So we subscribe
 * to the kernel's iopub socket too, queue a probe (an `update_display_data`
 * for a display that does not exist, which frontends drop without a word: a
 * `comm_msg` for no comm logs an error in classic Notebook's console) and
 * wait until it comes back: everything queued
 * before it has then been written. Probes sent before the kernel has taken
 * the new subscription are lost, so the probe is repeated; if none ever
 * comes back, later calls stop waiting.
 */
async function sent(j: JupyterApi): Promise<void> {
  const address = await (iopub ??= iopubAddress());
  const conn = address && await Deno.connect(address).catch(() => null);
  if (!conn) return;
  try {
    await conn.write(SUBSCRIBE);
    const id = crypto.randomUUID();
    const back = echoed(conn, id);
    for (let wait = 5; wait <= 2560; wait *= 2) {
      j.broadcast("update_display_data", {
        data: {},
        metadata: {},
        transient: { display_id: id },
      });
      if (await within(back, wait)) return;
    }
    iopub = Promise.resolve(null);
  } finally {
    conn.close();
  }
}

let iopub: Promise<Deno.ConnectOptions | null> | undefined;

/** Where the running kernel publishes: from its connection file (`--conn`). */
async function iopubAddress(): Promise<Deno.ConnectOptions | null> {
  try {
    const args = await Deno.readTextFile("/proc/self/cmdline")
      .then((text) => text.split("\0"))
      .catch(async () => { // macOS: no /proc
        const ps = await new Deno.Command("ps", {
          args: ["-ww", "-o", "command=", "-p", String(Deno.pid)],
        }).output();
        return new TextDecoder().decode(ps.stdout).trim().split(" ");
      });
    const at = args.indexOf("--conn");
    if (at < 0) return null;
    const info = JSON.parse(await Deno.readTextFile(args[at + 1]));
    if (info.transport !== "tcp") return null;
    const hostname = info.ip === "0.0.0.0" ? "127.0.0.1" : info.ip;
    return { hostname, port: info.iopub_port };
  } catch {
    return null;
  }
}

// ZMTP 3.0, as a SUB socket: greeting (NULL security), READY, subscribe to all.
const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const SUBSCRIBE = bytes(
  "\xff" + "\0".repeat(8) + "\x7f\x03\x00NULL" + "\0".repeat(48) +
    "\x04\x19\x05READY\x0bSocket-Type\0\0\0\x03SUB" + "\0\x01\x01",
);

/** True once `id` has come through `conn`, false if it closes first. */
async function echoed(conn: Deno.Conn, id: string): Promise<boolean> {
  const decoder = new TextDecoder();
  const chunk = new Uint8Array(1 << 16);
  let text = "";
  try {
    for (let n; (n = await conn.read(chunk)) !== null;) {
      text = text.slice(-id.length) +
        decoder.decode(chunk.subarray(0, n), { stream: true });
      if (text.includes(id)) return true;
    }
  } catch { /* closed by us after a timeout */ }
  return false;
}

/** `promise`'s value, or false if it takes longer than `ms`. */
async function within(promise: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((r) => timer = setTimeout(r, ms, false));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Displays the source of `name` (a function, class, constant, or a method
 * `Class.method`) from `file` (relative to the repository root) as
 * highlighted TypeScript with a caption naming the file and lines. The text
 * is read from the file when the cell runs: what is shown is what runs.
 *
 * @throws ArgumentError when the file or the name does not exist
 */
export async function showSource(
  file: string,
  name: string,
  options: SourceOptions = {},
): Promise<void> {
  await show(sourceBlock(file, name, options, "showSource"));
}

/** A displayable block of source: markdown (highlighted by Jupyter and nbconvert) and plain text. */
export function sourceBlock(
  file: string,
  name: string,
  options: SourceOptions = {},
  where = "sourceBlock",
): { [JUPYTER_DISPLAY](): Bundle } {
  const s = sourceFor(where, file, name, options);
  const caption = `${s.file}, lines ${s.startLine}-${s.endLine}: ${s.name}`;
  // A fence longer than any run of backticks in the code cannot be closed early.
  const longest = Math.max(
    2,
    ...(s.code.match(/`+/g) ?? []).map((r) => r.length),
  );
  const fence = "`".repeat(longest + 1);
  return {
    [JUPYTER_DISPLAY]: () => ({
      "text/markdown":
        `**\`${s.file}\`** lines ${s.startLine}-${s.endLine}: \`${s.name}\`\n\n${fence}typescript\n${s.code}\n${fence}\n`,
      "text/plain": `// ${caption}\n${s.code}`,
    }),
  };
}
