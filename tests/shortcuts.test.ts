/**
 * No exercise answers itself (issue 15): every code exercise of every master
 * declares its tempting one-line answer through the library (`// SHORTCUT:`),
 * and the notebook with every solution replaced by its shortcut, hidden tests
 * kept, fails every check. The work is `tasks/shortcuts.ts`
 * (`deno task shortcuts`); this runs it on each notebook in quick mode.
 */
import { loadMasters } from "../tasks/handout.ts";
import { inParallel } from "../tasks/parallel.ts";
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

// The shortcut editions run two at a time, each in its own kernel (the
// machines the course targets have 2 cores): one test for all of them.
const withShortcuts = masters.filter((m) =>
  shortcutsOf(m.nb, m.analysis).shortcuts.size > 0
);

Deno.test({
  name:
    `the shortcut edition of each of ${withShortcuts.length} notebooks fails every check`,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const runs = await inParallel(withShortcuts, 2, async (m) => {
      const lines: string[] = [];
      const problems = await checkShortcuts([m], {
        log: (line) => lines.push(line),
      });
      return { file: m.file, lines, problems };
    });
    for (const { file, lines } of runs) {
      assertEquals(lines.length, 1, `${file}: no run reported: ${lines}`);
    }
    const reports = runs.flatMap((r) => r.lines);
    const problems = runs.flatMap((r) => r.problems);
    assertEquals(problems, []);
    assertEquals(reports.length, withShortcuts.length, reports.join("\n"));
  },
});
