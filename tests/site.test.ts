/**
 * The course site (tasks/site.ts) in headless Chromium, offline from
 * file://: the index loads with the course table and a card per notebook,
 * every card's thumbnail shows, and every card links to a page whose charts
 * have their marks and whose math is typeset, with no request leaving the
 * machine.
 */
import { assert, assertEquals } from "./assert.ts";
import {
  expectedFigures,
  figureProblems,
  figuresOnPage,
  type Page,
  withBrowser,
} from "./browser.ts";
import { makeTestDir } from "./temp.ts";
import { buildSite, courseTable } from "../tasks/site.ts";
import { ensureJupyter } from "../tasks/setup.ts";

const root = new URL("../", import.meta.url).pathname;
const fixture = `${root}tests/fixtures/render/figures.ipynb`;

const README = `# A test course

A course about **figures**, see [the docs](docs/x.md).

## The course

| notebook     | what it teaches                      |
| ------------ | ------------------------------------ |
| \`01_figs\`  | charts, $z \\sim U(1..K)$ and a grid |
| \`02_more\`  | the same again                       |

## Other
`;

/** Opens `url` and lets the deferred scripts (KaTeX) finish. */
async function open(page: Page, url: string) {
  await page.goto(url, { waitUntil: "load" });
  await new Promise((r) => setTimeout(r, 300));
}

Deno.test("courseTable reads the README's table", () => {
  const t = courseTable(README);
  assertEquals([...t.keys()], ["01_figs", "02_more"]);
  assertEquals(t.get("01_figs"), "charts, $z \\sim U(1..K)$ and a grid");
});

Deno.test({
  name:
    "the site works offline: index, cards with thumbnails, and pages whose charts have marks and whose math is typeset",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { python } = await ensureJupyter();
    const dir = await makeTestDir("site-");
    try {
      await Deno.mkdir(`${dir}/nb`);
      for (const name of ["01_figs", "02_more"]) {
        await Deno.copyFile(fixture, `${dir}/nb/${name}.ipynb`);
      }
      await Deno.writeTextFile(`${dir}/README.md`, README);
      const result = await buildSite({
        mastersDir: `${dir}/nb`,
        executedDir: `${dir}/nb`,
        outDir: `${dir}/site`,
        readme: `${dir}/README.md`,
        python,
        log: () => {},
      });
      assertEquals(result.problems, []);
      assertEquals(result.cards.map((c) => c.page), [
        "01_figs.html",
        "02_more.html",
      ]);
      const expected = await expectedFigures(fixture);
      await withBrowser(async (browser) => {
        const page = await browser.newPage();
        const remote: string[] = [];
        await page.setRequestInterception(true);
        page.on("request", (r) => {
          const url = r.url();
          if (url.startsWith("file:") || url.startsWith("data:")) r.continue();
          else {
            remote.push(url);
            r.abort();
          }
        });
        await open(page, `file://${result.index}`);
        const index = await page.evaluate<{
          rows: number;
          cards: { href: string; thumb: number }[];
          katex: number;
        }>(`({
          rows: document.querySelectorAll("tbody tr").length,
          cards: [...document.querySelectorAll(".card")].map((c) => ({
            href: c.querySelector("h2 a")?.getAttribute("href") ?? "",
            thumb: c.querySelector("img")?.naturalWidth ?? 0,
          })),
          katex: document.querySelectorAll(".katex").length,
        })`);
        assertEquals(index.rows, 2);
        assertEquals(index.cards.length, 2);
        assert(index.katex > 0, "the table's math is not typeset");
        for (const card of index.cards) {
          assert(card.thumb > 0, `the thumbnail of ${card.href} did not load`);
          await open(page, new URL(card.href, `file://${result.index}`).href);
          const figures = await figuresOnPage(page);
          assertEquals(figureProblems(expected, figures), [], card.href);
          const math = await page.evaluate<number>(
            `document.querySelectorAll(".jp-MarkdownOutput .katex, .jp-RenderedMarkdown .katex").length`,
          );
          assert(math >= 2, `${card.href}: math not typeset (${math})`);
          const back = await page.evaluate<string>(
            `document.querySelector(".course-nav a")?.getAttribute("href") ?? ""`,
          );
          assertEquals(back, "index.html");
        }
        assertEquals(remote, [], "the site asked the network for something");
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
