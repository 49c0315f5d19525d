"""The docs site as a reader sees it: built with ``mkdocs build --strict``, every page loaded in
headless Chromium with the network blocked, and every equation typeset by MathJax without an
error and without raw TeX left on the page. A page with a broken equation, a CDN script or
math that arithmatex did not mark fails (negative controls at the end)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("CI must render the docs: chromium is not installed (.ci/run installs "
                       "Debian's chromium and chromium-driver as root)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install chromium chromium-driver; .ci/run does)")

DRIVER = r"""<html><body><script>
// Load each page in an iframe (one after another), wait for MathJax, check the page.
var pages = PAGES;
var results = {};
function check(w, note) {
  var d = w.document, arith = d.querySelectorAll('.arithmatex');
  var raw = [], errors = [], stray = [], node;
  arith.forEach(function (e) {
    if (!e.querySelector('mjx-container')) raw.push(e.textContent.trim().slice(0, 100)); });
  d.querySelectorAll('mjx-merror, [data-mjx-error]').forEach(function (e) {
    errors.push((e.getAttribute('data-mjx-error') || e.textContent).slice(0, 120)); });
  if (!note && w.MathJax && w.MathJax.startup.document) {  // a text with a backslash: bad escape
    Array.from(w.MathJax.startup.document.math).forEach(function (item) {
      var mml = w.MathJax.startup.toMML(item.root);
      if (mml.indexOf('<merror') >= 0) return;  // reported above
      (mml.match(/<mtext[^>]*>[^<]*\\[^<]*<\/mtext>/g) || []).forEach(function (t) {
        errors.push('backslash in text: ' + t); });
    });
  }
  var walker = d.createTreeWalker(d.querySelector('article') || d.body, NodeFilter.SHOW_TEXT);
  while ((node = walker.nextNode())) {
    if (node.parentElement.closest('pre, code, script, style, mjx-container, .arithmatex')) continue;
    var t = node.textContent;
    if (/\\\(|\\\[|\$\$|\\[a-zA-Z]{2,}[{_^]|\$[^$\s][^$]*\$/.test(t)) stray.push(t.trim().slice(0, 100));
  }
  return {arith: arith.length, typeset: d.querySelectorAll('.arithmatex mjx-container').length,
          raw: raw, errors: errors, stray: stray, note: note};
}
function next(i) {
  if (i >= pages.length) {
    var pre = document.createElement('pre');
    pre.id = 'mathcheck';
    pre.textContent = 'MATHCHECK' + JSON.stringify(results);
    document.body.appendChild(pre);
    return;
  }
  var f = document.createElement('iframe');
  f.style.width = '1280px';
  f.style.height = '1000px';
  f.onload = function () {
    var w = f.contentWindow, done = function (note) {
      try { results[pages[i]] = check(w, note); }
      catch (e) { results[pages[i]] = {note: 'probe failed: ' + e}; }
      f.remove();
      next(i + 1);
    };
    if (!w.MathJax || !w.MathJax.startup || !w.MathJax.startup.promise) {
      done(w.document.querySelector('.arithmatex') ? 'MathJax did not load' : '');
    } else {
      w.MathJax.startup.promise.then(function () { done(''); },
                                     function (e) { done('MathJax failed: ' + e); });
    }
  };
  f.src = pages[i];
  document.body.appendChild(f);
}
next(0);
</script></body></html>"""
"""One Chromium process checks every page (a process per page took six times as long)."""

OFFLINE = ["--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]
"""Chromium flags that make every network request fail: the pages must not need one."""


def chromium(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    """Headless Chromium, offline, on ``url`` with ``extra`` flags."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chrome'}", "--allow-file-access-from-files",
           "--virtual-time-budget=600000", *OFFLINE, *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def math_check(site: Path, pages: list[str], tmp_path: Path) -> dict[str, dict]:
    """Load every page (paths of HTML files relative to ``site``) in one headless Chromium
    with the network blocked; return what the check found on each."""
    driver = site / f"_mathcheck_{os.getpid()}.html"
    driver.write_text(DRIVER.replace("PAGES", json.dumps(pages)))
    try:
        res = chromium(driver.as_uri(), tmp_path, "--dump-dom")
    finally:
        driver.unlink()
    m = re.search(r'<pre id="mathcheck">MATHCHECK(\{.*?\})</pre>', res.stdout, re.S)
    assert m, f"no check output; stderr: {res.stderr[-2000:]}"
    text = m.group(1)
    for a, b in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&amp;", "&")):
        text = text.replace(a, b)
    found = json.loads(text)
    assert sorted(found) == sorted(pages), f"pages not checked: {set(pages) - set(found)}"
    return found


def build_site(dest: Path, config: Path = ROOT / "mkdocs.yml") -> Path:
    """``mkdocs build --strict`` into ``dest``."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f",
                          str(config), "-d", str(dest)], cwd=ROOT, capture_output=True,
                         text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return dest


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    return build_site(tmp_path_factory.mktemp("site") / "site")


def _nav_pages() -> list[str]:
    """The pages in mkdocs.yml's nav, as paths relative to docs/."""
    return re.findall(r":\s+(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M)


def _html(page: str) -> str:
    """The HTML file of a Markdown page, relative to the site."""
    return "index.html" if page == "index.md" else page[:-3] + "/index.html"


def test_nav_lists_every_page_once_starting_with_the_index_then_ppo():
    pages = _nav_pages()
    on_disk = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(pages) == on_disk, "every page is in mkdocs.yml's nav exactly once"
    assert pages[:2] == ["index.md", "algorithms/ppo.md"]
    assert pages[-1] == "architecture.md"


def test_no_page_loads_anything_from_the_network(site):
    remote = re.compile(r"<(?:script|link|img|iframe)\b[^>]*(?:src|href)=\"(?:https?:)?//", re.I)
    for html in site.rglob("*.html"):
        for m in remote.finditer(html.read_text()):
            tag = html.read_text()[m.start():m.start() + 200]
            assert 'rel="' in tag and not re.search(r'rel="(?:stylesheet|preload|modulepreload)',
                                                   tag), f"{html}: {tag}"
    assert (site / "mathjax" / "tex-svg.js").is_file()


def test_every_page_renders_its_math_offline(site, tmp_path):
    pages = _nav_pages()
    found = math_check(site, [_html(page) for page in pages], tmp_path)
    problems = []
    for page in pages:
        res = found[_html(page)]
        if res["note"]:
            problems.append(f"{page}: {res['note']}")
        if res["errors"]:
            problems.append(f"{page}: MathJax errors {res['errors'][:5]}")
        if res["raw"] or res["typeset"] != res["arith"]:
            problems.append(f"{page}: equations left as raw TeX {res['raw'][:5]}")
        if res["stray"]:
            problems.append(f"{page}: TeX outside any equation {res['stray'][:5]}")
    assert not problems, "\n".join(problems)
    assert found[_html("algorithms/ppo.md")]["typeset"] >= 50


# -- negative controls: the checks above can fail --------------------------------------------

BROKEN = r"""# Broken

Two tags in one display:

$$
a = b \tag{1} \qquad c = d \tag{2}
$$

Fine: $x \in \mathbb{R}$. Shows a backslash: $\text{taker\_fee}$.

Not math, left as raw TeX: \(\frac{a}{b}.
"""


def test_broken_math_is_caught(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(BROKEN)
    (docs / "javascripts").mkdir()
    shutil.copy(ROOT / "docs/javascripts/mathjax-config.js", docs / "javascripts")
    cfg = (ROOT / "mkdocs.yml").read_text()
    cfg = re.sub(r"^nav:.*?(?=^\S)", "", cfg, flags=re.S | re.M)
    cfg = cfg.replace("docs_dir: docs", f"docs_dir: {docs}")
    cfg = cfg.replace("tools/mkdocs_mathjax.py", str(ROOT / "tools/mkdocs_mathjax.py"))
    (tmp_path / "mkdocs.yml").write_text(cfg)
    site = build_site(tmp_path / "site", tmp_path / "mkdocs.yml")
    res = math_check(site, ["index.html"], tmp_path)["index.html"]
    assert "Multiple \\tag" in res["errors"]
    assert any("taker" in e for e in res["errors"]), res["errors"]
    assert res["stray"], "TeX outside an equation must be reported"
