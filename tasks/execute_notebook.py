"""Execute one notebook headless with nbclient and report the first failing cell.

Called by tasks/notebooks.ts (the Jupyter machinery is Python; the project's
logic is not). Always writes the executed notebook, even when a cell fails,
and prints one JSON line: {"ok": bool, "cell": index, "ename", "evalue", "seconds"}.

With --allow-errors (used by tasks/grade.ts) a failing cell does not stop the
run: every cell is executed, the JSON line also lists "errors" (every cell
with an error output: {"cell", "ename", "evalue"}) and "stopped" (null, or
{"cell", "ename", "evalue"} when a timeout or a dead kernel ended the run
early; the grader then neutralises that cell and runs again).

The executed notebook is signed with Jupyter's notary (as `jupyter trust`
does) so that it opens trusted: its charts and HTML outputs show instead of
"untrusted output" placeholders. --no-sign skips that (the grader runs
students' code, whose outputs must not be trusted).

usage: execute_notebook.py INPUT OUTPUT --cwd DIR --timeout SECONDS [--kernel NAME] [--allow-errors] [--no-sign]
"""
import argparse
import json
import sys
import time

from queue import Empty

import nbformat
from nbformat.sign import NotebookNotary
from nbclient import NotebookClient
from nbclient.exceptions import (
    CellExecutionComplete,
    CellExecutionError,
    CellTimeoutError,
    DeadKernelError,
)
from nbclient.util import ensure_async


class DenoNotebookClient(NotebookClient):
    """nbclient, tolerant of the Deno kernel's message order.

    The Deno kernel can publish a cell's outputs (stdout, even the
    execute_result) just after its `idle` status; stock nbclient stops
    listening at `idle` and drops them. Keep draining the cell's messages
    until the channel has been quiet for `grace` seconds.
    """

    grace = 0.3

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        idle = False
        while True:
            try:
                msg = await ensure_async(
                    self.kc.iopub_channel.get_msg(timeout=self.grace if idle else None)
                )
            except Empty:
                return
            if msg["parent_header"].get("msg_id") != parent_msg_id:
                continue
            try:
                self.process_message(msg, cell, cell_index)
            except CellExecutionComplete:
                idle = True


def error_cells(nb):
    """Every code cell with an error output, for --allow-errors runs."""
    found = []
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "error":
                found.append({"cell": index, "ename": out.get("ename"),
                              "evalue": (out.get("evalue") or "").strip()[:2000]})
                break
    return found


def sign(nb):
    """Marks the notebook trusted for this user (the notary's database in the
    Jupyter data dir). A notary that cannot work (read-only home) must not
    lose the run: the notebook is then written unsigned, with a note."""
    try:
        NotebookNotary().sign(nb)
    except Exception as err:  # noqa: BLE001 - any notary failure is only a warning
        print(f"execute_notebook: could not sign {type(err).__name__}: {err}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument("--kernel", default="deno")
    parser.add_argument("--allow-errors", action="store_true")
    parser.add_argument("--no-sign", action="store_true")
    args = parser.parse_args()

    nb = nbformat.read(args.input, as_version=4)
    client = DenoNotebookClient(
        nb,
        timeout=args.timeout,
        kernel_name=args.kernel,
        resources={"metadata": {"path": args.cwd}},
        record_timing=False,
        allow_errors=args.allow_errors,
    )
    result = {"ok": True, "cell": None, "ename": None, "evalue": None}
    current = {"cell": None}

    def on_cell_start(cell, cell_index):
        current["cell"] = cell_index

    client.on_cell_start = on_cell_start
    start = time.time()
    try:
        client.execute()
        if args.allow_errors:
            result["stopped"] = None
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
        if args.allow_errors and isinstance(err, (CellTimeoutError, DeadKernelError)):
            result["stopped"] = {
                "cell": current["cell"],
                "ename": type(err).__name__,
                "evalue": str(err).strip()[:2000],
            }
        else:
            result["ok"] = False
            result["ename"] = getattr(err, "ename", type(err).__name__)
            result["evalue"] = (getattr(err, "evalue", None) or str(err)).strip()[:2000]
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                    result["cell"] = index
                    break
            if result["cell"] is None:
                # A timeout or dead kernel leaves no error output: the last cell that
                # started running is the one that did not finish.
                started = [i for i, c in enumerate(nb.cells)
                           if c.cell_type == "code" and c.get("execution_count")]
                result["cell"] = started[-1] if started else None
    finally:
        if args.allow_errors:
            result["errors"] = error_cells(nb)
            result["ok"] = not result["errors"] and not result.get("stopped")
        result["seconds"] = round(time.time() - start, 2)
        if not args.no_sign:
            sign(nb)
        nbformat.write(nb, args.output)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
