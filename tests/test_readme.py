"""The README as a new user meets it: it starts with the title and the two set-up commands, every
Python snippet runs as written (names resolve, shapes agree) and every shipped file it names exists."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_title_then_exactly_two_commands():
    lines = README.splitlines()
    assert lines[0] == "# memxbar"
    block = re.search(r"```sh\n(.*?)```", README, flags=re.S)
    assert README.index("```sh") < README.index("\n## ")  # the first thing after the title
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["make report", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_python_snippet_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(SNIPPETS[index], f"README.md snippet {index}", "exec"), {"__name__": "readme"})


def test_named_files_exist():
    named = set(re.findall(r"`((?:training/configs|studies|notebooks|bench)/[\w./-]+\.(?:toml|ipynb|py))`", README))
    assert len(named) >= 8
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, missing


def test_snippets_found():
    assert len(SNIPPETS) >= 4  # devices, crossbar, tiled arrays, bring your own model
