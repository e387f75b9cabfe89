"""Worker processes end when the process that started them dies.

A worker that waits for work on a pipe its parent holds never learns that the parent was
killed (SIGKILL, the OOM killer): the workers of a process pool keep copies of both ends of
their queue, so no end-of-file ever comes, and a worker in the middle of a file keeps
computing. :func:`exit_with_parent`, called first thing in every worker (the local engine's
pool, the web server's job workers), makes the worker follow its parent:

* on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker the moment its
  parent exits. The signal is tied to the parent *thread* that created the worker, so it is
  only asked for when that thread is the parent's main thread (the caller says so);
* everywhere, a daemon thread that checks the parent process id twice a second and ends the
  worker (``os._exit``) once the parent is gone: it catches what the signal cannot (another
  platform, a worker started from a thread, a parent that died before the ``prctl`` call).

The lower layers use it, so it imports nothing of genrescope.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

#: ``PR_SET_PDEATHSIG`` from ``<linux/prctl.h>``.
PR_SET_PDEATHSIG = 1

#: Seconds between two looks at the parent process id.
POLL_S = 0.5


def _set_death_signal(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent thread exits; False where it cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int, poll_s: float) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)  # the parent is gone: no cleanup that could block (queues, locks, atexit)
        time.sleep(poll_s)


def exit_with_parent(parent: int, *, death_signal: bool = True, poll_s: float = POLL_S) -> None:
    """End this process as soon as process ``parent`` (the one that started it) is gone.

    Parameters
    ----------
    parent : int
        The parent's process id, as the parent saw it (``os.getpid()`` there), passed to the
        worker: if the parent already died, ``os.getppid()`` here differs and the worker ends now.
    death_signal : bool
        Also ask for ``PR_SET_PDEATHSIG`` (Linux). Only when the parent started this worker from
        its main thread: the signal comes when the creating *thread* ends.
    poll_s : float
        Seconds between the watching thread's looks at the parent.
    """
    if death_signal:
        _set_death_signal(signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watch, args=(parent, poll_s), name="genrescope-lifeline", daemon=True).start()
