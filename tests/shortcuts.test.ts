/**
 * No exercise answers itself (issue 15): every code exercise of every master
 * declares its tempting one-line answer through the library (`// SHORTCUT:`),
 * and the notebook with every solution replaced by its shortcut, hidden tests
 * kept, fails every check. The work is `tasks/shortcuts.ts`
 * (`deno task shortcuts`); this runs it on each notebook in quick mode.
 */
import { loadMasters } from "../tasks/handout.ts";
import { checkShortcuts, shortcutsOf } from "../tasks/shortcuts.ts";
import { assert, assertEquals } from "./assert.ts";

const notebookDir = new URL("../notebooks/", import.meta.url).pathname;
const masters = await loadMasters(notebookDir);

Deno.test("every code exercise of every notebook declares its shortcut", () => {
  let count = 0;
  for (const m of masters) {
    const { shortcuts, problems } = shortcutsOf(m.nb, m.analysis);
    assertEquals(problems, []);
    count += shortcuts.size;
  }
  assert(count >= 30, `only ${count} code exercises declare a shortcut`);
});

for (const m of masters) {
  const { shortcuts } = shortcutsOf(m.nb, m.analysis);
  if (shortcuts.size === 0) continue;
  Deno.test(`${m.file}: every check fails when each solution is its shortcut`, async () => {
    const lines: string[] = [];
    const problems = await checkShortcuts([m], {
      log: (line) => lines.push(line),
    });
    assertEquals(problems, []);
    assertEquals(lines.length, 1, `no run reported: ${lines}`);
  });
}
