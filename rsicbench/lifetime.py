"""Child processes that never outlive their parent.

After `kill -9` of a sweep or an evaluation, its pool workers used to finish their image
alone and then print BrokenPipeError tracebacks into the log. A worker calls
`die_with_parent()` once at start-up and is killed with its parent instead.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_S = 0.5


def die_with_parent() -> str:
    """Tie this process's life to its parent's; returns how ("prctl" or "watchdog").

    Linux: prctl(PR_SET_PDEATHSIG, SIGKILL), so the kernel kills it the moment the parent
    dies (strictly: the parent thread that started it; the engine starts and drains its pool
    from one thread). Elsewhere (or if prctl fails): a daemon thread that exits the process once the
    parent pid changes (the orphan is re-parented).
    """
    parent = mp.parent_process()
    ppid = parent.pid if parent is not None else os.getppid()
    if os.getppid() != ppid:  # the parent died before we got here
        os._exit(1)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0:
                if os.getppid() != ppid:  # it died between the check above and prctl
                    os._exit(1)
                return "prctl"
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == ppid:
            time.sleep(POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
    return "watchdog"
