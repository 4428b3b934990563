"""The banner across the top of the workspace while the live connection is down: "Connection lost —
reconnecting in 4 s…", counting down; gone once connected again. The live channel reconnects by itself
(with backoff) and every subscription catches up, so the banner only tells; when the server refused the
session, it offers to sign in again."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from workbench.api import ChannelState, StateChange

__all__ = ["QtConnectionBanner"]


class QtConnectionBanner(QFrame):
    """Follows the live channel's state changes given to :meth:`show_change`."""

    sig_sign_in_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setStyleSheet("QFrame#banner { background: #fff3cd; border-bottom: 1px solid #d4a72c; }")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setStyleSheet("color: #5c4400;")
        self.sign_in = QPushButton("&Sign in again")
        self.sign_in.clicked.connect(self.sig_sign_in_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 12, 6)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.sign_in)
        self._change = StateChange(ChannelState.CONNECTED)
        self._retry_at: float | None = None
        self._tick = QTimer(self)
        self._tick.setInterval(500)
        self._tick.timeout.connect(self._on_tick_timeout)
        self.setVisible(False)

    def show_change(self, change: StateChange) -> None:
        self._change = change
        self._retry_at = None if change.retry_in is None else time.monotonic() + change.retry_in
        lost = change.state in (ChannelState.RECONNECTING, ChannelState.SIGNED_OUT)
        self.setVisible(lost)
        self.sign_in.setVisible(change.state is ChannelState.SIGNED_OUT)
        if change.state is ChannelState.RECONNECTING:
            self._tick.start()
        else:
            self._tick.stop()
        self._on_tick_timeout()

    def _on_tick_timeout(self) -> None:
        change = self._change
        if change.state is ChannelState.SIGNED_OUT:
            self.text.setText(
                "<b>Signed out:</b> the server ended this session. Sign in again to go on working."
            )
        elif change.state is ChannelState.RECONNECTING:
            left = 0.0 if self._retry_at is None else max(0.0, self._retry_at - time.monotonic())
            when = f"reconnecting in {left:.0f} s…" if left >= 1 else "reconnecting…"
            self.text.setText(
                f"<b>Connection lost</b> — {when}<br>Progress and badges catch up once it is back."
            )
            self.text.setToolTip(change.reason)  # the technical reason, for whoever asks
