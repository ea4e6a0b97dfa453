/**
 * `deno task lab`: opens the notebooks in Jupyter with the Deno kernel
 * (setting it up first if needed) and prints the URL to open.
 *
 * usage: deno task lab [--port=8888]
 *
 * @module
 */
import { setup } from "./setup.ts";

const root = new URL("../", import.meta.url).pathname;
const portArg = Deno.args.find((a) => a.startsWith("--port="));
const port = portArg ? Number(portArg.slice(7)) : 8888;
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  throw new Error(`--port must be a TCP port number, got ${portArg}`);
}
const { jupyter } = await setup();
console.log(
  `Starting Jupyter on port ${port} with the notebooks in ${root}notebooks.\n` +
    `Open the URL it prints below (with its token) and pick the "Deno" kernel if asked.\n` +
    `Stop with Ctrl+C.`,
);
// Jupyter refuses to start as root unless told; containers often run as root.
const rootArgs = Deno.uid() === 0 ? ["--allow-root"] : [];
const child = new Deno.Command(jupyter, {
  args: [
    "notebook",
    ...rootArgs,
    "--no-browser",
    "--ip=127.0.0.1",
    `--port=${port}`,
    `--notebook-dir=${root}notebooks`,
  ],
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
Deno.exit((await child.status).code);
