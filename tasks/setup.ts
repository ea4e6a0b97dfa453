/**
 * First-run set-up, automatic and idempotent: finds or installs Jupyter,
 * registers the Deno kernel, and finds (or installs) Fashion-MNIST and
 * OpenBLAS (optional: it makes training 2-3x faster). Used by
 * the `notebooks`, `test` and `lab` tasks, so a fresh machine needs no manual
 * set-up; `deno task setup` runs it alone.
 *
 * @module
 */

/** What the other tasks need to drive Jupyter. */
export interface JupyterSetup {
  /** The `jupyter` executable. */
  jupyter: string;
  /** A Python interpreter that can import nbclient and nbformat. */
  python: string;
}

async function run(
  cmd: string,
  args: string[],
  quiet = true,
): Promise<{ ok: boolean; out: string }> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdout: quiet ? "piped" : "inherit",
      stderr: quiet ? "piped" : "inherit",
    }).output();
    const text = quiet
      ? new TextDecoder().decode(out.stdout) +
        new TextDecoder().decode(out.stderr)
      : "";
    return { ok: out.success, out: text };
  } catch {
    return { ok: false, out: "" };
  }
}

async function which(name: string): Promise<string | null> {
  const r = await run("sh", ["-c", `command -v ${name}`]);
  return r.ok ? r.out.trim().split("\n")[0] : null;
}

/** The Python interpreter named on the `#!` line of the jupyter script. */
async function pythonOf(jupyter: string): Promise<string | null> {
  try {
    const head = (await Deno.readTextFile(jupyter)).split("\n")[0];
    if (head.startsWith("#!")) {
      const parts = head.slice(2).trim().split(/\s+/);
      return parts[0].endsWith("env") ? parts[1] : parts[0];
    }
  } catch { /* a binary launcher: fall through */ }
  return null;
}

async function usable(): Promise<JupyterSetup | null> {
  const jupyter = await which("jupyter");
  if (!jupyter) return null;
  const candidates = [await pythonOf(jupyter), "/usr/bin/python3", "python3"]
    .filter(
      (p): p is string => !!p,
    );
  for (const python of candidates) {
    const ok = await run(python, [
      "-c",
      "import nbclient, nbformat, nbconvert",
    ]);
    if (ok.ok) return { jupyter, python };
  }
  return null;
}

function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
}

/** Debian packages that provide Jupyter, nbconvert and nbclient. */
export const JUPYTER_APT_PACKAGES = [
  "jupyter-notebook",
  "jupyter-nbconvert",
  "python3-nbclient",
];

async function aptInstall(packages: string[]): Promise<boolean> {
  console.log(`setup: installing Debian packages: ${packages.join(" ")}`);
  const update = await run("apt-get", ["update", "-qq"], false);
  if (!update.ok) return false;
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const out = await new Deno.Command("apt-get", {
    args: ["install", "-y", "-qq", "--no-install-recommends", ...packages],
    env,
    stdout: "inherit",
    stderr: "inherit",
  }).output().catch(() => null);
  return !!out?.success;
}

/**
 * Makes sure Jupyter (with nbclient) is available: an existing `jupyter` on
 * PATH; else Debian's packages when running as root with apt; else pip when
 * PyPI answers; else an error naming the exact command to run.
 */
export async function ensureJupyter(): Promise<JupyterSetup> {
  const found = await usable();
  if (found) return found;
  if (isRoot() && await which("apt-get")) {
    if (await aptInstall(JUPYTER_APT_PACKAGES)) {
      const after = await usable();
      if (after) return after;
    }
  }
  if (await which("python3")) {
    console.log("setup: trying pip install --user notebook nbconvert nbclient");
    const pip = await run("python3", [
      "-m",
      "pip",
      "install",
      "--user",
      "--quiet",
      "--disable-pip-version-check",
      "--timeout",
      "15",
      "notebook",
      "nbconvert",
      "nbclient",
    ], false);
    if (pip.ok) {
      const after = await usable();
      if (after) return after;
    }
  }
  throw new Error(
    "setup: Jupyter with nbclient was not found and could not be installed.\n" +
      `  On Debian/Ubuntu run: sudo apt-get install -y ${
        JUPYTER_APT_PACKAGES.join(" ")
      }\n` +
      "  Elsewhere run: python3 -m pip install --user notebook nbconvert nbclient\n" +
      "  then run this command again.",
  );
}

