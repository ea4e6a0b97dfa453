/**
 * The course is literate: what a notebook shows is read from lib/ when the
 * cell runs. These tests hold the notebooks and lib/ to that: every shown
 * name exists, no markdown cell carries a hand-copied code block, each
 * notebook shows the mechanisms its text explains, course code stays apart
 * from the reusable library, and the public API stays small.
 */
import { sourceOf } from "../lib/source.ts";
import { assert, assertEquals } from "./assert.ts";

const root = new URL("../", import.meta.url);
const notebookDir = new URL("notebooks/", root);

interface Cell {
  cell_type: string;
  source: string | string[];
}

function notebooks(): { name: string; cells: Cell[] }[] {
  return [...Deno.readDirSync(notebookDir)]
    .filter((e) => e.name.endsWith(".ipynb"))
    .map((e) => e.name)
    .sort()
    .map((name) => ({
      name,
      cells:
        JSON.parse(Deno.readTextFileSync(new URL(name, notebookDir))).cells,
    }));
}

const text = (c: Cell) =>
  Array.isArray(c.source) ? c.source.join("") : c.source;

/** Every `showSource("file", "name")` call of a notebook's code cells. */
function shownNames(cells: Cell[]): { file: string; name: string }[] {
  const calls = cells.filter((c) => c.cell_type === "code").flatMap((c) => [
    ...text(c).matchAll(/showSource\(\s*"([^"]+)",\s*"([^"]+)"/g),
  ]);
  return calls.map((m) => ({ file: m[1], name: m[2] }));
}

Deno.test("every name a notebook shows exists in the library file it names", () => {
  let count = 0;
  for (const nb of notebooks()) {
    for (const { file, name } of shownNames(nb.cells)) {
      try {
        sourceOf(file, name);
      } catch (e) {
        throw new Error(
          `${nb.name}: showSource("${file}", "${name}"): ${
            (e as Error).message
          }`,
        );
      }
      count++;
    }
  }
  assert(count > 0, "no notebook shows any library source");
});

Deno.test("no markdown cell holds a code block: code is shown from lib/ or written in a code cell", () => {
  const problems: string[] = [];
  for (const nb of notebooks()) {
    nb.cells.forEach((c, i) => {
      if (c.cell_type !== "markdown") return;
      if (/^\s*(```|~~~)/m.test(text(c))) {
        problems.push(`${nb.name} cell ${i}: fenced code block`);
      }
      // An indented code block: 4 spaces after a blank line, not inside a list.
      if (/\n\n {4,}\S/.test(text(c)) && !/\n\n\s*[-*\d]/.test(text(c))) {
        problems.push(`${nb.name} cell ${i}: indented code block`);
      }
    });
  }
  assertEquals(problems, []);
});

/** The mechanisms each notebook's text explains, which it must show from lib/ (issue 14). */
const REQUIRED: Record<string, [string, string[]][]> = {
  "00": [["lib/model.ts", ["stepCore", "Trainable"]]],
  "01": [
    ["lib/vq.ts", ["nearestCentroid", "updateCentroids", "kmeansPlusPlus"]],
    ["lib/gmm.ts", ["eStep", "mStep", "drawFromMixture"]],
  ],
  "02": [["lib/vae.ts", [
    "reparameterizedSample",
    "klToStandardNormal",
    "vaeLoss",
    "GaussianVAE.loss",
  ]]],
  "03": [
    ["lib/autodiff.ts", ["sg", "passStraightThrough"]],
    ["lib/vqvae.ts", ["quantize", "emaStep", "restartDeadCodes", "vqvaeLoss"]],
    ["lib/prior.ts", ["maskedConv", "sampleGrids"]],
  ],
  "04": [
    ["lib/gumbel.ts", [
      "gumbelNoise",
      "gumbelArgmax",
      "relaxedOneHot",
      "uniformPriorKL",
      "scoreFunction",
    ]],
    ["lib/dvae.ts", ["DVAE.loss"]],
  ],
  "05": [
    ["lib/gan.ts", [
      "dLoss",
      "satLoss",
      "nonSatLoss",
      "GAN.discriminatorObjective",
      "GAN.generatorObjective",
    ]],
    ["lib/metrics.ts", ["frechet", "knnPrecisionRecall"]],
  ],
  "06": [[
    "lib/ode.ts",
    [
      "eulerStep",
      "midpointStep",
      "rk4Step",
      "dopri5Step",
      "nextStepSize",
      "augmentedDynamics",
      "adjointBackward",
    ],
  ]],
};

Deno.test("each notebook shows the core of every mechanism its text explains, and trains in visible trainStep loops", () => {
  const missing: string[] = [];
  for (const nb of notebooks()) {
    const shown = new Set(
      shownNames(nb.cells).map((s) => `${s.file}:${s.name}`),
    );
    for (const [file, names] of REQUIRED[nb.name.slice(0, 2)] ?? []) {
      for (const name of names) {
        if (!shown.has(`${file}:${name}`)) {
          missing.push(`${nb.name}: ${file} ${name}`);
        }
      }
    }
    const code = nb.cells.filter((c) => c.cell_type === "code").map(text).join(
      "\n",
    );
    if (/^0[02-6]_/.test(nb.name) && !/trainStep\(/.test(code)) {
      missing.push(`${nb.name}: no visible trainStep loop`);
    }
  }
  assertEquals(missing, []);
});

Deno.test("lib/<idea>.ts never imports per-notebook code, and each lib/course/<notebook>/ serves its own notebook", () => {
  const libDir = new URL("lib/", root);
  for (const e of Deno.readDirSync(libDir)) {
    if (!e.isFile || !e.name.endsWith(".ts")) continue;
    const src = Deno.readTextFileSync(new URL(e.name, libDir));
    assert(
      !/from "\.\/course\//.test(src),
      `lib/${e.name} imports from lib/course/`,
    );
  }
  for (const nb of notebooks()) {
    for (const c of nb.cells.filter((c) => c.cell_type === "code")) {
      for (const m of text(c).matchAll(/lib\/course\/([\w]+)\//g)) {
        assertEquals(
          `${m[1]}.ipynb`,
          nb.name,
          `${nb.name} imports another notebook's course code`,
        );
      }
    }
  }
});

Deno.test("lib/mod.ts, the core API, exports at most 120 values", async () => {
  const api = await import("../lib/mod.ts");
  const names = Object.keys(api);
  assert(
    names.length <= 120,
    `lib/mod.ts exports ${names.length} values: ${names.join(", ")}`,
  );
});
