"""Run one step of a benchmark script in a fresh Python process and read its JSON result.

The benchmarks that measure memory or thread settings run each step as
``python SCRIPT --_child ARG...`` (a clean process: its own peak RSS, its own environment);
the child prints its result as JSON on its last line of standard output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_child(script: str, *args: str, env: dict | None = None) -> dict:
    """Run ``python script --_child *args`` (environment ``env``, default inherited) and return the
    JSON object on its last output line; a failed child raises with the tail of its stderr."""
    cmd = [sys.executable, os.path.abspath(script), "--_child", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"child {args[0]} {' '.join(args[2:])} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
