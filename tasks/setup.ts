/**
 * First-run set-up, automatic and idempotent: finds or installs Jupyter,
 * registers the Deno kernel, and finds (or installs) Fashion-MNIST and
 * OpenBLAS (optional: it makes training 2-3x faster). Used by
 * the `notebooks`, `test` and `lab` tasks, so a fresh machine needs no manual
 * set-up; `deno task setup` runs it alone.
 *
 * It prints one line per thing it installs (what and why) and nothing when
 * all is there; an installer's own log is shown only when it fails.
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

/** Where set-up messages go (tests replace it). */
export const log = { line: (text: string) => console.log(text) };

/**
 * Runs one installer step quietly: prints `setup: <what> (<why>)`, keeps the
 * tool's output, and shows its last lines only when the step fails.
 */
export async function quietStep(
  what: string,
  why: string,
  commands: [string, string[]][],
  env: Record<string, string> = {},
): Promise<boolean> {
  log.line(`setup: ${what} (${why})`);
  let output = "";
  for (const [cmd, args] of commands) {
    let ok = false;
    try {
      const r = await new Deno.Command(cmd, {
        args,
        env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      output += new TextDecoder().decode(r.stdout) +
        new TextDecoder().decode(r.stderr);
      ok = r.success;
    } catch (e) {
      output += `${cmd}: ${(e as Error).message}\n`;
    }
    if (!ok) {
      const tail = output.trimEnd().split("\n").slice(-30);
      log.line(
        `setup: ${what} failed; the last lines of \`${cmd} ${
          args.join(" ")
        }\`:\n  ${tail.join("\n  ")}`,
      );
      return false;
    }
  }
  return true;
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

let aptUpdated = false;

async function aptInstall(packages: string[], why: string): Promise<boolean> {
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const install: [string, string[]] = [
    "apt-get",
    ["install", "-y", "-q", "--no-install-recommends", ...packages],
  ];
  const ok = await quietStep(
    `installing ${packages.join(" ")} with apt-get`,
    why,
    aptUpdated ? [install] : [["apt-get", ["update", "-q"]], install],
    env,
  );
  aptUpdated ||= ok;
  return ok;
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
    if (
      await aptInstall(
        JUPYTER_APT_PACKAGES,
        "Jupyter runs the notebooks headless and in the browser",
      )
    ) {
      const after = await usable();
      if (after) return after;
    }
  }
  if (await which("python3")) {
    const pip = await quietStep(
      "installing notebook nbconvert nbclient with pip --user",
      "Jupyter runs the notebooks; apt-get was not usable",
      [["python3", [
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
      ]]],
    );
    if (pip) {
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
 * Writes a kernelspec: argv = [dir, kernel.json text, deno, exe]; copies
 * deno to exe first when they differ (copy, then rename: a kernel starting
 * meanwhile never runs half a file).
 */
const REGISTER_KERNEL = `
import os, shutil, sys
spec_dir, spec, deno, exe = sys.argv[1:5]
os.makedirs(spec_dir, exist_ok=True)
if exe != deno:
    shutil.copyfile(deno, exe + ".partial")
    os.chmod(exe + ".partial", 0o755)
    os.replace(exe + ".partial", exe)
with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
    f.write(spec)
`;

/**
 * True for a Deno binary that a cache may delete: `npx -y deno@...` runs one
 * from npm's npx cache (~/.npm/_npx/<hash>/node_modules/...), which npm
 * clears when it likes; a kernel registered there would stop starting.
 */
export function isEphemeralPath(path: string): boolean {
  return /\/(_npx|\.npm|\.cache)\//.test(path) || path.startsWith("/tmp/");
}

/** Options of `ensureDenoKernel` (tests point them elsewhere). */
export interface KernelOptions {
  /** The Deno binary to register (default: the one running this). */
  deno?: string;
  /** Jupyter's data dir (default: `jupyter --data-dir`). */
  dataDir?: string;
}

/**
 * Registers the Deno kernel (kernelspec `deno`) with Jupyter unless a working
 * one is already registered on a lasting path. A Deno run from a cache
 * (`npx -y deno@...`) is first copied next to the kernelspec
 * (`<data dir>/kernels/deno/deno`), so the kernel keeps starting after the
 * cache is cleared; a registered binary that is gone is registered again. A
 * working kernelspec that a user installed elsewhere is left alone.
 */
export async function ensureDenoKernel(
  jupyter: string,
  options: KernelOptions = {},
): Promise<string> {
  const dataDir = options.dataDir ??
    ((await run(jupyter, ["--data-dir"])).out.trim().split("\n").at(-1) ||
      `${Deno.env.get("HOME")}/.local/share/jupyter`);
  const deno = options.deno ?? Deno.execPath();
  const specDir = `${dataDir}/kernels/deno`;
  const specPath = `${specDir}/kernel.json`;
  let registered: string | undefined;
  try {
    registered = JSON.parse(await Deno.readTextFile(specPath))?.argv?.[0];
  } catch { /* missing or unreadable: register below */ }
  // The copy made next to the kernelspec lasts, wherever Jupyter's data dir is.
  const lasting = (path: string) =>
    path === `${specDir}/deno` || !isEphemeralPath(path);
  if (
    registered && lasting(registered) &&
    (await run(registered, ["--version"])).ok
  ) {
    return specPath;
  }
  const exe = isEphemeralPath(deno) ? `${specDir}/deno` : deno;
  const spec = {
    argv: [exe, "jupyter", "--kernel", "--conn", "{connection_file}"],
    display_name: "Deno",
    language: "typescript",
  };
  // Written by a child process: the tasks may write only under build/.
  const python = (await pythonOf(jupyter)) ?? "python3";
  const r = await run(python, [
    "-c",
    REGISTER_KERNEL,
    specDir,
    JSON.stringify(spec, null, 2) + "\n",
    deno,
    exe,
  ]);
  if (!r.ok || !(await run(exe, ["--version"])).ok) {
    throw new Error(`setup: could not register the Deno kernel:\n${r.out}`);
  }
  log.line(
    `setup: registered the Deno Jupyter kernel (${exe}${
      exe === deno ? "" : `, a lasting copy of ${deno}`
    })`,
  );
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
    await aptInstall(
      ["dataset-fashion-mnist"],
      "the full Fashion-MNIST for real results; without it a committed subset is used",
    )
  ) {
    if (await present(FASHION_DIRS[1])) return FASHION_DIRS[1];
  }
  log.line(
    "setup: full Fashion-MNIST not found; notebooks use the committed subset in " +
      "data/fashion-mnist-subset/ (install it with: apt-get install dataset-fashion-mnist, " +
      "or copy the four .gz files into data/fashion-mnist/)",
  );
  return "data/fashion-mnist-subset/";
}

/** An optional system library that makes training faster. */
interface FastLibrary {
  /** What it is called in messages. */
  name: string;
  /** The file ldconfig lists when it is installed. */
  soname: string;
  /** Debian's package. */
  apt: string;
  /** What it runs, for the install message. */
  gain: string;
  /** What runs without it. */
  without: string;
}

/**
 * Makes `lib` available when it can (Debian's package, as root). Without it
 * everything works, slower; this says so. Returns whether it is there.
 */
async function ensureFastLibrary(lib: FastLibrary): Promise<boolean> {
  const present = async () =>
    (await run("sh", ["-c", "ldconfig -p 2>/dev/null || /sbin/ldconfig -p"]))
      .out.includes(lib.soname);
  if (Deno.build.os !== "linux" || await present()) return true;
  if (
    isRoot() && await which("apt-get") &&
    await aptInstall([lib.apt], lib.gain) &&
    await present()
  ) {
    return true;
  }
  log.line(
    `setup: ${lib.name} not found; ${lib.without} (install it with: ` +
      `apt-get install ${lib.apt})`,
  );
  return false;
}

/**
 * OpenBLAS runs the matMuls (packages/tfjs-fast/kernels/blas_kernels.ts);
 * without it, wasm's own matMul, 2-3x slower to train.
 */
export const ensureOpenBlas = (): Promise<boolean> =>
  ensureFastLibrary({
    name: "OpenBLAS",
    soname: "libopenblas.so.0",
    apt: "libopenblas0",
    gain: "OpenBLAS runs the matMuls, training is 2-3x faster",
    without: "training runs on wasm's own matMul, 2-3x slower",
  });

/**
 * oneDNN runs the convolutions (packages/tfjs-fast/kernels/dnnl.ts);
 * without it, im2col + matMul, about 1.5-2x slower per convolution.
 */
export const ensureOneDnn = (): Promise<boolean> =>
  ensureFastLibrary({
    name: "oneDNN",
    soname: "libdnnl.so.2",
    apt: "libdnnl2",
    gain: "oneDNN runs the convolutions, 1.5-2x faster",
    without: "convolutions run as im2col + matMul, 1.5-2x slower",
  });

/**
 * A headless browser for the tests that look at rendered pages: Debian's
 * `chromium` (installed as root when missing, with a font for the charts'
 * text). Returns its path; throws with the command to run when there is none.
 */
export async function ensureChromium(): Promise<string> {
  const find = async () =>
    await which("chromium") ?? await which("chromium-browser");
  const found = await find();
  if (found) return found;
  if (
    isRoot() && await which("apt-get") &&
    await aptInstall(
      ["chromium", "fonts-dejavu-core"],
      "the tests look at the rendered pages in a headless browser",
    )
  ) {
    const after = await find();
    if (after) return after;
  }
  throw new Error(
    "setup: no Chromium for the browser tests; install it with: " +
      "sudo apt-get install -y --no-install-recommends chromium fonts-dejavu-core",
  );
}

/**
 * Fetches the npm packages of deno.json (tfjs, Observable Plot, linkedom)
 * into node_modules/ once, quietly, so that the kernel's first cell does not
 * download them (and a registry that cannot be reached is reported here,
 * not as a kernel error).
 */
export async function ensureNpmPackages(): Promise<boolean> {
  const root = new URL("../", import.meta.url).pathname;
  try {
    await Deno.stat(`${root}node_modules/@tensorflow/tfjs/package.json`);
    return true;
  } catch { /* not yet: install below */ }
  return await quietStep(
    "fetching the npm packages (tfjs, Observable Plot, linkedom) into node_modules/",
    "the notebooks import them; once",
    [[Deno.execPath(), ["install", "--quiet", `--config=${root}deno.json`]]],
  );
}

/** Full set-up for the notebook tasks. Fast (a few probes) when everything is there. */
export async function setup(): Promise<JupyterSetup> {
  const found = await ensureJupyter();
  await ensureDenoKernel(found.jupyter);
  await ensureNpmPackages();
  await ensureFashionMNIST();
  await ensureOpenBlas();
  await ensureOneDnn();
  return found;
}

if (import.meta.main) {
  const s = await setup();
  console.log(`setup: ok (jupyter: ${s.jupyter}, python: ${s.python})`);
}
