/**
 * The HTML renderings (build/html, the handouts' html/, the site) show every
 * chart: checked in headless Chromium against the figures of the notebook.
 * nbconvert 6's clean_html drops every SVG element of an image/svg+xml
 * output, so a stock rendering shows blank charts; the negative controls
 * make sure the checks catch exactly that.
 */
import { assert, assertEquals } from "./assert.ts";
import {
  countMarks,
  figuresOnPage,
  type PageFigure,
  withBrowser,
} from "./browser.ts";
import { makeTestDir } from "./temp.ts";
import { renderHtml } from "../tasks/render.ts";
import { ensureJupyter } from "../tasks/setup.ts";

const root = new URL("../", import.meta.url).pathname;
const fixture = `${root}tests/fixtures/render/figures.ipynb`;

interface Expected {
  kind: "svg" | "img";
  marks: number;
}

/** The figures a notebook's outputs hold, in order. */
export async function expectedFigures(path: string): Promise<Expected[]> {
  const nb = JSON.parse(await Deno.readTextFile(path));
  const found: Expected[] = [];
  for (const cell of nb.cells) {
    for (const out of cell.outputs ?? []) {
      const data = out.data ?? {};
      if (data["text/html"]) continue;
      const svg = data["image/svg+xml"];
      if (svg) {
        const text = Array.isArray(svg) ? svg.join("") : svg;
        found.push({ kind: "svg", marks: countMarks(text) });
      } else if (data["image/png"]) found.push({ kind: "img", marks: 1 });
    }
  }
  return found;
}

/** What is wrong with the figures of a page, compared with the notebook's. */
export function figureProblems(
  expected: Expected[],
  onPage: PageFigure[],
): string[] {
  const problems: string[] = [];
  if (onPage.length !== expected.length) {
    problems.push(
      `${expected.length} figure(s) in the notebook, ${onPage.length} on the page`,
    );
  }
  expected.forEach((e, i) => {
    const f = onPage[i];
    if (!f) return;
    if (f.kind !== e.kind || f.marks !== e.marks) {
      problems.push(
        `figure ${
          i + 1
        }: expected ${e.kind} with ${e.marks} marks, the page shows ${f.kind} with ${f.marks}`,
      );
    }
    if (!(f.width >= 4 && f.height >= 4)) {
      problems.push(`figure ${i + 1}: box ${f.width}x${f.height}`);
    }
    if (!(f.ink > 0.005)) {
      problems.push(`figure ${i + 1}: blank on screen (ink ${f.ink})`);
    }
  });
  return problems;
}

async function pageFigures(html: string) {
  return await withBrowser(async (browser) => {
    const page = await browser.newPage();
    // A stock page asks a CDN for MathJax: offline, give up on it quickly.
    await page.setRequestInterception(true);
    page.on("request", (r) => {
      if (r.url().startsWith("file:") || r.url().startsWith("data:")) {
        r.continue();
      } else r.abort();
    });
    await page.goto(`file://${html}`, { waitUntil: "load" });
    const figures = await figuresOnPage(page);
    const ids = await page.evaluate<string[]>(
      `[...document.querySelectorAll(".jp-OutputArea-output [id]")].map((e) => e.id)`,
    );
    await page.close();
    return { figures, ids };
  });
}

Deno.test({
  name:
    "the HTML rendering shows every chart's marks in Chromium; stock nbconvert's does not",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { jupyter, python } = await ensureJupyter();
    const dir = await makeTestDir("render-");
    try {
      const expected = await expectedFigures(fixture);
      assertEquals(expected.length, 5);
      const ours = `${dir}/figures.html`;
      const report = await renderHtml(python, fixture, ours);
      assertEquals(report, { ok: true, figures: 5, problems: [] });
      const seen = await pageFigures(ours);
      assertEquals(figureProblems(expected, seen.figures), []);
      // Two legends with the same gradient id: each keeps its own.
      assertEquals(new Set(seen.ids).size, seen.ids.length, seen.ids.join());

      // Negative control: nbconvert's own rendering of the same notebook.
      const stock = await new Deno.Command(jupyter, {
        args: [
          "nbconvert",
          "--to",
          "html",
          "--output-dir",
          `${dir}/stock`,
          fixture,
        ],
        stdout: "null",
        stderr: "null",
      }).output();
      assert(stock.success);
      const stockHtml = `${dir}/stock/figures.html`;
      const stockSeen = await pageFigures(stockHtml);
      const problems = figureProblems(expected, stockSeen.figures);
      assert(problems.length > 0, "the browser check passed a stock rendering");
      // ... and the renderer's own static check rejects it too.
      const check = await renderHtml(python, fixture, stockHtml, {
        checkOnly: true,
      });
      assert(!check.ok);
      assert(check.problems[0].includes("lost 4 of 5"), check.problems[0]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "renderHtml reports a crash of the renderer instead of throwing",
  fn: async () => {
    const { python } = await ensureJupyter();
    const dir = await makeTestDir("render-");
    try {
      const r = await renderHtml(
        python,
        `${dir}/missing.ipynb`,
        `${dir}/x.html`,
      );
      assert(!r.ok);
      assert(r.problems[0].startsWith("rendering failed:"), r.problems[0]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
