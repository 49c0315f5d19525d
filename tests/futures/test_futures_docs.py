"""The futures page: snippet ranges start where their expect comments say, and every equation
number cited in marketsim/futures exists on the page."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "marketsim" / "futures.md"


def test_snippet_ranges_are_honest() -> None:
    text = PAGE.read_text()
    pairs = re.findall(r"<!-- expect: (.+?) -->\s*```python\s*--8<-- \"([^\"]+):(\d+):(\d+)\"",
                       text)
    assert len(pairs) >= 8
    for expected, path, start, end in pairs:
        lines = (ROOT / path).read_text().splitlines()
        assert int(start) <= int(end) <= len(lines), path
        assert expected in lines[int(start) - 1], (path, start, expected)


def test_cited_equations_exist_on_the_page() -> None:
    page = PAGE.read_text()
    cited: set[str] = set()
    for path in (ROOT / "marketsim" / "futures").glob("*.py"):
        for match in re.finditer(r"eqs?\. ((?:\(\d+'?\)(?:, |-| and )?)+)", path.read_text()):
            cited.update(re.findall(r"\d+'?", match.group(1)))
    assert {"1", "2", "3", "4", "6", "7", "9", "10", "11"} <= cited
    missing = {n for n in cited if f"({n})" not in page}
    assert not missing, missing
