"""The test suite exactly as CI runs it, in one command: `python tests/run_suite.py`.

The suite runs as one pytest process per part of the package (cli, data, engine, losses and models;
inference; serve; the top-level files), then the few tests marked slow in a process of their own. Each
process starts clean: the native libraries the suite loads (PyTorch, OpenVINO, NNCF, dlib, FFmpeg, Ray)
never share one process for the whole run (see docs/limitations.md for why). Extra arguments go to every
pytest call (e.g. `-x`, `-k people`). Exit status: 0 when every part passed, else the first failing one's.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = [
    ["tests/cli", "tests/data", "tests/engine", "tests/losses", "tests/models"],
    ["tests/inference"],
    ["tests/serve"],
    sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")),
    ["-m", "slow"],
]


def main(extra: list[str]) -> int:
    failed = 0
    for part in PARTS:
        t0 = time.monotonic()
        name = " ".join(part) if part[0] != "-m" else "the slow set"
        print(f"== {name[:100]}", flush=True)
        code = subprocess.call([sys.executable, "-m", "pytest", *part, *extra], cwd=ROOT)
        print(f"== {name[:60]}: {'passed' if code == 0 else f'exit {code}'} in {time.monotonic() - t0:.0f} s", flush=True)
        if code not in (0, 5) and not failed:  # 5: no test collected (a -k that matches nothing in a part)
            failed = code
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
