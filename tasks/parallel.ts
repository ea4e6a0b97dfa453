/**
 * Running independent jobs a few at a time (grading submissions, executing
 * notebooks), with results reported in input order.
 *
 * @module
 */

/** Runs `task` on every item with at most `jobs` at a time; results in input order. */
export async function inParallel<T, R>(
  items: T[],
  jobs: number,
  task: (item: T, index: number) => Promise<R>,
  onResult: (result: R, index: number) => void = () => {},
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i], i);
      onResult(results[i], i);
    }
  };
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, worker),
  );
  return results;
}

/**
 * Wraps `report` so that it sees each result in input order, whatever order
 * the jobs finish in: a result waits until every earlier one has been seen.
 */
export function inInputOrder<R>(
  report: (result: R, index: number) => void,
): (result: R, index: number) => void {
  const arrived: { result: R }[] = [];
  let next = 0;
  return (result, index) => {
    arrived[index] = { result };
    for (; arrived[next] !== undefined; next++) {
      report(arrived[next].result, next);
    }
  };
}
