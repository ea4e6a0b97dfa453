/**
 * `deno task lab`: opens the notebooks in Jupyter with the Deno kernel
 * (setting it up first if needed) and prints the URL to open.
 *
 * Jupyter works on copies in build/lab/notebooks/, never on the masters in
 * notebooks/: saving a notebook (with its outputs) or a checkpoint there
 * leaves `git status` clean. A copy is made when missing and refreshed when
 * its master changed, unless you edited the copy: then it is kept and the
 * task says how to get the new version. build/lab/lib and build/lab/data
 * link to the repository's, so the notebooks' `../lib/mod.ts` imports work.
 *
 * usage: deno task lab [--port=8888] [--workspace=DIR] [--prepare-only]
 *
 * @module
 */
import { listIpynb } from "./ipynb.ts";
import { setup } from "./setup.ts";

const root = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

/** What `prepareLab` did to each notebook copy. */
export interface LabPreparation {
  /** The folder Jupyter opens (the copies). */
  notebooksDir: string;
  /** Copies made or refreshed from their masters. */
  copied: string[];
  /** Copies kept although their master changed (the copy was edited). */
  kept: string[];
  /** One line per kept copy, saying what to do to get the new master. */
  notes: string[];
}

interface Manifest {
  [file: string]: { master: string; copy: string };
}

async function sha256(path: string): Promise<string | null> {
  try {
    const bytes = await Deno.readFile(path);
    const digest = await crypto.subtle.digest("SHA-256", bytes);
    return Array.from(
      new Uint8Array(digest),
      (b) => b.toString(16).padStart(2, "0"),
    )
      .join("");
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

async function linkTo(target: string, link: string): Promise<void> {
  try {
    if ((await Deno.readLink(link)) === target) return;
  } catch { /* missing: create below */ }
  // `ln`, not Deno.symlink: that needs unscoped --allow-write, and the task
  // may write only under build/.
  const ln = await new Deno.Command("ln", {
    args: ["-sfn", target, link],
    stderr: "piped",
  }).output();
  if (!ln.success) {
    throw new Error(
      `lab: could not link ${link} to ${target}: ${
        new TextDecoder().decode(ln.stderr).trim()
      }`,
    );
  }
}

/**
 * Makes the lab workspace: `<workspace>/notebooks/` holds a copy of each
 * master of `mastersDir`, `<workspace>/lib` and `<workspace>/data` link to
 * the repository's. Copies you edited are never overwritten.
 */
export async function prepareLab(
  mastersDir = `${root}/notebooks`,
  workspace = `${root}/build/lab`,
): Promise<LabPreparation> {
  const notebooksDir = `${workspace}/notebooks`;
  await Deno.mkdir(notebooksDir, { recursive: true });
  await linkTo(`${root}/lib`, `${workspace}/lib`);
  await linkTo(`${root}/data`, `${workspace}/data`);
  const manifestPath = `${workspace}/masters.json`;
  let manifest: Manifest = {};
  try {
    manifest = JSON.parse(await Deno.readTextFile(manifestPath));
  } catch { /* first run */ }
  const result: LabPreparation = {
    notebooksDir,
    copied: [],
    kept: [],
    notes: [],
  };
  for (const file of await listIpynb(mastersDir)) {
    const master = (await sha256(`${mastersDir}/${file}`))!;
    const copyPath = `${notebooksDir}/${file}`;
    const copy = await sha256(copyPath);
    const known = manifest[file];
    if (copy === master) {
      manifest[file] = { master, copy };
      continue;
    }
    if (copy !== null && copy !== known?.copy) {
      // Edited in the lab: the user's work wins over a newer master.
      if (known?.master !== master) {
        result.kept.push(file);
        result.notes.push(
          `lab: notebooks/${file} changed; your copy ${copyPath} has your edits and is kept ` +
            `(delete it and run deno task lab again to get the new version)`,
        );
      }
      continue;
    }
    await Deno.copyFile(`${mastersDir}/${file}`, copyPath);
    manifest[file] = { master, copy: master };
    result.copied.push(file);
  }
  await Deno.writeTextFile(
    manifestPath,
    JSON.stringify(manifest, null, 2) + "\n",
  );
  return result;
}

/**
 * The arguments of `jupyter` that start classic Notebook on 127.0.0.1:`port`
 * over `notebookDir`, without opening a browser (`deno task lab`, and the
 * frontend test with a token of its own).
 */
export function notebookServerArgs(
  port: number,
  notebookDir: string,
): string[] {
  // Jupyter refuses to start as root unless told; containers often run as root.
  const rootArgs = Deno.uid() === 0 ? ["--allow-root"] : [];
  return [
    "notebook",
    ...rootArgs,
    "--no-browser",
    "--ip=127.0.0.1",
    `--port=${port}`,
    `--notebook-dir=${notebookDir}`,
  ];
}

function option(name: string): string | undefined {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a?.slice(name.length + 3);
}

async function main() {
  const portArg = option("port");
  const port = portArg ? Number(portArg) : 8888;
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`--port must be a TCP port number, got ${portArg}`);
  }
  const workspace = option("workspace") ?? `${root}/build/lab`;
  const prep = await prepareLab(`${root}/notebooks`, workspace);
  for (const note of prep.notes) console.log(note);
  if (Deno.args.includes("--prepare-only")) {
    console.log(`lab: notebooks ready in ${prep.notebooksDir}`);
    return;
  }
  const { jupyter } = await setup();
  console.log(
    `Starting Jupyter on port ${port} with copies of the notebooks in ${prep.notebooksDir}\n` +
      `(your edits and outputs stay there; notebooks/ is not touched).\n` +
      `Open the URL it prints below (with its token) and pick the "Deno" kernel if asked.\n` +
      `Stop with Ctrl+C.`,
  );
  const child = new Deno.Command(jupyter, {
    args: notebookServerArgs(port, prep.notebooksDir),
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  // Ctrl+C reaches Jupyter too (same terminal); wait for it to shut down
  // instead of leaving it behind. SIGTERM is passed on.
  Deno.addSignalListener("SIGINT", () => {});
  Deno.addSignalListener("SIGTERM", () => child.kill("SIGTERM"));
  Deno.exit((await child.status).code);
}

if (import.meta.main) await main();
