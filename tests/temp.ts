/**
 * Scratch folders for tests, under build/tmp/ (the test task may write only
 * to data/ and build/).
 *
 * @module
 */

const root = new URL("../build/tmp/", import.meta.url).pathname;

/** A fresh, empty folder under build/tmp/; remove it with `Deno.remove(dir, { recursive: true })`. */
export async function makeTestDir(prefix = "test-"): Promise<string> {
  await Deno.mkdir(root, { recursive: true });
  return await Deno.makeTempDir({ dir: root, prefix });
}

/**
 * Runs `fn` with a fresh folder under build/tmp/ and removes the folder
 * afterwards, also when `fn` throws.
 */
export async function withTestDir<T>(
  fn: (dir: string) => Promise<T> | T,
  prefix = "test-",
): Promise<T> {
  const dir = await makeTestDir(prefix);
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
