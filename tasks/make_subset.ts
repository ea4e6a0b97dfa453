/**
 * Writes the small, real Fashion-MNIST subset committed in
 * `data/fashion-mnist-subset/`: the first 3,000 training and first 1,000 test
 * examples, as gzipped IDX files with the official names, plus a README with
 * provenance and licence. Tests and quick notebook runs use it so they work
 * without the full 30 MB download.
 *
 * Usage:
 *   deno run --allow-read --allow-write=data --allow-env tasks/make_subset.ts [--force]
 *     [--source /usr/share/datasets/fashion-mnist] [--out data/fashion-mnist-subset]
 *     [--train 3000] [--test 1000]
 *
 * Existing subset files are never replaced unless `--force` is given.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { gunzipSync } from "node:zlib";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_SHA256,
  FASHION_MNIST_SYSTEM_DIR,
  parseIDX,
  sha256Hex,
  writeIDX,
} from "../lib/data.ts";

const COMMAND =
  "deno run --allow-read --allow-write=data --allow-env tasks/make_subset.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Reads one official file and checks its decompressed SHA-256, so the subset
 * is provably a slice of the real release and not of some look-alike file.
 */
async function readOfficial(dir: string, file: string): Promise<Uint8Array> {
  const path = join(dir, file);
  const raw = gunzipSync(await Deno.readFile(path));
  const got = await sha256Hex(raw);
  if (got !== FASHION_MNIST_SHA256[file]) {
    throw new Error(
      `make_subset: ${path} has decompressed SHA-256 ${got}, expected the official ` +
        `${FASHION_MNIST_SHA256[file]}`,
    );
  }
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
}

interface Written {
  file: string;
  shape: number[];
  sha: string;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      force: { type: "boolean", default: false },
      source: { type: "string", default: FASHION_MNIST_SYSTEM_DIR },
      out: {
        type: "string",
        default: fileURLToPath(
          new URL("../data/fashion-mnist-subset/", import.meta.url),
        ),
      },
      train: { type: "string", default: "3000" },
      test: { type: "string", default: "1000" },
    },
  });
  const counts: Record<string, number> = {
    train: Number(values.train),
    t10k: Number(values.test),
  };
  for (const [split, n] of Object.entries(counts)) {
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(
        `make_subset: --${
          split === "t10k" ? "test" : "train"
        } must be a positive integer`,
      );
    }
  }
  const outDir = values.out;
  const outputs = ["train", "t10k"].flatMap((p) => [
    `${p}-images-idx3-ubyte.gz`,
    `${p}-labels-idx1-ubyte.gz`,
  ]).concat("README.md");
  if (!values.force) {
    const present = [];
    for (const f of outputs) if (await exists(join(outDir, f))) present.push(f);
    if (present.length > 0) {
      console.error(
        `make_subset: ${outDir} already has ${
          present.join(", ")
        }; refusing to overwrite ` +
          `(pass --force to regenerate).`,
      );
      Deno.exit(1);
    }
  }
  await Deno.mkdir(outDir, { recursive: true });

  const written: Written[] = [];
  const histograms: Record<string, number[]> = {};
  for (const prefix of ["train", "t10k"]) {
    const n = counts[prefix];
    const imgName = `${prefix}-images-idx3-ubyte.gz`;
    const lblName = `${prefix}-labels-idx1-ubyte.gz`;
    const images = parseIDX(await readOfficial(values.source, imgName), {
      name: join(values.source, imgName),
    });
    const labels = parseIDX(await readOfficial(values.source, lblName), {
      name: join(values.source, lblName),
    });
    if (n > images.shape[0]) {
      throw new Error(
        `make_subset: asked for ${n} ${prefix} examples, source has ${
          images.shape[0]
        }`,
      );
    }
    const [, h, w] = images.shape;
    const imgData = images.data.subarray(0, n * h * w);
    const lblData = labels.data.subarray(0, n);
    const hist = new Array(10).fill(0);
    for (const l of lblData) hist[l]++;
    histograms[prefix] = hist;
    for (
      const [file, data, shape] of [
        [imgName, imgData, [n, h, w]],
        [lblName, lblData, [n]],
      ] as const
    ) {
      const bytes = writeIDX(data, [...shape], "uint8", { gzip: true });
      await Deno.writeFile(join(outDir, file), bytes);
      const decompressed = writeIDX(data, [...shape], "uint8");
      written.push({
        file,
        shape: [...shape],
        sha: await sha256Hex(decompressed),
      });
      console.log(
        `wrote ${join(outDir, file)} [${
          shape.join(", ")
        }] ${bytes.length} bytes`,
      );
    }
  }

  const table = FASHION_MNIST_CLASSES.map((name, k) =>
    `| ${k} | ${name} | ${histograms.train[k]} | ${histograms.t10k[k]} |`
  ).join("\n");
  const readme = `# Fashion-MNIST subset

A small slice of the real Fashion-MNIST dataset, committed so that tests and
quick notebook runs work without the full download. \`loadFashionMNIST({ subset: true })\`
in \`lib/data.ts\` reads it, and the loader falls back to it (when \`limit\` fits)
if the full files are not installed.

## Contents

| File | Shape | SHA-256 of the decompressed IDX |
| --- | --- | --- |
${
    written.map((w) =>
      `| \`${w.file}\` | [${w.shape.join(", ")}] | \`${w.sha}\` |`
    ).join("\n")
  }

- \`train-*\`: the first ${counts.train} examples of the official training set (in file order).
- \`t10k-*\`: the first ${counts.t10k} examples of the official test set (in file order).

The files use the official names and format (gzipped IDX, uint8, images
[n, 28, 28], labels [n] with class indices 0..9), so they are byte-for-byte
prefixes of the originals' contents apart from the count in the header.

Examples per class:

| Label | Class | train | t10k |
| --- | --- | --- | --- |
${table}

## Provenance

Generated by \`tasks/make_subset.ts\` from the official files as installed by
Debian's \`dataset-fashion-mnist\` package in \`${values.source}\`
(originally from ${"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"}). The
script checks the decompressed SHA-256 of each source file against the
official release (the sums are in \`FASHION_MNIST_SHA256\` in \`lib/data.ts\`). To regenerate:

\`\`\`sh
sudo apt-get install dataset-fashion-mnist
${COMMAND} --force
\`\`\`

## Licence and citation

Fashion-MNIST is copyright (c) 2017 Zalando SE (Zalando Research) and is
released under the MIT licence (https://github.com/zalandoresearch/fashion-mnist).
If you use it, cite:

> Han Xiao, Kashif Rasul, Roland Vollgraf. *Fashion-MNIST: a Novel Image
> Dataset for Benchmarking Machine Learning Algorithms*. arXiv:1708.07747, 2017.

The licence, which covers these files as copies of the dataset:

\`\`\`text
The MIT License (MIT) Copyright © [2017] Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
\`\`\`
`;
  await Deno.writeTextFile(join(outDir, "README.md"), readme);
  console.log(`wrote ${join(outDir, "README.md")}`);
}

if (import.meta.main) {
  await main();
}
