"""The journal of unsaved edits on disk: appended lines survive, a line cut short by a kill is skipped,
confirmed changes go, the file is the user's alone."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.journal import Journal, JournalEntry, Journals, user_journal_folder
from workbench.saving import delete, upsert

SQUARE = [[2.0, 2.0], [12.0, 2.0], [12.0, 12.0], [2.0, 12.0]]


def test_appended_changes_are_read_back_in_order_from_an_owner_only_file(tmp_path: Path) -> None:
    journal = Journals(tmp_path, "http://127.0.0.1:8000/").of(7)
    first = JournalEntry(7, 1, upsert(SQUARE, spheroid_id=3))
    second = JournalEntry(7, 1, delete(4))
    journal.append(first)
    journal.append(second)

    assert Journal(journal.path).entries() == [first, second]
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(journal.path.parent.stat().st_mode) == 0o700


def test_each_server_and_image_has_its_own_journal(tmp_path: Path) -> None:
    here, there = Journals(tmp_path, "http://a:1"), Journals(tmp_path, "http://b:1")
    here.of(1).append(JournalEntry(1, 0, delete(1)))
    here.of(2).append(JournalEntry(2, 0, delete(1)))

    assert here.image_ids() == [1, 2]
    assert there.image_ids() == []
    assert Journals(tmp_path, "http://a:1/").image_ids() == [1, 2]  # the same server, written either way


def test_a_last_line_cut_short_is_skipped_with_a_log_line_and_the_next_append_is_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal(tmp_path / "image-1.jsonl")
    kept = JournalEntry(1, 2, upsert(SQUARE, spheroid_id=1))
    journal.append(kept)
    line = JournalEntry(1, 2, delete(2)).line()
    with journal.path.open("a") as file:
        file.write(line[: len(line) // 2])  # killed mid-write

    with caplog.at_level(logging.WARNING):
        assert journal.entries() == [kept]
    assert "line 2 is incomplete" in caplog.text

    after = JournalEntry(1, 2, delete(3))
    journal.append(after)
    assert journal.entries() == [kept, after]


def test_confirmed_changes_are_removed_and_the_rest_move_to_the_new_version(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "image-1.jsonl")
    entries = [JournalEntry(1, 1, delete(k)) for k in (1, 2, 3)]
    for entry in entries:
        journal.append(entry)

    kept = journal.remove({entries[0].change_id, entries[2].change_id}, rebase_to=4)

    assert [(entry.change_id, entry.base_version) for entry in kept] == [(entries[1].change_id, 4)]
    assert journal.entries() == kept
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "image-1.jsonl",
        "image-1.lock",
    ]  # no temporary

    journal.remove({entries[1].change_id})
    assert not journal.path.exists()
    assert journal.entries() == []


def test_the_desktop_keeps_its_journals_in_the_users_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert user_journal_folder() == tmp_path / "spheroseg-workbench" / "edits"


APPENDER = """
import sys
from pathlib import Path
from workbench.journal import Journal, JournalEntry
journal = Journal(Path(sys.argv[1]))
print("ready", flush=True)
for k in range(300):
    journal.append(JournalEntry(1, 1, {"delete": k}))
"""


def test_another_workbench_appending_while_this_one_compacts_loses_no_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "image-1.jsonl")
    journal.append(JournalEntry(1, 1, delete(1000)))
    other = subprocess.Popen(
        [sys.executable, "-c", APPENDER, str(journal.path)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert other.stdout is not None and other.stdout.readline() == "ready\n"
    while other.poll() is None:
        journal.remove(set(), rebase_to=2)  # a save confirmed here, rewriting the file
    assert other.returncode == 0

    assert sorted(entry.change["delete"] for entry in journal.entries()) == [*range(300), 1000]
