/**
 * Headless Chromium for the tests that look at rendered pages (HTML of the
 * notebooks, the course site): Debian's `chromium` (tasks/setup.ts installs
 * it when missing) driven by puppeteer-core, with a fresh profile, no
 * network features, and a figure census of a loaded page.
 *
 * @module
 */
import { ensureChromium } from "../tasks/setup.ts";
import { makeTestDir } from "./temp.ts";

// puppeteer-core is loaded by a computed specifier so that its types (and the
// @types/node they pull in, which change node:assert's signatures) stay out
// of the unit suite's type check; these are the few parts used here.
const PUPPETEER = "npm:puppeteer-core@25.19.0";

/** The part of puppeteer's Page the tests use. */
export interface Page {
  goto(url: string, options?: { waitUntil?: string }): Promise<unknown>;
  evaluate<T = unknown>(expression: string): Promise<T>;
  screenshot(options: {
    clip: { x: number; y: number; width: number; height: number };
    encoding: "base64";
    captureBeyondViewport?: boolean;
  }): Promise<string>;
  setRequestInterception(on: boolean): Promise<void>;
  on(
    event: "request",
    fn: (r: { url(): string; continue(): void; abort(): void }) => void,
  ): void;
  /** Messages the page logs: `type()` is "log", "warn", "error", ... */
  on(
    event: "console",
    fn: (
      m: { type(): string; text(): string; location(): { url?: string } },
    ) => void,
  ): void;
  /** Exceptions the page's scripts leave uncaught. */
  on(event: "pageerror", fn: (e: Error) => void): void;
  /** Resolves once `expression` is truthy in the page (polled). */
  waitForFunction(
    expression: string,
    options?: { timeout?: number; polling?: number | "raf" | "mutation" },
  ): Promise<unknown>;
  setViewport(v: { width: number; height: number }): Promise<void>;
  close(): Promise<void>;
}

/** The part of puppeteer's Browser the tests use. */
export interface Browser {
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/** Runs `fn` with a fresh headless Chromium and closes it afterwards. */
export async function withBrowser<T>(
  fn: (browser: Browser) => Promise<T>,
): Promise<T> {
  const executablePath = await ensureChromium();
  const profile = await makeTestDir("chromium-");
  const { default: puppeteer } = await import(PUPPETEER);
  const browser: Browser = await puppeteer.launch({
    executablePath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
    ],
  });
  try {
    return await fn(browser);
  } finally {
    await browser.close();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/** Elements that draw something in an SVG chart. */
export const MARK_SELECTOR =
  "path, circle, rect, line, polyline, polygon, ellipse, image, text, use";

/** How many drawing elements an SVG document has (the same elements as `MARK_SELECTOR`). */
export function countMarks(svg: string): number {
  return (svg.match(
    /<(path|circle|rect|line|polyline|polygon|ellipse|image|text|use)[\s>/]/g,
  ) ?? []).length;
}

/** One figure found on a loaded page. */
export interface PageFigure {
  /** "svg" (an inline chart) or "img" (a raster or SVG image). */
  kind: "svg" | "img";
  /** Drawing elements inside an inline SVG; for an image, 1 when it decoded. */
  marks: number;
  /** The box on the page (CSS pixels). */
  width: number;
  height: number;
  /** Fraction of the figure's box on screen that is not white. */
  ink: number;
}

/**
 * Every figure in the output areas of a loaded nbconvert page (or `selector`):
 * outermost inline `<svg>` elements and `<img>` elements, each with its mark
 * count, its box and the share of non-white pixels in a screenshot of it.
 */
export async function figuresOnPage(
  page: Page,
  selector =
    ".jp-OutputArea-output svg:not(svg svg), .jp-OutputArea-output img",
): Promise<PageFigure[]> {
  // In-page code is a string: the DOM's types are not part of Deno's.
  const found = await page.evaluate<
    (Omit<PageFigure, "ink"> & { x: number; y: number })[]
  >(`[...document.querySelectorAll(${JSON.stringify(selector)})].map((el) => {
    const box = el.getBoundingClientRect();
    const isImg = el.tagName.toLowerCase() === "img";
    return {
      kind: isImg ? "img" : "svg",
      marks: isImg
        ? (el.complete && el.naturalWidth > 0 ? 1 : 0)
        : el.querySelectorAll(${JSON.stringify(MARK_SELECTOR)}).length,
      x: box.left + window.scrollX,
      y: box.top + window.scrollY,
      width: box.width,
      height: box.height,
    };
  })`);
  const figures: PageFigure[] = [];
  for (const { x, y, ...f } of found) {
    const ink = f.width >= 1 && f.height >= 1
      ? await inkFraction(page, { x, y, width: f.width, height: f.height })
      : 0;
    figures.push({ ...f, ink });
  }
  return figures;
}

/** Share of non-white pixels in a screenshot of a box of the page (decoded by the page itself). */
async function inkFraction(
  page: Page,
  clip: { x: number; y: number; width: number; height: number },
): Promise<number> {
  const png = await page.screenshot({
    clip,
    encoding: "base64",
    captureBeyondViewport: true,
  });
  return await page.evaluate<number>(`(async () => {
    const img = new Image();
    img.src = "data:image/png;base64,${png}";
    await img.decode();
    const canvas = new OffscreenCanvas(img.naturalWidth, img.naturalHeight);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let ink = 0;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i] < 230 || px[i + 1] < 230 || px[i + 2] < 230) ink++;
    }
    return ink / (canvas.width * canvas.height);
  })()`);
}

/** A figure of a notebook: what the page must show for it. */
export interface Expected {
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
