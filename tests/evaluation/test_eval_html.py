"""The HTML reports are looked at: headless Chromium loads them, the images decode and the
metric table is there. A broken image reference is caught (negative control)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

CHECK = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.map(function (i) { return i.complete && i.naturalWidth > 0; });
  var t = document.querySelector('table#metrics');
  var out = document.createElement('pre');
  out.id = 'check';
  out.textContent = 'IMAGES=' + imgs.length + ' LOADED=' + ok.filter(Boolean).length +
    ' ROWS=' + (t ? t.querySelectorAll('tbody tr').length : -1);
  document.body.appendChild(out);
});
</script>"""


def render(html_path: Path, tmp_path: Path) -> tuple[int, int, int]:
    """Copy the page next to itself with the check script, dump Chromium's DOM, parse it."""
    page = html_path.read_text()
    probe = html_path.parent / "_probe.html"
    probe.write_text(page.replace("</body>", CHECK + "</body>"))
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", f"--user-data-dir={tmp_path / 'chrome'}",
           "--virtual-time-budget=5000", "--allow-file-access-from-files", "--dump-dom",
           probe.resolve().as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    probe.unlink()
    m = re.search(r"IMAGES=(\d+) LOADED=(\d+) ROWS=(-?\d+)", res.stdout)
    assert m, f"no check output; stderr: {res.stderr[-2000:]}"
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install chromium chromium-driver)")


def test_backtest_report_renders(ppo_backtest, tmp_path):
    n_img, loaded, rows = render(ppo_backtest.parent / "report.html", tmp_path)
    assert n_img == 1 and loaded == 1
    assert rows >= 10  # one row per metric


def test_broken_image_is_detected(ppo_backtest, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(ppo_backtest.parent, folder)
    (folder / "backtest.png").unlink()
    n_img, loaded, rows = render(folder / "report.html", tmp_path)
    assert n_img == 1 and loaded == 0 and rows >= 10
    (folder / "backtest.png").write_bytes(b"not a png")
    assert render(folder / "report.html", tmp_path)[1] == 0
