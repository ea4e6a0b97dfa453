/**
 * `deno task site`: the course as a static web site in build/site/, working
 * offline from file://: an index with the course table and a card per
 * notebook (its first figure as a thumbnail), and each executed notebook as
 * a page with its charts and its math (KaTeX, copied into the site; no
 * script comes from the network).
 *
 * The pages are made from the executed notebooks in build/notebooks/;
 * notebooks that are missing there or older than their master are run
 * first (with --quick if given).
 *
 * usage: deno task site [--quick] [--no-run] [--out=DIR] [NAME...]
 *   --no-run: use the executed notebooks as they are (missing ones get a
 *   card saying so). Tests also pass --dir=, --executed= and --readme=.
 *
 * @module
 */
import katex from "katex";
import { type Cell, cellSource, listIpynb, readNotebook } from "./ipynb.ts";
import { renderHtml } from "./render.ts";
import { setup } from "./setup.ts";

const root = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

/** Options of `buildSite`. */
export interface SiteOptions {
  /** The master notebooks (default notebooks/). */
  mastersDir?: string;
  /** The executed notebooks (default build/notebooks/). */
  executedDir?: string;
  /** Where the site goes (default build/site/); it is regenerated. */
  outDir?: string;
  /** The README whose "The course" table describes the notebooks. */
  readme?: string;
  /** Only these notebooks (prefix or substring, like `deno task notebooks`). */
  names?: string[];
  /** A Python that can import nbconvert (default: from setup()). */
  python?: string;
  /** Where messages go. */
  log?: (line: string) => void;
}

/** One card of the index. */
export interface SiteCard {
  file: string;
  title: string;
  description: string;
  /** The page, relative to the site (null when the notebook was not executed). */
  page: string | null;
  /** The thumbnail, relative to the site (null when the notebook has no figure). */
  thumbnail: string | null;
}

/** What `buildSite` made and what went wrong. */
export interface SiteResult {
  index: string;
  cards: SiteCard[];
  problems: string[];
}

function escapeHTML(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** Inline markdown of the README (`code`, [links](url)) as HTML; math stays for KaTeX. */
function inlineMarkdown(s: string): string {
  return s.split("`").map((part, i) =>
    i % 2 ? `<code>${escapeHTML(part)}</code>` : escapeHTML(part).replace(
      /\[([^\]]+)\]\(([^)\s]+)\)/g,
      (_m, text, url) => `<a href="${url}">${text}</a>`,
    ).replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
  ).join("");
}

