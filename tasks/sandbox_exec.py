"""Execute one notebook for the grader (tasks/grade.ts), with no file in or out.

tasks/execute_notebook.py reads its input from a file and writes the executed
notebook to one. For grading that is not good enough: the kernel runs the
submission's code as the same user as this process, so it could read the
input (which holds the hidden tests) or rewrite the output (which holds the
check records) before the grader reads it. Here:

- the request comes on stdin and the result goes to stdout, as one JSON
  document each, on private copies of the descriptors; descriptors 0-2 are
  pointed at /dev/null before the kernel starts, so it inherits nothing;
- this process makes itself non-dumpable, so that the kernel cannot open
  /proc/<pid>/fd, /proc/<pid>/mem or /proc/<pid>/environ of it (it would
  need CAP_SYS_PTRACE; the sandbox drops every capability);
- the grading token (lib/exercise.ts reads and removes it) is written by this
  process just before the kernel starts.

In the sandbox (tasks/sandbox.ts) this process is pid 1, so every process the
submission leaves behind dies with it.

stdin:  {"notebook": {...}, "cwd": DIR, "timeout": SECONDS,
         "token": {"path": FILE, "text": "..."} | null}
stdout: {"report": {...as execute_notebook.py --allow-errors prints...},
         "notebook": {...executed...}}

usage: sandbox_exec.py < request.json > result.json
"""
import ctypes
import json
import os
import sys
import time

PR_SET_DUMPABLE = 4


def private_stdio():
    """Moves stdin/stdout/stderr to private descriptors; 0-2 become /dev/null."""
    request = os.dup(0)
    out = os.dup(1)
    err = os.dup(2)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    # os.dup makes non-inheritable descriptors and subprocess closes the rest.
    sys.stdin = os.fdopen(request, "r", encoding="utf-8")
    sys.stdout = os.fdopen(out, "w", encoding="utf-8")
    sys.stderr = os.fdopen(err, "w", encoding="utf-8", buffering=1)


def main() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        print("sandbox_exec: could not make the executor non-dumpable", file=sys.stderr)
    private_stdio()
    request = json.load(sys.stdin)
    sys.stdin.close()

    import nbformat
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from execute_notebook import DenoNotebookClient, error_cells

    # reads() joins the list-of-lines sources that nbclient cannot take.
    nb = nbformat.reads(json.dumps(request["notebook"]), as_version=4)
    token = request.get("token")
    if token:
        fd = os.open(token["path"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(token["text"])
    client = DenoNotebookClient(
        nb,
        timeout=int(request["timeout"]),
        kernel_name="deno",
        resources={"metadata": {"path": request["cwd"]}},
        record_timing=False,
        allow_errors=True,
    )
    current = {"cell": None}

    def on_cell_start(cell, cell_index):
        current["cell"] = cell_index

    client.on_cell_start = on_cell_start
    result = {"ok": True, "cell": None, "ename": None, "evalue": None, "stopped": None}
    start = time.time()
    try:
        client.execute()
    except (CellTimeoutError, DeadKernelError) as err:
        result["stopped"] = {
            "cell": current["cell"],
            "ename": type(err).__name__,
            "evalue": str(err).strip()[:2000],
        }
    except Exception as err:  # noqa: BLE001 - reported to the grader, never raised
        result["ename"] = "ExecutorError"
        result["evalue"] = f"{type(err).__name__}: {err}"[:2000]
    result["errors"] = error_cells(nb)
    result["ok"] = not result["errors"] and not result["stopped"] and not result["ename"]
    result["seconds"] = round(time.time() - start, 2)
    json.dump({"report": result, "notebook": nb}, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
