"""MkDocs hook: serve MathJax from an installed wheel, so equations render with no network.

``pymdownx.arithmatex`` (generic mode) leaves each equation as TeX inside ``<span|div
class="arithmatex">``; MathJax typesets it in the browser. Instead of a CDN, this hook adds
MathJax 3 (the unmodified upstream build that the ``django-static-mathjax`` wheel vendors, a
dev extra) to the site as generated files under ``mathjax/``: ``mkdocs build`` copies them and
``mkdocs serve`` serves them. ``docs/javascripts/mathjax-config.js`` configures it;
``tests/test_docs_render.py`` checks in headless Chromium, with the network blocked, that every
page's equations typeset without errors.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

BUNDLE = "tex-svg.js"
"""TeX in, SVG out: the glyphs are inside the script, so no web font has to load."""
SKIP_TOP = {"mml-chtml.js", "mml-svg.js", "node-main.js", "tex-chtml-full-speech.js",
            "tex-chtml-full.js", "tex-chtml.js", "tex-mml-chtml.js", "tex-mml-svg.js",
            "tex-svg-full.js"}
"""The other combined builds: not loaded by the pages."""


def mathjax_root() -> Path:
    """The ``es5`` folder of the installed MathJax (``pip install django-static-mathjax``)."""
    try:
        import mathjax
    except ImportError:
        raise PluginError("MathJax is not installed: pip install -e '.[dev]' "
                          "(it comes from the django-static-mathjax wheel)") from None
    root = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (root / BUNDLE).is_file():
        raise PluginError(f"{root / BUNDLE} is missing: reinstall django-static-mathjax")
    return root


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add MathJax's files to the site as ``mathjax/...``."""
    root = mathjax_root()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not (len(rel.parts) == 1 and rel.name in SKIP_TOP):
            files.append(File.generated(config, f"mathjax/{rel.as_posix()}",
                                        abs_src_path=str(path)))
    return files
