"""Letting other threads run during a long ``plan()``.

The interpreter hands the GIL to a waiting thread every 5 ms (``sys.getswitchinterval``), but
only between bytecodes: code compiled with mypyc (docs/build.md) runs none, so a worker
thread hardening a pod of thousands of containers would hold the GIL, and the webhook's event
loop with it, for the whole call. The engine and the PSS evaluator call ``let_others_run``
between steps (a rule over a pod, a check over a pod); it gives the GIL up only when the
switch interval has passed since the last time, so a pod of ordinary size never pays for it.
"""

from __future__ import annotations

import sys
import time

__all__ = ["let_others_run"]

_last = time.perf_counter()


def let_others_run() -> None:
    """Give the GIL up for a moment when the switch interval has passed since the last time."""
    global _last
    now = time.perf_counter()
    if now - _last >= sys.getswitchinterval():
        time.sleep(0)  # releases the GIL; a waiting thread takes it
        _last = time.perf_counter()