/** The README's course table: notebook name (without .ipynb) -> what it teaches. */
export function courseTable(readme: string): Map<string, string> {
  const table = new Map<string, string>();
  const section = readme.split(/^## /m).find((s) => s.startsWith("The course"));
  for (const line of (section ?? "").split("\n")) {
    const m = line.match(/^\|\s*`([^`]+)`\s*\|\s*(.*?)\s*\|\s*$/);
    if (m) table.set(m[1], m[2]);
  }
  return table;
}

/** The text of the notebook's first markdown heading, or its file name. */
function titleOf(cells: Cell[], file: string): string {
  for (const cell of cells) {
    if (cell.cell_type !== "markdown") continue;
    const m = cellSource(cell).match(/^#+\s+(.+)$/m);
    if (m) return m[1].trim();
  }
  return file.replace(/\.ipynb$/, "");
}

/** The first figure output of an executed notebook: [extension, bytes]. */
function firstFigure(cells: Cell[]): [string, Uint8Array] | null {
  for (const cell of cells) {
    for (
      const out of (cell.outputs ?? []) as { data?: Record<string, unknown> }[]
    ) {
      const data = out.data ?? {};
      const text = (v: unknown) => Array.isArray(v) ? v.join("") : String(v);
      if (data["image/svg+xml"]) {
        return ["svg", new TextEncoder().encode(text(data["image/svg+xml"]))];
      }
      if (data["image/png"]) {
        const b64 = text(data["image/png"]).replace(/\s/g, "");
        return ["png", Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))];
      }
    }
  }
  return null;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

const SITE_CSS = `
body { margin: 0; }
.course-nav { font: 14px system-ui, sans-serif; padding: 8px 16px;
  border-bottom: 1px solid #ddd; background: #fafafa; }
.course-nav a { color: #1a5fb4; text-decoration: none; }
.course-figure svg { max-width: 100%; height: auto; }
`;

const INDEX_CSS = `
body { font: 16px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 0 auto;
  padding: 24px; color: #222; }
h1 { margin-bottom: 0.2em; }
table { border-collapse: collapse; margin: 1em 0 2em; }
td, th { border-bottom: 1px solid #ddd; padding: 6px 10px; text-align: left;
  vertical-align: top; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr));
  gap: 20px; }
.card { border: 1px solid #ddd; border-radius: 8px; overflow: hidden;
  display: flex; flex-direction: column; }
.card a.thumb { display: block; background: #fff; height: 190px;
  border-bottom: 1px solid #eee; }
.card img { width: 100%; height: 100%; object-fit: contain; }
.card .body { padding: 10px 14px; }
.card h2 { font-size: 17px; margin: 0 0 6px; }
.card h2 a { color: #1a5fb4; text-decoration: none; }
.card p { font-size: 14px; margin: 0; color: #444; }
.missing { color: #a00; font-size: 13px; }
`;

/** Renders the math of the page with the site's KaTeX copy (auto-render). */
const MATH_JS = `
document.addEventListener("DOMContentLoaded", () => {
  if (typeof renderMathInElement !== "function") return;
  renderMathInElement(document.body, {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "\\\\[", right: "\\\\]", display: true },
      { left: "$", right: "$", display: false },
      { left: "\\\\(", right: "\\\\)", display: false },
    ],
    // Outputs hold code and SVG text, never math to typeset.
    ignoredClasses: ["jp-OutputArea-output"],
    throwOnError: false,
  });
});
`;

/** Copies KaTeX (CSS, scripts, woff2 fonts) into `<assets>/katex`. */
async function copyKatex(assets: string): Promise<void> {
  const css = new URL(import.meta.resolve("katex/dist/katex.min.css"))
    .pathname;
  const dist = css.slice(0, css.lastIndexOf("/"));
  await Deno.mkdir(`${assets}/katex/fonts`, { recursive: true });
  await Deno.mkdir(`${assets}/katex/contrib`, { recursive: true });
  for (
    const f of ["katex.min.css", "katex.min.js", "contrib/auto-render.min.js"]
  ) {
    await Deno.copyFile(`${dist}/${f}`, `${assets}/katex/${f}`);
  }
  for await (const e of Deno.readDir(`${dist}/fonts`)) {
    if (e.name.endsWith(".woff2")) {
      await Deno.copyFile(
        `${dist}/fonts/${e.name}`,
        `${assets}/katex/fonts/${e.name}`,
      );
    }
  }
}

const NAV =
  '<nav class="course-nav"><a href="index.html">← Course index</a></nav>';

/** Builds the site (see the module doc) from executed notebooks that already exist. */
export async function buildSite(
  options: SiteOptions = {},
): Promise<SiteResult> {
  const mastersDir = options.mastersDir ?? `${root}/notebooks`;
  const executedDir = options.executedDir ?? `${root}/build/notebooks`;
  const outDir = options.outDir ?? `${root}/build/site`;
  const log = options.log ?? console.log;
  const python = options.python ?? (await setup()).python;
  const readme = await Deno.readTextFile(options.readme ?? `${root}/README.md`);
  const table = courseTable(readme);
  const courseTitle = readme.match(/^#\s+(.+)$/m)?.[1] ?? "The course";
  const intro = readme.split(/\n\n/).slice(1).find((p) => !p.startsWith("#")) ??
    "";
  await Deno.remove(outDir, { recursive: true }).catch(() => {});
  const assets = `${outDir}/assets`;
  await Deno.mkdir(`${assets}/thumbs`, { recursive: true });
  await copyKatex(assets);
  await Deno.writeTextFile(`${assets}/math.js`, MATH_JS);
  await Deno.writeTextFile(`${assets}/site.css`, SITE_CSS);
  const cards: SiteCard[] = [];
  const problems: string[] = [];
  for (const file of await listIpynb(mastersDir, options.names ?? [])) {
    const stem = file.replace(/\.ipynb$/, "");
    const master = await readNotebook(`${mastersDir}/${file}`);
    const card: SiteCard = {
      file,
      title: titleOf(master.cells, file),
      description: table.get(stem) ?? "",
      page: null,
      thumbnail: null,
    };
    cards.push(card);
    const executed = `${executedDir}/${file}`;
    if (!(await exists(executed))) {
      problems.push(
        `${file}: not executed (run deno task notebooks ${stem.slice(0, 2)})`,
      );
      continue;
    }
    const nb = await readNotebook(executed);
    const page = `${stem}.html`;
    const report = await renderHtml(python, executed, `${outDir}/${page}`, {
      title: card.title,
      offline: "assets",
    });
    if (!report.ok) {
      problems.push(`${file}: ${report.problems.join("; ")}`);
      continue;
    }
    const html = await Deno.readTextFile(`${outDir}/${page}`);
    await Deno.writeTextFile(
      `${outDir}/${page}`,
      html.replace(/<body[^>]*>/, (tag) => `${tag}\n${NAV}`),
    );
    card.page = page;
    const figure = firstFigure(nb.cells);
    if (figure) {
      card.thumbnail = `assets/thumbs/${stem}.${figure[0]}`;
      await Deno.writeFile(`${outDir}/${card.thumbnail}`, figure[1]);
    }
    log(`site: ${page} (${report.figures} figure(s))`);
  }
  const index = `${outDir}/index.html`;
  await Deno.writeTextFile(index, indexPage(courseTitle, intro, cards));
  log(
    `site: ${index} (${
      cards.filter((c) => c.page).length
    } of ${cards.length} notebook pages)`,
  );
  return { index, cards, problems };
}

function indexPage(title: string, intro: string, cards: SiteCard[]): string {
  const link = (c: SiteCard, text: string) =>
    c.page ? `<a href="${escapeHTML(c.page)}">${text}</a>` : text;
  const rows = cards.map((c) =>
    `<tr><td>${
      link(c, `<code>${escapeHTML(c.file.replace(/\.ipynb$/, ""))}</code>`)
    }</td>` +
    `<td>${inlineMarkdown(c.description)}</td></tr>`
  ).join("\n");
  const cardHtml = cards.map((c) =>
    `<div class="card">` +
    (c.thumbnail
      ? link(
        c,
        `<img src="${escapeHTML(c.thumbnail)}" alt="${
          escapeHTML(`first figure of ${c.title}`)
        }">`,
      )
        .replace("<a ", '<a class="thumb" ')
      : "") +
    `<div class="body"><h2>${link(c, escapeHTML(c.title))}</h2>` +
    `<p>${inlineMarkdown(c.description)}</p>` +
    (c.page ? "" : `<p class="missing">not executed yet</p>`) +
    `</div></div>`
  ).join("\n");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHTML(title)}</title>
