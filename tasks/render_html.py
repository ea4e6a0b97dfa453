"""Render an executed notebook to HTML with every chart intact, and check it.

Called by tasks/render.ts (for the notebooks runner, the handouts and the
site). nbconvert renders image/svg+xml outputs through its clean_html filter
whatever sanitize_html says, and in nbconvert 6.x that filter (lxml's Cleaner)
drops every SVG element: the charts came out blank. Here each SVG output is
handed to nbconvert as a text/html output holding the same SVG markup (text/html
comes first in every nbconvert's display priority and is not sanitized unless
asked), so the chart is inlined as the notebook front end shows it, whatever
nbconvert version is installed.

After rendering, the HTML is checked: each figure of the notebook (SVG or PNG)
must be in it unchanged. A figure that is lost or altered is a failure, not a
warning (exit status 2), so a blank rendering never passes as "ok".

With --offline ASSETS (a path relative to the HTML file) the page loads no
script from the network: KaTeX from ASSETS/katex renders the math instead of
MathJax from a CDN (used by the course site, which must work from file://).

Prints one JSON line: {"ok", "figures", "problems"}.

usage: render_html.py INPUT.ipynb OUTPUT.html [--title TITLE] [--offline ASSETS]
       render_html.py INPUT.ipynb OUTPUT.html --check   (check an existing rendering)
"""
import argparse
import copy
import json
import os
import re
import sys

import xml.etree.ElementTree as ElementTree

import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
SVG = "image/svg+xml"
PNG = "image/png"


def text_of(value):
    return "".join(value) if isinstance(value, list) else value


def namespace_ids(svg, prefix):
    """Prefix the ids of one SVG (and the references to them) so that two
    figures inlined on one page cannot clash (gradients, clip paths)."""
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    if not ids:
        return svg
    pattern = re.compile(
        r'(\bid="|url\(#|href="#)(' + "|".join(re.escape(i) for i in ids) + r')(?=["\)])'
    )
    return pattern.sub(lambda m: m.group(1) + prefix + m.group(2), svg)


def figure_outputs(nb):
    """(cell index, output) for every output that shows a figure."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") in ("display_data", "execute_result"):
                data = out.get("data", {})
                if "text/html" not in data and (SVG in data or PNG in data):
                    yield index, out


def inline_svgs(nb):
    """Turns each SVG output into a text/html output with the same markup.
    Returns the list of expected figures: (cell, kind, markup to find)."""
    expected = []
    for k, (index, out) in enumerate(figure_outputs(nb)):
        data = out["data"]
        if SVG in data:
            svg = namespace_ids(text_of(data[SVG]).strip(), f"f{k}-")
            html = f'<div class="course-figure" data-figure="{k}">{svg}</div>'
            data["text/html"] = html
            expected.append((index, "SVG", html))
        else:
            b64 = re.sub(r"\s", "", text_of(data[PNG]))
            expected.append((index, "PNG", b64[:200]))
    return expected


def check(html, expected):
    """What is wrong with the rendering: lost or altered figures, and SVGs
    that are not well-formed XML (inlined, an unclosed element would swallow
    the rest of the page)."""
    problems = []
    page = re.sub(r"\s", "", html)
    for k, (cell, kind, needle) in enumerate(expected):
        found = needle in html if kind == "SVG" else needle in page
        if not found:
            problems.append(f"figure {k + 1} ({kind}, cell {cell}) is missing or altered")
            continue
        if kind == "SVG":
            svg = needle[needle.index(">") + 1 : -len("</div>")]
            try:
                ElementTree.fromstring(svg)
            except ElementTree.ParseError as err:
                problems.append(f"figure {k + 1} (cell {cell}) is not well-formed SVG: {err}")
    lost = sum("missing" in p for p in problems)
    if lost:
        problems.insert(0, f"the HTML lost {lost} of {len(expected)} figure(s)")
    return problems


def render(nb, title, offline):
    from nbconvert import HTMLExporter  # slow to import; --check does not need it

    if offline:
        exporter = HTMLExporter(
            template_name="course_offline",
            extra_template_basedirs=[os.path.join(HERE, "templates")],
        )
    else:
        exporter = HTMLExporter()
    resources = {"metadata": {"name": title}, "course_assets": offline or ""}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--title")
    parser.add_argument("--offline")
    parser.add_argument("--check", action="store_true",
                        help="only check an existing OUTPUT.html against INPUT's figures")
    args = parser.parse_args()
    nb = nbformat.read(args.input, as_version=4)
    shown = copy.deepcopy(nb)
    expected = inline_svgs(shown)
    if args.check:
        with open(args.output, encoding="utf-8") as f:
            problems = check(f.read(), expected)
        print(json.dumps({"ok": not problems, "figures": len(expected), "problems": problems}))
        return 0 if not problems else 2
    title = args.title or os.path.splitext(os.path.basename(args.input))[0]
    html = render(shown, title, args.offline)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(html)
    problems = check(html, expected)
    print(json.dumps({"ok": not problems, "figures": len(expected), "problems": problems}))
    return 0 if not problems else 2


if __name__ == "__main__":
    sys.exit(main())
