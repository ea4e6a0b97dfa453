"""Drive a real Jupyter kernel (the registered Deno kernel) with jupyter_client,
for tests/kernel.test.ts: run cells one after the other the way nbclient and
the notebook UI do, optionally interrupt one (Kernel > Interrupt), optionally
with CPU cores kept busy, and report every iopub message.

usage: jupyter_session.py SPEC.json
SPEC: {"cwd": DIR, "kernel": "deno", "busy": false | true | CORES,
       "env": {NAME: VALUE},
       "cells": [{"code": "...", "interrupt_when": "text seen in an output",
                  "timeout": 120}]}
Prints one JSON line: {"alive": bool, "cells": [{"msg_id", "status",
  "execution_count"}], "messages": [{"type", "parent", "text", "after_idle",
  "json"}]}
where "messages" are all output messages (stream, display_data,
update_display_data, execute_result, error) in arrival order, "parent" the
index of the cell whose request is their parent (null if none),
"after_idle" whether the parent cell had already reported idle, and "json"
the message's JSON outputs (its `data` entries whose type ends in "+json",
such as the grading records of lib/exercise.ts; {} if none).
The kernel gets this process's environment plus SPEC's "env" ({} if none).
"""
import json
import multiprocessing
import os
import sys
import time
from queue import Empty

from jupyter_client.manager import KernelManager

OUTPUTS = ("stream", "display_data", "update_display_data", "execute_result", "error")


def spin(seconds):
    end = time.time() + seconds
    while time.time() < end:
        pass


def text_of(msg):
    c = msg["content"]
    if msg["msg_type"] == "stream":
        return c.get("text", "")
    if msg["msg_type"] == "error":
        return f'{c.get("ename")}: {c.get("evalue")}'
    return c.get("data", {}).get("text/plain", "")


def json_of(msg):
    data = msg["content"].get("data") or {}
    return {k: v for k, v in data.items() if k.endswith("+json")}


def main():
    spec = json.load(open(sys.argv[1]))
    busy = []
    # Cores kept busy (true: one), bounded in time, as on a loaded machine.
    for _ in range(int(spec.get("busy") or 0)):
        busy.append(multiprocessing.Process(target=spin, args=(600,), daemon=True))
        busy[-1].start()
    km = KernelManager(kernel_name=spec.get("kernel", "deno"))
    km.start_kernel(cwd=spec["cwd"], env={**os.environ, **spec.get("env", {})})
    kc = km.client()
    kc.start_channels()
    report = {"alive": True, "cells": [], "messages": []}
    ids = []
    idle = set()
    try:
        kc.wait_for_ready(timeout=120)

        def record(msg):
            parent = msg["parent_header"].get("msg_id")
            index = ids.index(parent) if parent in ids else None
            if msg["msg_type"] == "status":
                if msg["content"]["execution_state"] == "idle" and index is not None:
                    idle.add(index)
                return
            if msg["msg_type"] in OUTPUTS:
                report["messages"].append({
                    "type": msg["msg_type"],
                    "parent": index,
                    "text": text_of(msg)[-2000:],
                    "after_idle": index in idle,
                    "json": json_of(msg),
                })

        for cell in spec["cells"]:
            msg_id = kc.execute(cell["code"])
            ids.append(msg_id)
            index = len(ids) - 1
            deadline = time.time() + cell.get("timeout", 120)
            interrupted = "interrupt_when" not in cell
            reply = None
            while reply is None or index not in idle:
                if time.time() > deadline or not km.is_alive():
                    break
                try:
                    record(kc.get_iopub_msg(timeout=0.1))
                except Empty:
                    pass
                if not interrupted and any(
                    m["parent"] == index and cell["interrupt_when"] in m["text"]
                    for m in report["messages"]
                ):
                    km.interrupt_kernel()
                    interrupted = True
                if reply is None:
                    try:
                        r = kc.get_shell_msg(timeout=0)
                        if r["parent_header"].get("msg_id") == msg_id:
                            reply = r
                    except Empty:
                        pass
            report["cells"].append({
                "msg_id": msg_id,
                "status": reply["content"]["status"] if reply else None,
                "execution_count": reply["content"].get("execution_count") if reply else None,
            })
            # Like nbclient: a short quiet period before the next request.
            quiet_until = time.time() + 0.3
            while time.time() < quiet_until:
                try:
                    record(kc.get_iopub_msg(timeout=0.05))
                    quiet_until = time.time() + 0.3
                except Empty:
                    pass
            if not km.is_alive():
                break
        # Whatever comes late still counts.
        end = time.time() + 1.0
        while time.time() < end:
            try:
                record(kc.get_iopub_msg(timeout=0.1))
            except Empty:
                pass
        report["alive"] = km.is_alive()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        for b in busy:
            b.terminate()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
