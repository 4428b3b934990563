"""Small habits shared by the dialogs."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QPushButton

__all__ = ["make_default"]


def make_default(button: QPushButton, dialog: QDialog) -> None:
    """Enter presses ``button`` wherever the focus is (a spin box, a list): no other button of ``dialog``
    takes Enter when it has the focus. Call it once the dialog holds its buttons: a default set on a
    button before it sits in the dialog does not hold."""
    for other in dialog.findChildren(QPushButton):
        other.setAutoDefault(other is button)
    button.setDefault(True)
