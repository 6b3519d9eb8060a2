"""Every code block of docs/writing-plugins.md runs.

The page is cut into its `## ` sections; the ```python blocks of one section run top to bottom in
one fresh namespace, in an empty working folder. ```toml blocks are parsed: a `[project]` table
must declare an `embedtune` entry point for an `embedtune-*` distribution, anything else must be a
valid pipeline config. No other kind of code block is allowed, so every block is checked. A new
section is picked up by these tests as it is.
"""

import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DOC = Path(__file__).resolve().parent.parent / "docs" / "writing-plugins.md"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.M | re.S)


def sections():
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    out = [("(introduction)", parts[0])]
    out += [(parts[i].strip(), parts[i + 1]) for i in range(1, len(parts), 2)]
    return out


def blocks(body):
    return [(lang.strip(), code) for lang, code in FENCE.findall(body)]


SECTIONS = sections()
WITH_CODE = [(title, body) for title, body in SECTIONS if blocks(body)]


def test_the_page_has_the_sections_pack_authors_need():
    titles = [title for title, _ in SECTIONS]
    for needed in ("Start from the scaffold", "Register components", "Write a negative miner", "Test a pack",
                   "Publish a pack"):
        assert needed in titles
    assert len(WITH_CODE) >= 5


def test_every_code_block_is_python_or_toml():
    for title, body in SECTIONS:
        for lang, _ in blocks(body):
            assert lang in ("python", "toml"), f"section '{title}': a ```{lang} block cannot be run by the tests"


@pytest.mark.parametrize("title,body", WITH_CODE, ids=[t for t, _ in WITH_CODE])
def test_section_code_runs(title, body, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"writing_plugins_doc_{re.sub(r'[^a-z]+', '_', title.lower())}"}
    for number, (lang, code) in enumerate(blocks(body), 1):
        if lang == "python":
            exec(compile(code, f"{DOC.name} [{title}] block {number}", "exec"), namespace)
        else:
            data = tomllib.loads(code)
            if "project" in data:
                assert data["project"]["name"].startswith("embedtune-")
                assert "embedtune" in data["project"]["dependencies"]
                assert data["project"]["entry-points"]["embedtune"]
            else:
                from embedtune_core.config.schema import RunConfig

                RunConfig.from_dict(data)
