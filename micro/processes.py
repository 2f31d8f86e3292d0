"""Child processes that never outlive their parent, whatever kills it."""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> None:
    """Ask Linux to send `sig` to this process when its parent dies (a no-op elsewhere).

    Workers (actors, scoring processes) take SIGKILL: they hold nothing worth saving. `micro up`'s
    services take SIGTERM, so the trainer still writes latest.pth on its way out.
    """
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    except OSError:
        pass
