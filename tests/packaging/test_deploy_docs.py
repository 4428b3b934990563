"""docs/deploy.md, checked against the things it tells an admin to type and to look for.

An admin follows the page without reading the code, so every ``spheroseg`` command line in it must parse
with the program's own parser, every ``SPHEROSEG_`` name must be a setting the server reads, every file of
packaging/lab it names must exist, and every alert the lab raises must be explained there.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

from cluster.model.card import MODEL_DIR_ENV
from server.settings import Settings
from tests.packaging.lab import check_command

REPO = Path(__file__).resolve().parents[2]
PAGE = (REPO / "docs" / "deploy.md").read_text()
EDGE = {"SPHEROSEG_EDGE_LISTEN", "SPHEROSEG_REPLICA_1", "SPHEROSEG_REPLICA_2", "SPHEROSEG_EDGE_CACHE"}


def command_lines(page: str) -> list[list[str]]:
    """Each ``spheroseg ...`` command in the page's sh blocks, continuation lines joined, comments cut."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", page, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            for start, word in enumerate(words):
                # the program, not the user or database of that name: first, run by compose, or a path
                run = start == 0 or words[start - 1] in {"migrate", "server1", "server2"}
                if (word == "spheroseg" and run) or word.endswith("/bin/spheroseg"):
                    commands.append(["spheroseg", *words[start + 1 :]])
                    break
    return commands


def test_every_spheroseg_command_in_the_page_parses() -> None:
    commands = command_lines(PAGE)
    assert len(commands) >= 7
    assert commands[next(i for i, c in enumerate(commands) if c[1:3] == ["cluster", "deploy"])][:5] == [
        "spheroseg",
        "cluster",
        "deploy",
        "--backend",
        "slurm",
    ]
    for command in commands:
        check_command(command)


def test_a_wrong_command_in_the_page_would_be_caught() -> None:
    (command,) = command_lines("```sh\nspheroseg cluster deploy --backend slurm --partitoin gpu\n```\n")
    with pytest.raises(click.UsageError):
        check_command(command)


def test_every_setting_the_page_names_is_real() -> None:
    settings = {f"SPHEROSEG_{name.upper()}" for name in Settings.model_fields}
    named = set(re.findall(r"SPHEROSEG_[A-Z0-9_]*[A-Z0-9]", PAGE))
    assert named, "the page names no setting"
    assert not named - settings - EDGE - {MODEL_DIR_ENV}, sorted(named - settings - EDGE - {MODEL_DIR_ENV})


def test_every_file_of_the_lab_the_page_names_exists() -> None:
    for path in set(re.findall(r"packaging/lab/[\w./-]*[\w-]", PAGE)):
        assert (REPO / path).exists(), path


def test_every_alert_is_explained() -> None:
    rules = yaml.safe_load((REPO / "packaging" / "lab" / "alerts.yml").read_text())["groups"][0]["rules"]
    for rule in rules:
        assert f"| `{rule['alert']}` |" in PAGE, rule["alert"]
