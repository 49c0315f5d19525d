"""Screenshot an HTML page with headless Chromium, offline: the docs' pictures of reports.

    python tools/screenshot.py runs/ppo-eth-2021/backtest/calm-2023/report.html \\
        docs/guide/evaluation-backtest-report.png --height 2200

Needs Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it). Every
network request is refused, so the picture shows what an offline reader sees. Prints the PNG's
path last.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def screenshot(page: Path, out: Path, width: int = 1200, height: int = 2000) -> Path:
    """Write a ``width`` x ``height`` PNG of ``page`` (a local HTML file) to ``out``."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not installed: apt-get install chromium")
    if not page.is_file():
        raise SystemExit(f"{page}: no such file")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--hide-scrollbars", f"--user-data-dir={profile}",
               "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
               "--allow-file-access-from-files", "--virtual-time-budget=20000",
               f"--window-size={width},{height}", f"--screenshot={out.resolve()}",
               page.resolve().as_uri()]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if res.returncode != 0 or not out.is_file():
        raise SystemExit(f"chromium failed ({res.returncode}): {res.stderr[-2000:]}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("page", type=Path, help="HTML file")
    ap.add_argument("out", type=Path, help="PNG to write")
    ap.add_argument("--width", type=int, default=1200, help="window width (default 1200)")
    ap.add_argument("--height", type=int, default=2000, help="window height (default 2000)")
    a = ap.parse_args(argv)
    print(screenshot(a.page, a.out, a.width, a.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
