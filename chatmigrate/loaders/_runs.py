"""Who owns a `running` row of cm_runs: this module identifies the current process and tells whether the
process that wrote a row is gone, so the next run can mark a killed run `interrupted` and never a live one.

A row records its process as `host` and `pid`. On the same host the pid answers (a dead pid is gone;
a live one, even a reused pid, is left alone: misjudging a live run is the error that must not happen).
Elsewhere the dialect's per-run server lock answers (Loader.run_lock_free); SQLite has none, so rows
written on another host stay as they are.
"""

from __future__ import annotations

import os
import socket

# The inode of the kernel's initial PID namespace (PROC_PID_INIT_INO, fixed since Linux 3.8).
_INIT_PID_NAMESPACE = 0xEFFFFFFC
INTERRUPTED = "interrupted"
RUNNING = "running"


def host_identity() -> str:
    """This host's name, plus its PID namespace when that is not the initial one: two containers
    sharing a host name (host networking) do not see each other's pids, so their rows must not be
    compared by pid."""
    name = socket.gethostname()
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # not Linux: the host name alone
        return name
    return name if namespace == _INIT_PID_NAMESPACE else f"{name} pidns:{namespace}"


def pid_alive(pid: int) -> bool:
    """Does a process with this pid exist on this host (whoever owns it)?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def owner_gone(row_host: str | None, row_pid: int | None, lock_free: bool | None) -> bool:
    """Whether a `running` row's process is gone. `lock_free` is the answer of the row's server-side run
    lock (None where the dialect has none, or the row predates it)."""
    if row_host is not None and row_host == host_identity() and row_pid is not None:
        return not pid_alive(row_pid)
    return bool(lock_free)
