"""The futures page: every equation number cited in marketsim/futures exists on the page.

(Included code sections are checked for every page by tests/test_docs.py.)"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "marketsim" / "futures.md"


def test_cited_equations_exist_on_the_page() -> None:
    page = PAGE.read_text()
    cited: set[str] = set()
    for path in (ROOT / "marketsim" / "futures").glob("*.py"):
        for match in re.finditer(r"eqs?\. ((?:\(\d+'?\)(?:, |-| and )?)+)", path.read_text()):
            cited.update(re.findall(r"\d+'?", match.group(1)))
    assert {"1", "2", "3", "4", "6", "7", "9", "10", "11"} <= cited
    missing = {n for n in cited if f"({n})" not in page}
    assert not missing, missing
