"""The market-making page: every equation number cited in marketsim/mm exists on the page.

(Included code sections are checked for every page by tests/test_docs.py.)"""

import re

import pytest

from .conftest import ROOT

PAGE = ROOT / "docs" / "marketsim" / "market-making.md"


def test_cited_equations_exist():
    tags = set(re.findall(r"\\tag\{(\d+)\}", PAGE.read_text()))
    cited = set()
    for path in (ROOT / "marketsim" / "mm").glob("*.py"):
        pattern = r"market-making\.md, eqs?\. \(([\d\)\(\-, and]+)"
        for match in re.finditer(pattern, path.read_text()):
            cited.update(re.findall(r"\d+", match.group(1)))
    if not cited:
        pytest.fail("no equation citations found")
    assert cited <= tags, cited - tags
