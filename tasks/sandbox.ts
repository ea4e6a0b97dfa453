/**
 * The grading sandbox (docs/instructors.md, "Isolation"): runs the notebook
 * executor (tasks/sandbox_exec.py, and through it the Deno kernel) in Linux
 * namespaces with bubblewrap (`bwrap`, Debian's `bubblewrap` package):
 *
 * - no network: a network namespace of its own with only a loopback device
 *   (the executor reaches the kernel over it);
 * - read-only, and only what a notebook needs: the system (/usr and a few
 *   files of /etc), Python, the deno executable, Deno's npm cache, and the
 *   course runtime at its own path (lib/, packages/, node_modules/, data/,
 *   deno.json, deno.lock). Not visible: notebooks/ (the masters), tests/,
 *   build/ (reports, instructor editions), .git, the submissions, the home
 *   folder, the rest of the machine;
 * - writable: only memory-backed folders of limited size that vanish with
 *   the sandbox (the kernel's working folder notebooks/, build/, /tmp, and
 *   /grading for home, caches and the Jupyter runtime files). Nothing is
 *   written to the machine: the notebook goes in on stdin and comes out on
 *   stdout;
 * - its own process, IPC and hostname namespaces, no capabilities, a new
 *   session, and the executor as pid 1: whatever the submission starts dies
 *   with it, and it sees no other process of the machine.
 *
 * Without a working `bwrap` the grader still runs, unsandboxed, and says so.
 *
 * @module
 */

/** Which sandbox the grader uses. */
export type SandboxKind = "bubblewrap" | "none";

/** What `sandboxStatus` found. */
export interface SandboxStatus {
  kind: SandboxKind;
  /** `bubblewrap 0.8.0`, or why there is no sandbox. */
  detail: string;
}

/** How the grader asks for the sandbox (`--sandbox=`). */
export type SandboxMode = "auto" | "bubblewrap" | "none";

/** Size of each writable folder inside the sandbox (memory-backed). */
export const SCRATCH_BYTES = 512 * 1024 * 1024;

/** Where the sandbox's own writable folder is (home, caches, Jupyter runtime). */
export const INSIDE = "/grading";

const decoder = new TextDecoder();

async function output(
  cmd: string,
  args: string[],
): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    return {
      ok: r.success,
      out: (decoder.decode(r.stdout) + decoder.decode(r.stderr)).trim(),
    };
  } catch (e) {
    return { ok: false, out: (e as Error).message };
  }
}

function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
}

/** The bwrap flags every sandbox starts with: namespaces, capabilities, the system. */
async function systemArgs(): Promise<string[]> {
  const args = [
    "--unshare-all",
    "--die-with-parent",
    "--new-session",
    "--as-pid-1",
  ];
  // Run as root, bwrap keeps root's capabilities inside unless told not to
  // (with them a submission could remount the read-only folders).
  if (isRoot()) args.push("--cap-drop", "ALL");
  args.push("--ro-bind", "/usr", "/usr");
  for (const d of ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]) {
    const info = await Deno.lstat(d).catch(() => null);
    if (info?.isSymlink) args.push("--symlink", await Deno.readLink(d), d);
    else if (info?.isDirectory) args.push("--ro-bind", d, d);
  }
  // Only the files of /etc that programs need to start (no keys, no shadow).
  for (
    const f of [
      "/etc/ld.so.cache",
      "/etc/ld.so.conf",
      "/etc/ld.so.conf.d",
      "/etc/passwd",
      "/etc/group",
      "/etc/nsswitch.conf",
      "/etc/hosts",
      "/etc/localtime",
      "/etc/alternatives",
      "/etc/mime.types",
      "/etc/python3",
      "/etc/python3.11",
      "/etc/python3.12",
      "/etc/python3.13",
    ]
  ) {
    args.push("--ro-bind-try", f, f);
  }
  args.push("--proc", "/proc", "--dev", "/dev");
  return args;
}

const statusCache = new Map<SandboxMode, Promise<SandboxStatus>>();

/**
 * Whether bubblewrap works here (it is tried on `true` with the grader's
 * flags: a container may forbid namespaces). `mode` "none" never sandboxes;
 * "bubblewrap" throws when it does not work; "auto" falls back to none.
 */
