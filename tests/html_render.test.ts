/**
 * The HTML renderings (build/html, the handouts' html/, the site) show every
 * chart: checked in headless Chromium against the figures of the notebook.
 * nbconvert 6's clean_html drops every SVG element of an image/svg+xml
 * output, so a stock rendering shows blank charts; the negative controls
 * make sure the checks catch exactly that.
 */
import { assert, assertEquals } from "./assert.ts";
import {
  expectedFigures,
  figureProblems,
  figuresOnPage,
  withBrowser,
} from "./browser.ts";
import { makeTestDir } from "./temp.ts";
import { renderHtml } from "../tasks/render.ts";
import { ensureJupyter } from "../tasks/setup.ts";

const root = new URL("../", import.meta.url).pathname;
const fixture = `${root}tests/fixtures/render/figures.ipynb`;

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
