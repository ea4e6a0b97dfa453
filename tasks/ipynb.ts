/**
 * Reading and writing .ipynb files (nbformat 4) for the task scripts.
 *
 * @module
 */

/** One notebook cell (the fields the tasks use). */
export interface Cell {
  cell_type: "code" | "markdown" | "raw";
  id?: string;
  metadata: Record<string, unknown>;
  source: string | string[];
  outputs?: unknown[];
  execution_count?: number | null;
}

/** A notebook (nbformat 4). */
export interface Notebook {
  cells: Cell[];
  metadata: Record<string, unknown>;
  nbformat: number;
  nbformat_minor: number;
}

/** A cell's source as one string. */
export function cellSource(cell: Cell): string {
  return Array.isArray(cell.source) ? cell.source.join("") : cell.source;
}

/** Reads a notebook; the error names the file when it is not valid JSON or not nbformat 4. */
export async function readNotebook(path: string): Promise<Notebook> {
  let nb: Notebook;
  try {
    nb = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(
      `${path}: not a readable notebook (${(e as Error).message})`,
    );
  }
  if (!Array.isArray(nb?.cells) || nb.nbformat !== 4) {
    throw new Error(
      `${path}: expected an nbformat 4 notebook with a cells array`,
    );
  }
  return nb;
}

/** Splits a source string into the list-of-lines form Jupyter writes. */
export function toSourceLines(source: string): string[] {
  const lines = source.split("\n");
  return lines.map((l, i) => (i < lines.length - 1 ? l + "\n" : l)).filter((
    l,
  ) => l !== "");
}

/** Writes a notebook the way Jupyter does (1-space indent, trailing newline). */
export async function writeNotebook(path: string, nb: Notebook): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(nb, null, 1) + "\n");
}

/** The .ipynb files of a folder, sorted, filtered by prefix or substring like `deno task notebooks`. */
export async function listIpynb(
  dir: string,
  names: string[] = [],
): Promise<string[]> {
  const all: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".ipynb")) all.push(e.name);
  }
  all.sort();
  if (names.length === 0) return all;
  const picked = names.map((n) => {
    const hits = all.filter((f) => f.startsWith(n) || f.includes(n));
    if (hits.length === 0) {
      throw new Error(
        `no notebook in ${dir} matches "${n}"; there are: ${all.join(", ")}`,
      );
    }
    return hits;
  });
  return [...new Set(picked.flat())].sort();
}
