"""The market-making page: snippet ranges start where their expect comments say, and every
equation number cited in marketsim/mm exists on the page."""

import re

import pytest

from .conftest import ROOT

PAGE = ROOT / "docs" / "marketsim" / "market-making.md"


def test_snippet_ranges_are_honest():
    text = PAGE.read_text()
    pairs = re.findall(r"<!-- expect: (.+?) -->\s*```python\s*--8<-- \"([^\"]+):(\d+):(\d+)\"",
                       text)
    assert len(pairs) >= 5
    for expected, path, start, end in pairs:
        lines = (ROOT / path).read_text().splitlines()
        assert int(start) <= int(end) <= len(lines), path
        assert expected in lines[int(start) - 1], (path, start, expected)


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
