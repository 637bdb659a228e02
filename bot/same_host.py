"""Telling for sure that a process of this machine is gone, so its leases need not wait 4 s.

A process's owner name (bot/heartbeat.py) carries its pid, its start time (clock ticks since boot,
from /proc/<pid>/stat) and a tag of the pids it sees: the kernel's boot id and its pid namespace,
hashed. A process with the same tag sees the same pids. If that pid no longer exists, is a zombie,
or now belongs to a process started at another time, the owner is dead: a restarted bot frees what
its killed predecessor held at once. Anything else (another machine or container, no /proc, a pid
of another user) proves nothing: the heartbeat's staleness decides, as before.
"""
from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

UNKNOWN = "-"


def stamp() -> str:
    """"<start>:<space>" for this process's owner name; "-:-" where /proc cannot tell."""
    space, own = pid_space(), _stat("self")
    if space is None or own is None:
        return f"{UNKNOWN}:{UNKNOWN}"
    return f"{own[1]}:{space}"


def stopped(owner: str) -> bool:
    """True only when `owner` (hostname:pid:start:space:random) is a process of this pid space that is gone."""
    parts = owner.rsplit(":", 4)
    if len(parts) != 5 or parts[3] == UNKNOWN or parts[3] != pid_space() or not parts[1].isdigit():
        return False
    pid, start = int(parts[1]), parts[2]
    if pid == os.getpid():
        return False  # this very process (another owner made in it)
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the pid exists
    except ProcessLookupError:
        return True
    except OSError:
        return False  # e.g. another user's process: it exists
    found = _stat(pid)
    return found is not None and (found[0] in "ZX" or found[1] != start)


@lru_cache(maxsize=1)
def pid_space() -> str | None:
    """The boot id and pid namespace this process sees its pids in, hashed; None without a /proc of its own."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
        own_pid = Path("/proc/self/stat").read_text().split(" ", 1)[0]
    except OSError:
        return None
    if own_pid != str(os.getpid()):  # a /proc mounted for another pid namespace
        return None
    return hashlib.sha256(f"{boot} {namespace}".encode()).hexdigest()[:12]


def _stat(pid: int | str) -> tuple[str, str] | None:
    """(state, start time in ticks since boot) of a process, from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "(name)", which may hold spaces: field 3 on
    return fields[0], fields[19]  # fields 3 (state) and 22 (starttime)
