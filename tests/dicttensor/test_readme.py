"""Every ``pycon`` example of packages/dicttensor/README.md runs and prints what it shows."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "packages" / "dicttensor" / "README.md"
BLOCK = re.compile(r"^```pycon\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def test_readme_examples_run() -> None:
    blocks = BLOCK.findall(README.read_text())
    assert len(blocks) >= 10
    text = "\n".join(blocks)  # one session: later blocks use names of earlier ones
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {}, "README.md", str(README), 0)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 40
    assert result.failed == 0