export function sandboxStatus(
  mode: SandboxMode = "auto",
): Promise<SandboxStatus> {
  let found = statusCache.get(mode);
  if (!found) {
    found = probe(mode);
    statusCache.set(mode, found);
  }
  return found;
}

async function probe(mode: SandboxMode): Promise<SandboxStatus> {
  if (mode === "none") {
    return { kind: "none", detail: "turned off (--sandbox=none)" };
  }
  const version = await output("bwrap", ["--version"]);
  let why: string;
  if (!version.ok) {
    why = "bwrap is not installed (Debian: apt-get install bubblewrap)";
  } else {
    const tried = await output("bwrap", [
      ...await systemArgs(),
      "--size",
      "1048576",
      "--tmpfs",
      "/tmp",
      "--remount-ro",
      "/",
      "/usr/bin/true",
    ]);
    if (tried.ok) return { kind: "bubblewrap", detail: version.out };
    why = `bwrap cannot create namespaces here: ${
      tried.out.split("\n")[0] || "it failed"
    }`;
  }
  if (mode === "bubblewrap") throw new Error(`no sandbox: ${why}`);
  return { kind: "none", detail: why };
}

/** What one sandboxed run sees. */
export interface SandboxLayout {
  /** The course whose runtime is visible (read-only, at its own path). */
  courseRoot: string;
  /** The kernel's working folder: `<courseRoot>/notebooks`, empty and writable. */
  cwd: string;
  /** Host files shown read-only at another path inside: [host, inside]. */
  files: [string, string][];
  /** Host paths shown read-only at the same path (Python, deno, the executor). */
  readOnly: string[];
}

/** The course files a notebook needs at run time (missing ones are skipped). */
export const COURSE_RUNTIME = [
  "lib",
  "packages",
  "node_modules",
  "data",
  "deno.lock",
];

/** The full bwrap argument list that runs `argv` in `layout`. */
export async function bwrapArgs(
  layout: SandboxLayout,
  argv: string[],
): Promise<string[]> {
  const args = await systemArgs();
  const tmpfs = (path: string) =>
    args.push("--size", String(SCRATCH_BYTES), "--tmpfs", path);
  tmpfs("/tmp");
  tmpfs(INSIDE);
  for (const d of ["home", "deno", "runtime", "jupyter/kernels/deno"]) {
    args.push("--dir", `${INSIDE}/${d}`);
  }
  for (const p of layout.readOnly) args.push("--ro-bind", p, p);
  for (const p of COURSE_RUNTIME) {
    args.push(
      "--ro-bind-try",
      `${layout.courseRoot}/${p}`,
      `${layout.courseRoot}/${p}`,
    );
  }
  for (const [host, inside] of layout.files) {
    args.push("--ro-bind", host, inside);
  }
  tmpfs(layout.cwd);
  tmpfs(`${layout.courseRoot}/build`);
  args.push("--remount-ro", "/", "--chdir", layout.cwd, ...argv);
  return args;
}

/** Python's own folders outside /usr (a virtualenv, pyenv, user site-packages). */
export async function pythonFolders(python: string): Promise<string[]> {
  const r = await output(python, [
    "-c",
    "import sys, json, os; print(json.dumps([os.path.realpath(sys.executable), sys.prefix, sys.base_prefix, *sys.path]))",
  ]);
  if (!r.ok) return [];
  let paths: string[];
  try {
    paths = JSON.parse(r.out.split("\n").at(-1) ?? "[]");
  } catch {
    return [];
  }
  const out = new Set<string>();
  for (const p of paths) {
    if (!p || !p.startsWith("/") || p.startsWith("/usr/")) continue;
    if (await Deno.stat(p).then(() => true, () => false)) out.add(p);
  }
  // Nested paths are covered by their parents.
  return [...out].filter((p) =>
    ![...out].some((q) => q !== p && p.startsWith(q + "/"))
  );
}

/** Deno's npm package cache (`deno info --json`), or null. */
export async function npmCache(deno = Deno.execPath()): Promise<string | null> {
  const r = await output(deno, ["info", "--json"]);
  try {
    const info = JSON.parse(r.out.slice(r.out.indexOf("{")));
    return typeof info.npmCache === "string" ? info.npmCache : null;
  } catch {
    return null;
  }
}
