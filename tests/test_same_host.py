"""Issue 18: a restarted process frees at once what its killed predecessor on the same machine held.
`same_host.stopped` says "gone for sure" only for a process of this pid space whose pid is gone, a
zombie, or taken by a later process; for anything else it proves nothing (bot/same_host.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import same_host
from bot.heartbeat import process_owner

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(same_host.pid_space() is None, reason="no /proc of this pid namespace")


@pytest.fixture
def other() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Another process (its owner name as it made it), alive until its standard input closes."""
    with subprocess.Popen(
            [sys.executable, "-c", "import sys; from bot.heartbeat import process_owner; "
                                   "print(process_owner(), flush=True); sys.stdin.read()"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        try:
            yield proc, proc.stdout.readline().strip()
        finally:
            proc.kill()


def test_a_live_process_and_this_one_are_not_stopped(other) -> None:
    _, owner = other
    assert not same_host.stopped(owner)
    assert not same_host.stopped(process_owner())


def test_a_killed_process_is_stopped_as_a_zombie_and_once_reaped(other) -> None:
    proc, owner = other
    proc.kill()
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped yet: a zombie
    assert same_host.stopped(owner)
    proc.wait()
    assert same_host.stopped(owner)


def test_a_pid_taken_by_a_later_process_is_stopped(other) -> None:
    _, owner = other
    host, pid, start, space, token = owner.rsplit(":", 4)
    assert same_host.stopped(f"{host}:{pid}:{int(start) - 1}:{space}:{token}")


def test_nothing_is_presumed_of_another_pid_space_or_a_name_it_cannot_read(other) -> None:
    proc, owner = other
    proc.kill()
    proc.wait()
    host, pid, start, _, token = owner.rsplit(":", 4)
    for name in (f"{host}:{pid}:{start}:0123456789ab:{token}", f"{host}:{pid}:-:-:{token}",
                 f"{host}:{pid}:{token}", "turn:purge", ""):
        assert not same_host.stopped(name), name
