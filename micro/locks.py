"""One service of a kind per home: an exclusive lock held for the service's life.

`flock` on a file in the folder the service writes: the kernel drops it when the process dies, so
a SIGKILLed service never leaves a stale lock, and a second one is refused at once with the first's
pid.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from micro.errors import UserError


def hold_lock(path: Path, refusal: str) -> IO[str]:
    """Take the exclusive lock `path` for this process's life (keep the file returned open).

    Another process holding it: UserError `refusal`, its `{pid}` replaced by the holder's pid.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")  # noqa: SIM115 (held open for the service's life)
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        other = fh.read().strip() or "?"
        fh.close()
        raise UserError(refusal.replace("{pid}", other)) from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh
