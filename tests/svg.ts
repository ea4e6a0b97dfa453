/**
 * Helpers for tests that inspect the SVG of a chart (lib/plot.ts,
 * lib/figures/): count elements, pick out the marks of one kind, check
 * titles and axis labels.
 *
 * @module
 */
import { assert } from "./assert.ts";

/** How many times `re` (a global regular expression) matches in `svg`. */
export const count = (svg: string, re: RegExp): number =>
  (svg.match(re) ?? []).length;

/** The inner markup of the first `<g aria-label="...">` group (the marks of one kind). */
export function markGroup(svg: string, label: string): string {
  const m = svg.match(
    new RegExp(`<g[^>]*aria-label="${label}"[^>]*>([\\s\\S]*?)</g>`),
  );
  assert(m, `no <g aria-label="${label}"> in the SVG`);
  return m[1];
}

/**
 * The markup of every `<g aria-label="...">` group of one mark, joined
 * (facets nest groups, so each runs to the next labelled group).
 */
export function markGroups(svg: string, label: string): string {
  const parts = svg.split(`aria-label="${label}"`).slice(1);
  assert(parts.length > 0, `no <g aria-label="${label}"> in the SVG`);
  return parts.map((p) => p.split("aria-label=")[0]).join("");
}

/**
 * Asserts a standalone SVG with a title element, each of `titles` as a whole
 * `<text>` element (title, subtitle, panel titles) and each axis label
 * somewhere.
 */
export function assertTitled(
  svg: string,
  titles: string[],
  labels: string[] = [],
): void {
  assert(svg.startsWith("<svg"), "not an SVG document");
  assert(svg.includes('class="chart-title"'), "no title element");
  for (const t of titles) {
    assert(svg.includes(`>${t}</text>`), `missing text ${JSON.stringify(t)}`);
  }
  for (const l of labels) {
    assert(svg.includes(l), `missing axis label ${JSON.stringify(l)}`);
  }
}
