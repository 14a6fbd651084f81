"""The queue in front of a DB file: whose turn it is, and whether anyone is waiting for one.

DuckDB lets only one process hold a file read-write. Before DuckDB opens the file, a process
takes an exclusive `flock` on a sibling `<db>.lock` file, blocking in the kernel until the
holder lets go, and keeps it while it holds the file. Each turn is counted in the lock file,
and a waiter gives up only when no process has taken a turn for MESHGOV_LOCK_WAIT seconds (a
stuck holder), not because the queue ahead of it is long. (Retrying DuckDB's own lock error
with a growing sleep, as before, let fresh arrivals win again and again: 6 of 60 concurrent
runs gave up after 60 s.)

A waiter also holds a shared POSIX record lock on one byte of the lock file while it waits,
so that a holder that keeps the file between uses (catalog.store) can see, with one
non-blocking syscall, that another process wants its turn and hand the file over at once.
Record locks and flock do not interact on Linux, and the kernel drops both when a process
dies, so a crashed waiter never leaves a stale "someone waits".
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

_WAITING_BYTE = 64  # past the turn counter (bytes 0-31); a record lock may lie beyond EOF


def open_lock_file(lock_path: Path) -> int | None:
    try:
        return os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        try:
            return os.open(lock_path, os.O_RDONLY)  # flock works on a read-only descriptor too
        except OSError:
            return None  # a read-only folder without a lock file: nobody can queue here


def turns_taken(fd: int) -> int:
    try:
        return int(os.pread(fd, 32, 0).strip(b"\0 \n") or 0)
    except (OSError, ValueError):
        return 0


def _take_turn(fd: int) -> None:
    """Count the turn in the lock file, so that waiters see the queue moving."""
    try:
        os.pwrite(fd, str(turns_taken(fd) + 1).encode().ljust(32), 0)
    except OSError:
        pass  # a read-only lock file: waiters fall back to a plain time limit


def _mark_waiting(fd: int, waiting: bool) -> None:
    try:
        fcntl.lockf(fd, (fcntl.LOCK_SH | fcntl.LOCK_NB) if waiting else fcntl.LOCK_UN, 1, _WAITING_BYTE)
    except OSError:
        pass  # e.g. a file system without record locks: holders then release on their idle timer


def another_process_waits(fd: int) -> bool:
    """True when another process is queued for the file whose lock `fd` (ours) holds: its shared
    record lock keeps us from taking an exclusive one. False when nobody waits or we cannot
    tell (a read-only lock file)."""
    if fd < 0:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _WAITING_BYTE)
    except (BlockingIOError, PermissionError):
        return True
    except OSError:
        return False
    fcntl.lockf(fd, fcntl.LOCK_UN, 1, _WAITING_BYTE)
    return False


def let_waiter_go_first(lock_path: Path, handed_over_at: int, limit: float = 1.0) -> None:
    """After handing the file to a waiting process, wait (at most `limit` seconds) until that
    process has counted its turn: flock does not queue in order, and re-locking at once would
    usually win the race the handover was meant to lose."""
    fd = open_lock_file(lock_path)
    if fd is None:
        return
    try:
        deadline = time.monotonic() + limit
        while turns_taken(fd) == handed_over_at and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        os.close(fd)


def take_turn(lock_path: Path, wait: float) -> int | None:
    """An exclusive flock on `lock_path`, waited for in the kernel (which queues the
    waiters). Gives up only when no other process has taken a turn for `wait` seconds: a
    holder that never lets go is an error, a long queue that moves is not. Returns the
    descriptor holding it (closing it releases the turn), -1 when no lock file can exist,
    None when it gave up."""
    fd = open_lock_file(lock_path)
    if fd is None:
        return -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _take_turn(fd)
        return fd
    except BlockingIOError:
        pass
    _mark_waiting(fd, True)
    # flock has no timeout: block in a helper thread; if we stop waiting, the helper closes
    # the descriptor (releasing the lock) as soon as it gets it.
    got = threading.Event()
    mutex = threading.Lock()
    abandoned = False

    def wait_in_kernel() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        with mutex:
            got.set()
            if abandoned:
                os.close(fd)

    threading.Thread(target=wait_in_kernel, name="meshgov-store-queue", daemon=True).start()
    turns = turns_taken(fd)
    deadline = time.monotonic() + wait
    while not got.wait(max(min(0.1, deadline - time.monotonic()), 0)):
        now_turns = turns_taken(fd)
        if now_turns != turns:
            turns, deadline = now_turns, time.monotonic() + wait
        if time.monotonic() >= deadline:
            break
    with mutex:
        if got.is_set():
            _mark_waiting(fd, False)
            _take_turn(fd)
            return fd
        abandoned = True
        _mark_waiting(fd, False)
    return None
