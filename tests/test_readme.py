"""The README's Python snippets are real: each one runs, and its `# value` comments hold."""

import contextlib
import io
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("block", BLOCKS)
def test_readme_block_runs_and_prints_what_it_says(block):
    expected = []
    for line in block.splitlines():
        m = re.match(r"\s*print\((.*)\)\s*# (.+)$", line)
        if m:
            expected.append(m.group(2).strip())
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, str(README), "exec"), {})
    printed = out.getvalue().splitlines()
    assert printed == expected