/**
 * Registers the Deno kernel (kernelspec `deno`) with Jupyter unless a working
 * one is already registered. A working kernelspec that a user installed is
 * left alone.
 */
export async function ensureDenoKernel(jupyter: string): Promise<string> {
  const dataDir =
    (await run(jupyter, ["--data-dir"])).out.trim().split("\n").at(-1) ??
      `${Deno.env.get("HOME")}/.local/share/jupyter`;
  const specPath = `${dataDir}/kernels/deno/kernel.json`;
  try {
    const spec = JSON.parse(await Deno.readTextFile(specPath));
    const exe = spec?.argv?.[0];
    if (exe && (await run(exe, ["--version"])).ok) return specPath;
  } catch { /* missing or unreadable: install below */ }
  const r = await run(Deno.execPath(), ["jupyter", "--install"]);
  if (!r.ok) {
    throw new Error(`setup: could not register the Deno kernel:\n${r.out}`);
  }
  console.log(`setup: registered the Deno Jupyter kernel (${Deno.execPath()})`);
  return specPath;
}

const FASHION_DIRS = [
  new URL("../data/fashion-mnist/", import.meta.url).pathname,
  "/usr/share/datasets/fashion-mnist/",
];

/**
 * Makes the full Fashion-MNIST available when it can (Debian's
 * `dataset-fashion-mnist` as root); otherwise the notebooks fall back to
 * the committed subset in data/, and this says so.
 */
export async function ensureFashionMNIST(): Promise<string> {
  const present = async (dir: string) => {
    try {
      await Deno.stat(`${dir}train-images-idx3-ubyte.gz`);
      return true;
    } catch {
      return false;
    }
  };
  for (const dir of FASHION_DIRS) if (await present(dir)) return dir;
  if (
    isRoot() && await which("apt-get") &&
    await aptInstall(["dataset-fashion-mnist"])
  ) {
    if (await present(FASHION_DIRS[1])) return FASHION_DIRS[1];
  }
  console.log(
    "setup: full Fashion-MNIST not found; notebooks use the committed subset in " +
      "data/fashion-mnist-subset/ (install it with: apt-get install dataset-fashion-mnist, " +
      "or copy the four .gz files into data/fashion-mnist/)",
  );
  return "data/fashion-mnist-subset/";
}

/**
 * Makes OpenBLAS available when it can (Debian's `libopenblas0` as root):
 * the matMuls then run on it (lib/kernels/blas_kernels.ts). Without it
 * everything works on wasm's own kernels, 2-3x slower to train; this says
 * so. Returns whether the library is there.
 */
export async function ensureOpenBlas(): Promise<boolean> {
  const present = async () =>
    (await run("sh", ["-c", "ldconfig -p 2>/dev/null || /sbin/ldconfig -p"]))
      .out.includes(
        "libopenblas.so.0",
      );
  if (Deno.build.os !== "linux" || await present()) return true;
  if (
    isRoot() && await which("apt-get") && await aptInstall(["libopenblas0"]) &&
    await present()
  ) {
    return true;
  }
  console.log(
    "setup: OpenBLAS not found; training runs on wasm's own matMul, 2-3x " +
      "slower (install it with: apt-get install libopenblas0)",
  );
  return false;
}

/** Full set-up for the notebook tasks. Fast (a few probes) when everything is there. */
export async function setup(): Promise<JupyterSetup> {
  const found = await ensureJupyter();
  await ensureDenoKernel(found.jupyter);
  await ensureFashionMNIST();
  await ensureOpenBlas();
  return found;
}

if (import.meta.main) {
  const s = await setup();
  console.log(`setup: ok (jupyter: ${s.jupyter}, python: ${s.python})`);
}
