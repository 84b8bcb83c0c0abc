"""Every python snippet in docs/LASP.md runs, in order, as one program."""

from __future__ import annotations

import os
import re

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "LASP.md")


def test_lasp_md_snippets_run(capsys):
    with open(DOC) as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    assert len(blocks) >= 10
    namespace: dict[str, object] = {"__name__": "lasp_md"}
    for i, code in enumerate(blocks):
        exec(compile(code, "LASP.md block %d" % (i + 1), "exec"), namespace)
