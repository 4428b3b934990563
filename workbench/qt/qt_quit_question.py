"""The question asked when the window is closed while work runs: which work, and what quitting does to
it. Opened with ``open()`` (never ``exec()``: the loop goes on, and the work with it, while it is asked)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

__all__ = ["ask_to_quit"]


def ask_to_quit(
    parent: QWidget, running: list[str], offline: bool, on_quit: Callable[[], None]
) -> QMessageBox:
    """Ask (non-modally) whether to quit while the tasks named in ``running`` go on; ``on_quit`` runs if
    the user says yes. Cancel is the default: Enter or Escape keeps working."""
    question = QMessageBox(parent)
    question.setIcon(QMessageBox.Icon.Question)
    question.setWindowTitle("Quit SpheroSeg?")
    question.setText("Work is still running:")
    consequence = (
        "Quitting stops the offline server; a segmentation job carries on the next time you work offline."
        if offline
        else "Quitting stops these here; jobs on the lab server go on."
    )
    question.setInformativeText("\n".join(f"• {name}" for name in running) + "\n\n" + consequence)
    question.setStandardButtons(QMessageBox.StandardButton.Cancel)
    quit_button = question.addButton("&Quit", QMessageBox.ButtonRole.DestructiveRole)
    question.setDefaultButton(QMessageBox.StandardButton.Cancel)
    question.finished.connect(lambda _: on_quit() if question.clickedButton() is quit_button else None)
    question.open()
    return question
