"""The command lines in the README and the docs name real commands and real options.

Every ``uniaudio ...`` line in a code block of README.md and docs/ (guide included) is resolved against the
CLI's click tree: its sub-command path must exist and each ``--option`` it uses must belong to that command
or to the root. Nothing runs; this keeps the docs from drifting when an option is renamed.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import typer

from uniaudio.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
ROOT_VALUE_OPTIONS = ("--s3-endpoint", "--s3-region")


def _options(command: click.Command) -> set[str]:
    names = {"--help"}
    for param in command.params:
        names.update(param.opts)
        names.update(getattr(param, "secondary_opts", None) or ())
    return names


def _command_lines(path: Path) -> list[str]:
    """``uniaudio`` command lines inside fenced code blocks, continuation lines joined."""
    lines = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S):
        block = re.sub(r"\\\n\s*", " ", block)
        for line in block.splitlines():
            line = re.sub(r"^\s*\$\s*", "", line)
            for match in re.finditer(r"(?:^|\$\(|\s)uniaudio\s+([^#|)\n]*)", line):
                lines.append(match.group(1).strip())
    return lines


def _check(root: click.Command, line: str) -> list[str]:
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    while words and words[0].startswith("-"):
        words = words[2:] if words[0] in ROOT_VALUE_OPTIONS else words[1:]
    if not words or words[0] not in getattr(root, "commands", {}):
        return [f"unknown command in `uniaudio {line}`"] if words and re.fullmatch(r"[a-z-]+", words[0]) else []
    command: click.Command = root
    path = []
    while words and words[0] in getattr(command, "commands", {}):
        command = command.commands[words[0]]
        path.append(words.pop(0))
    if "--" in words:
        words = words[: words.index("--")]
    known = _options(command) | _options(root)
    return [f"`uniaudio {' '.join(path)}` has no option {word.split('=')[0]} (in `uniaudio {line}`)"
            for word in words if word.startswith("-") and not re.match(r"^-?\d", word)
            and word.split("=")[0] not in known]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documented_command_lines_use_real_commands_and_options(path: Path) -> None:
    root = typer.main.get_command(app)
    lines = _command_lines(path)
    problems = [p for line in lines for p in _check(root, line)]
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_renamed_option() -> None:
    root = typer.main.get_command(app)
    assert _check(root, "shards stats ./tokens --plot x.png") == []
    assert _check(root, "shards stats ./tokens --plott x.png")
    assert _check(root, "--s3-endpoint http://minio:9000 train --stage 1 --data d --output o --resume") == []
    assert _check(root, "train --stage 1 --nope")
    assert _check(root, "submit -f -- shards build a b c --whatever") == []
