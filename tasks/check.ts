/**
 * `deno task check`: formatting, lint, type-checking of lib/, tests/, tasks/,
 * packages/ and of the code cells inside notebooks (which `deno check` cannot read
 * directly: they are extracted into build/check/), and a check that no
 * committed notebook carries outputs.
 *
 * @module
 */
import { cellSource, readNotebook } from "./ipynb.ts";
import { listNotebooks } from "./notebooks.ts";

const root = new URL("../", import.meta.url).pathname;

async function step(name: string, cmd: string[]): Promise<boolean> {
  const out = await new Deno.Command(Deno.execPath(), { args: cmd, cwd: root })
    .output();
  const ok = out.success;
  console.log(`${ok ? "ok    " : "FAILED"} ${name}`);
  if (!ok) {
    const text = new TextDecoder().decode(out.stdout) +
      new TextDecoder().decode(out.stderr);
    console.log(text.trim().split("\n").slice(0, 60).join("\n"));
  }
  return ok;
}

/** Problems with committed notebooks: outputs, execution counts, wrong kernel. */
export async function notebookProblems(files: string[]): Promise<string[]> {
  const problems: string[] = [];
  for (const file of files) {
    const nb = await readNotebook(`${root}notebooks/${file}`);
    const kernel = (nb.metadata?.kernelspec as { name?: string } | undefined)
      ?.name;
    if (kernel !== "deno") {
      problems.push(`${file}: kernelspec name is ${kernel}, expected "deno"`);
    }
    nb.cells.forEach((c, i) => {
      if (c.cell_type !== "code") return;
      if ((c.outputs?.length ?? 0) > 0) {
        problems.push(`${file}: cell ${i} has outputs`);
      }
      if (c.execution_count) {
        problems.push(`${file}: cell ${i} has an execution count`);
      }
    });
  }
  return problems;
}

/** Writes each notebook's code cells, in order, as one TypeScript module under build/check/. */
async function extractNotebookCode(files: string[]): Promise<string[]> {
  const dir = `${root}build/check`;
  await Deno.mkdir(dir, { recursive: true });
  const paths: string[] = [];
  for (const file of files) {
    const nb = await readNotebook(`${root}notebooks/${file}`);
    const code = nb.cells
      .map((c, i) =>
        c.cell_type === "code" ? `// --- cell ${i}\n${cellSource(c)}\n` : ""
      )
      .join("")
      // Notebooks import ../lib/...; from build/check/ that is ../../lib/...
      .replaceAll(`"../lib/`, `"../../lib/`)
      .replaceAll(`"../data/`, `"../../data/`);
    const path = `${dir}/${file.replace(/\.ipynb$/, ".ts")}`;
    await Deno.writeTextFile(
      path,
      `// Extracted from notebooks/${file}\n${code}\nexport {};\n`,
    );
    paths.push(path);
  }
  return paths;
}

/**
 * The notebooks whose text `deno fmt` would change. Deno 2.9.6's `deno fmt
 * --check` calls every notebook it has not itself written "not formatted",
 * even when formatting gives the same bytes (a fresh clone fails it, and
 * passes once `deno fmt` has rewritten the same text), so each notebook is
 * formatted through standard input and compared byte for byte.
 */
export async function unformattedNotebooks(files: string[]): Promise<string[]> {
  const unformatted: string[] = [];
  for (const file of files) {
    const text = await Deno.readFile(`${root}notebooks/${file}`);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["fmt", "--ext=ipynb", "-"],
      cwd: root,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(text);
    await writer.close();
    const out = await child.output();
    const formatted = out.stdout;
    if (
      !out.success || formatted.length !== text.length ||
      formatted.some((byte, i) => byte !== text[i])
    ) unformatted.push(file);
  }
  return unformatted;
}

if (import.meta.main) {
  const files = await listNotebooks();
  const config = JSON.parse(await Deno.readTextFile(`${root}deno.json`));
  const excluded = [...(config.fmt?.exclude ?? []), "notebooks/"];
  const fmtResult = await step("deno fmt --check (all but notebooks)", [
    "fmt",
    "--check",
    `--ignore=${excluded.join(",")}`,
  ]);
  const unformatted = await unformattedNotebooks(files);
  console.log(
    `${
      unformatted.length ? "FAILED" : "ok    "
    } notebooks formatted (${files.length}, deno fmt through standard input)`,
  );
  for (const file of unformatted) console.log(`  ${file}: run deno fmt`);
  const results = [
    fmtResult,
    unformatted.length === 0,
    await step("deno lint", ["lint"]),
    await step("deno check lib tests tasks packages", [
      "check",
      "lib/",
      "tests/",
      "tasks/",
      "packages/",
    ]),
  ];
  const extracted = await extractNotebookCode(files);
  results.push(
    extracted.length === 0 ||
      await step(`type-check notebook code cells (${extracted.length})`, [
        "check",
        ...extracted,
      ]),
  );
  const problems = await notebookProblems(files);
  console.log(
    `${
      problems.length ? "FAILED" : "ok    "
    } notebooks committed without outputs`,
  );
  for (const p of problems) console.log(`  ${p}`);
  results.push(problems.length === 0);
  if (results.includes(false)) Deno.exit(1);
}
