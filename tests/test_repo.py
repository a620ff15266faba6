"""The repository's promises: README starts with the two set-up commands and
.ci/run runs exactly the second one."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:sh|bash)?\n(.*?)```", text, re.S)
    assert block, "README.md has no code block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_main_job_and_test_command():
    cmds = readme_commands()
    assert len(cmds) == 2
    assert cmds[0].startswith("python3 -m pip install -e .") and "autocomp-exo" in cmds[0]
    assert "pytest" in cmds[1] and "[test]" in cmds[1]


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in [line.strip() for line in ci]


def test_main_job_example_exists():
    cmd = readme_commands()[0]
    for word in cmd.split():
        if word.endswith(".c"):
            assert (ROOT / word).is_file(), word
