/**
 * `await written()`: returns once the Jupyter Deno kernel has really written
 * every output queued so far to the frontend, so before it reports the cell
 * finished. `show` (lib/display.ts), the grading records of `checkExercise`
 * (lib/exercise.ts) and the last progress update of `trainLoop`
 * (lib/train.ts) use it; outside Jupyter it returns false at once.
 *
 * Why: Deno's kernel (2.9, cli/js/jupyter_kernel.js) writes queued outputs
 * from a loop of its own (`iopubDrainer`), one at a time and in order, each
 * to every subscriber before the next; the cell's end (`status: idle`) does
 * not wait for that loop. An output written after the end is filed under
 * whatever request is current then (the next cell), or dropped.
 *
 * How: `written` subscribes to the kernel's iopub socket itself (ZMTP 3.0,
 * a SUB socket; the address is in the kernel's connection file, `--conn`),
 * queues a probe, an `update_display_data` for a display that does not exist
 * (frontends drop it without a word; a `comm_msg` for no comm logs an error
 * in classic Notebook's console), and waits until the probe comes back:
 * everything queued before it has then been written. Probes sent before the
 * kernel has taken the new subscription are lost, so the probe is repeated
 * after 5, 10, ... 2560 ms; if none ever comes back, later calls stop
 * waiting.
 *
 * Everything the wait uses is taken when this module is first imported. The
 * grader imports it (through lib/exercise.ts) in its setup cell, before any
 * submitted code runs, so a notebook that replaces `setTimeout`, `Promise`,
 * `Deno.connect`, `crypto.randomUUID`, `TextDecoder`, `String.prototype`'s
 * methods or the methods of a TCP connection can neither stop the wait from
 * ending (it is bounded by timers taken here) nor end it early. (Like any
 * `await`, it does rely on `Promise.prototype.then` and `.constructor`,
 * which the grader puts back when a check starts.)
 *
 * @module
 */

const { apply } = Reflect;
const PromiseClass = Promise;
const promiseThen = Promise.prototype.then;
const later = setTimeout;
const cancel = clearTimeout;
const connect = Deno.connect;
const cryptoObject = crypto;
const randomUUID = crypto.randomUUID;
const Decoder = TextDecoder;
const decode = TextDecoder.prototype.decode;
const Bytes = Uint8Array;
const Buffer = ArrayBuffer;
const { includes, slice } = String.prototype;

type Broadcast = (type: string, content: Record<string, unknown>) => unknown;

function jupyterOrNull(): { broadcast?: Broadcast } | null {
  try {
    // Deno.jupyter exists only inside the kernel; elsewhere the getter throws.
    return (Deno as unknown as { jupyter?: { broadcast?: Broadcast } })
      .jupyter ?? null;
  } catch {
    return null;
  }
}

const jupyter = jupyterOrNull();
const broadcast = jupyter?.broadcast;

// ZMTP 3.0, as a SUB socket: greeting (NULL security), READY, subscribe to all.
const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const SUBSCRIBE = bytes(
  "\xff" + "\0".repeat(8) + "\x7f\x03\x00NULL" + "\0".repeat(48) +
    "\x04\x19\x05READY\x0bSocket-Type\0\0\0\x03SUB" + "\0\x01\x01",
);

/** The iopub address, and the methods of a TCP connection (Deno exports no class to take them from). */
interface Iopub {
  address: Deno.ConnectOptions;
  read: Deno.Conn["read"];
  write: Deno.Conn["write"];
  close: Deno.Conn["close"];
}

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

/** The address, and a connection's methods from one subscription (made and left at once). */
async function openedOnce(): Promise<Iopub | null> {
  const address = await iopubAddress();
  if (!address) return null;
  try {
    const conn = await Deno.connect(address);
    try {
      await conn.write(SUBSCRIBE);
    } finally {
      conn.close();
    }
    return { address, read: conn.read, write: conn.write, close: conn.close };
  } catch {
    return null;
  }
}

const iopub: Iopub | null = typeof broadcast === "function"
  ? await openedOnce()
  : null;
/** False once a probe never came back: later calls do not wait. */
let working = iopub !== null;

/**
 * Resolves once the kernel has written every output queued before the call
 * to its subscribers, the frontend included: true then, false when it
 * cannot tell (outside Jupyter, no connection file, no probe came back
 * within about 5 s). Never throws.
 */
export async function written(): Promise<boolean> {
  if (!working || iopub === null) return false;
  let conn: Deno.Conn;
  try {
    conn = await connect(iopub.address);
  } catch {
    return false;
  }
  try {
    await apply(iopub.write, conn, [SUBSCRIBE]);
    const id = apply(randomUUID, cryptoObject, []) as string;
    const back = echoed(conn, id);
    for (let wait = 5; wait <= 2560; wait *= 2) {
      apply(broadcast!, jupyter, ["update_display_data", {
        data: {},
        metadata: {},
        transient: { display_id: id },
      }]);
      if (await within(back, wait)) return true;
    }
    working = false;
    return false;
  } catch {
    return false;
  } finally {
    try {
      apply(iopub.close, conn, []);
    } catch { /* closed already */ }
  }
}

/** True once `id` has come through `conn`, false if it closes first. */
async function echoed(conn: Deno.Conn, id: string): Promise<boolean> {
  const decoder = new Decoder();
  const buffer = new Buffer(1 << 16);
  const chunk = new Bytes(buffer);
  const tail = -id.length;
  let text = "";
  try {
    for (let n; (n = await apply(iopub!.read, conn, [chunk])) !== null;) {
      const part = apply(decode, decoder, [new Bytes(buffer, 0, n), {
        stream: true,
      }]);
      text = apply(slice, text, [tail]) + part;
      if (apply(includes, text, [id])) return true;
    }
  } catch { /* closed by us after a timeout */ }
  return false;
}

/** `promise`'s value, or false if it takes longer than `ms`. */
function within(promise: Promise<boolean>, ms: number): Promise<boolean> {
  return new PromiseClass<boolean>((resolve) => {
    const timer = apply(later, undefined, [resolve, ms, false]);
    apply(promiseThen, promise, [(value: boolean) => {
      apply(cancel, undefined, [timer]);
      resolve(value);
    }]);
  });
}
