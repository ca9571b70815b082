"""Process-tree helpers for the interrupt tests (Linux ``/proc``; no psutil needed)."""

import os

__all__ = ["alive", "descendants"]


def _state_and_parent(pid: int):
    """``(state letter, parent pid)`` of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()  # the command name may contain spaces
    except OSError:
        return None
    return fields[0], int(fields[1])


def descendants(pid: int) -> list[int]:
    """Live (non-zombie) descendants of ``pid``: children, grandchildren, ..."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _state_and_parent(int(entry))
            if info is not None and info[0] != "Z":
                parents[int(entry)] = info[1]
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out += kids
        frontier += kids
    return out


def alive(pids) -> list[int]:
    """The processes of ``pids`` that still exist and are not zombies."""
    out = []
    for p in pids:
        info = _state_and_parent(p)
        if info is not None and info[0] != "Z":
            out.append(p)
    return out
