/**
 * Runs a test's script in a fresh Deno process: what a process does at
 * start-up and at exit (helper threads, environment settings) cannot be
 * tested inside the test runner's own.
 *
 * @module
 */

/** What the child printed, and how it exited. */
export interface ChildResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `script` (TypeScript, from standard input) with read, FFI and
 * environment permissions and `env` added to this process's environment;
 * kills it after `timeoutMs` (then `code` is the signal's).
 */
export async function runChildScript(
  script: string,
  { env = {}, timeoutMs = 60_000 }: {
    env?: Record<string, string>;
    timeoutMs?: number;
  } = {},
): Promise<ChildResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-ffi", "--allow-env", "-"],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const timer = setTimeout(() => child.kill(), timeoutMs);
  try {
    const out = await child.output();
    const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    return {
      code: out.code,
      stdout: text(out.stdout),
      stderr: text(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}