<link rel="stylesheet" href="assets/katex/katex.min.css">
<style>${INDEX_CSS}</style>
<script defer src="assets/katex/katex.min.js"></script>
<script defer src="assets/katex/contrib/auto-render.min.js"></script>
<script defer src="assets/math.js"></script>
</head>
<body>
<h1>${inlineMarkdown(title)}</h1>
<p>${inlineMarkdown(intro.replace(/\s*\n\s*/g, " "))}</p>
<table>
<thead><tr><th>notebook</th><th>what it teaches</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
<div class="cards">
${cardHtml}
</div>
</body>
</html>
`;
}

/** Executed copies that are missing or older than their master. */
async function stale(mastersDir: string, executedDir: string, files: string[]) {
  const out: string[] = [];
  for (const f of files) {
    try {
      const m = (await Deno.stat(`${mastersDir}/${f}`)).mtime!;
      const e = (await Deno.stat(`${executedDir}/${f}`)).mtime!;
      if (e < m) out.push(f);
    } catch {
      out.push(f);
    }
  }
  return out;
}

async function main() {
  const args = Deno.args;
  const value = (name: string) =>
    args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const names = args.filter((a) => !a.startsWith("-"));
  const mastersDir = value("dir") ?? `${root}/notebooks`;
  const executedDir = value("executed") ?? `${root}/build/notebooks`;
  const known = ["--quick", "--full", "--no-run"];
  const bad = args.find((a) =>
    a.startsWith("-") && !known.includes(a) &&
    !["--dir=", "--executed=", "--out=", "--readme="].some((p) =>
      a.startsWith(p)
    )
  );
  if (bad) throw new Error(`unknown option ${bad}`);
  if (!args.includes("--no-run")) {
    const todo = await stale(
      mastersDir,
      executedDir,
      await listIpynb(mastersDir, names),
    );
    if (todo.length) {
      console.log(
        `site: running ${todo.length} notebook(s) first: ${todo.join(" ")}`,
      );
      const run = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-write=build",
          "--allow-env",
          "--allow-run",
          "--allow-sys",
          `${root}/tasks/notebooks.ts`,
          "--no-html",
          ...(args.includes("--quick") ? ["--quick"] : []),
          `--dir=${mastersDir}`,
          ...todo,
        ],
        stdout: "inherit",
        stderr: "inherit",
      }).output();
      if (!run.success) {
        console.log("site: some notebooks failed; their pages show where");
      }
    }
  }
  const result = await buildSite({
    mastersDir,
    executedDir,
    outDir: value("out"),
    readme: value("readme"),
    names,
  });
  for (const p of result.problems) console.log(`  ${p}`);
  console.log(`open file://${result.index}`);
  if (result.problems.length) Deno.exit(1);
}

// KaTeX is imported so that Deno fetches it; its files are copied, not run.
void katex;

if (import.meta.main) await main();
