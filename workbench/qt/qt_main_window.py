"""The window: the start screen, then the workspace (projects on the left, the gallery in the centre, a
toolbar for import, segment, export and the cluster panel, a dock with the running tasks and the notices).

Its life around one :class:`~workbench.workspace.Workspace`: opened by the start screen; its live
connection's state drives the banner; in offline mode the server process is watched and a crash shows
its last log lines with a Restart; in lab mode the session is renewed before it expires. Closing the
window closes the workspace first (stopping the offline server), asking before it stops running work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from workbench.api import ChannelState, NotSignedInError, StateChange
from workbench.qt.qt_cluster_panel import QtClusterPanel
from workbench.qt.qt_connection_banner import QtConnectionBanner
from workbench.qt.qt_export import QtExport
from workbench.qt.qt_gallery import QtGallery
from workbench.qt.qt_import import QtImport
from workbench.qt.qt_notices import QtNotices
from workbench.qt.qt_projects import QtProjects
from workbench.qt.qt_quit_question import ask_to_quit
from workbench.qt.qt_review_page import QtReviewPage
from workbench.qt.qt_segment import QtSegment
from workbench.qt.qt_server_crash import QtServerCrash
from workbench.qt.qt_start_screen import QtStartScreen
from workbench.qt.qt_tasks import QtTasks
from workbench.qt.settings import WindowSettings
from workbench.review import ReviewSession
from workbench.samples import SAMPLE_PROJECT, open_sample_project
from workbench.saving import Saver
from workbench.sessions import SavedSessions, renew_if_due
from workbench.startup import StartOptions
from workbench.tasks import Level, Notice, Notices, Task, Tasks, notice_of
from workbench.workspace import Mode, Workspace, open_offline

__all__ = ["QtMainWindow"]

logger = logging.getLogger(__name__)

FLUSH_ON_CLOSE_S = 10.0
"""How long closing waits for the last edits to reach the server (what does not stays in the journal)."""
RENEW_EVERY_MS = 60 * 60 * 1000
"""How often a lab session is checked for renewal (it is renewed when less than two days are left)."""


class QtMainWindow(QMainWindow):
    sig_workspace_opened = Signal(object)
    sig_closed = Signal()
    """The workspace is closed (the offline server stopped) and the window is gone."""

    def __init__(
        self,
        options: StartOptions | None = None,
        settings: WindowSettings | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.options = options or StartOptions()
        self.settings = settings or WindowSettings()
        self.notices = Notices()
        self.tasks = Tasks(self.notices)
        self.sessions = SavedSessions(self.options.config_dir)
        self.workspace: Workspace | None = None
        self.saver: Saver | None = None
        self._opening_image: Task | None = None
        self._docks_before_review: dict[QDockWidget, bool] = {}
        """The side docks' visibility before the review page hid them, restored when it is left."""
        """Saves the review canvas's edits on the workspace's server (one per workspace)."""
        self.current_project: tuple[int, str] | None = None
        """The project the gallery shows: (id, name)."""
        self._views: dict[str, QWidget] = {}
        self._watching: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._closed = False
        self.setWindowTitle("SpheroSeg Workbench")
        self._build()
        self._renew_timer = QTimer(self)
        self._renew_timer.setInterval(RENEW_EVERY_MS)
        self._renew_timer.timeout.connect(self._on_renew_timer_timeout)
        geometry = self.settings.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1200, 800)

    # building

    def _build(self) -> None:
        self.start_screen = QtStartScreen(
            self.options,
            self.sessions,
            self.tasks,
            on_channel=self._on_channel_changed,
            recent_servers=self.settings.recent_servers(),
        )
        self.start_screen.sig_opened.connect(self._on_start_screen_opened)
        self.banner = QtConnectionBanner()
        self.banner.sig_sign_in_requested.connect(self._on_banner_sign_in_requested)
        self.crash = QtServerCrash()
        self.crash.sig_restart_requested.connect(self._on_crash_restart_requested)
        self.workspace_page = QWidget()
        self._page_layout = QVBoxLayout(self.workspace_page)
        self._page_layout.setContentsMargins(0, 0, 0, 0)
        self._page_layout.addWidget(self.banner)
        self._page_layout.addWidget(self.crash)
        self.views_holder = QWidget()
        QVBoxLayout(self.views_holder).setContentsMargins(0, 0, 0, 0)
        self._page_layout.addWidget(self.views_holder, 1)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.start_screen)
        self.stack.addWidget(self.workspace_page)
        self.setCentralWidget(self.stack)
        self._build_toolbar()
        self._build_docks()
        self.mode_label, self.url_label, self.user_label = QLabel(), QLabel(), QLabel()
        for label in (self.mode_label, self.url_label, self.user_label):
            self.statusBar().addPermanentWidget(label)
        self._show_status()

    def _build_toolbar(self) -> None:
        self.toolbar = QToolBar("Workspace")
        self.toolbar.setObjectName("workspace-toolbar")
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.import_action = self._action(
            "&Import…", "Ctrl+I", "Import image files or folders into the project"
        )
        self.import_action.triggered.connect(self._on_import_triggered)
        self.segment_action = self._action(
            "&Segment…", "Ctrl+Shift+S", "Segment the selected or filtered images"
        )
        self.segment_action.triggered.connect(self._on_segment_triggered)
        self.export_action = self._action("&Export…", "Ctrl+E", "Export outlines and measurements")
        self.export_action.triggered.connect(self._on_export_triggered)
        self.cluster_action = self._action("&Cluster", "Ctrl+K", "Show or hide the compute cluster panel")
        self.cluster_action.setCheckable(True)
        self.activity_action = self._action("&Activity", "Ctrl+J", "Show or hide running tasks and notices")
        self.activity_action.setCheckable(True)
        self.toolbar.setVisible(False)
        self.addToolBar(self.toolbar)

    def _action(self, text: str, shortcut: str, tip: str) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(f"{tip} ({shortcut})")
        action.setStatusTip(tip)
        action.setEnabled(False)
        self.toolbar.addAction(action)
        return action

    def _build_docks(self) -> None:
        self.qt_tasks = QtTasks(self.tasks)
        self.qt_notices = QtNotices(self.notices)
        tabs = QTabWidget()
        tabs.addTab(self.qt_tasks, "&Tasks")
        tabs.addTab(self.qt_notices, "&Notices")
        self.activity_dock = QDockWidget("Activity")
        self.activity_dock.setObjectName("activity-dock")
        self.activity_dock.setWidget(tabs)
        self.activity_dock.setMinimumWidth(300)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.activity_dock)
        self.resizeDocks([self.activity_dock], [300], Qt.Orientation.Horizontal)
        self.activity_dock.setVisible(False)  # shown with the workspace, or when a problem is noticed
        self.activity_action.toggled.connect(self.activity_dock.setVisible)
        self.activity_dock.visibilityChanged.connect(self.activity_action.setChecked)
        self.cluster_dock = QDockWidget("Cluster")
        self.cluster_dock.setObjectName("cluster-dock")
        self.cluster_dock.setMinimumWidth(300)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.cluster_dock)
        self.cluster_dock.setVisible(False)
        self.cluster_action.toggled.connect(self.cluster_dock.setVisible)
        self.cluster_dock.visibilityChanged.connect(self.cluster_action.setChecked)
        self.notices.changed.connect(self._on_notices_changed)
        self.tasks.changed.connect(self._on_tasks_changed)
        self._notice_tabs = tabs

    def _build_workspace_views(self, workspace: Workspace) -> None:
        """The views over ``workspace``, rebuilt for each workspace opened (a restarted offline server is a
        new one)."""
        self._restore_docks_after_review()  # the new views open on the gallery
        for name, view in self._views.items():
            if name == "review":
                assert isinstance(view, QtReviewPage)
                view.close_page()
            view.deleteLater()
        assert workspace.saver is not None, "an open workspace has its saver"
        self.saver = workspace.saver
        self.projects = QtProjects(workspace, self.tasks)
        self.projects.sig_opened.connect(self._on_projects_opened)
        self.gallery = QtGallery(workspace, self.tasks)
        self.gallery.sig_files_dropped.connect(self._on_gallery_files_dropped)
        self.gallery.setEnabled(False)  # until a project is opened
        cluster = QtClusterPanel(workspace, self.tasks)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.projects)
        splitter.addWidget(self.gallery)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([360, 900])
        self.review = QtReviewPage(ReviewSession(workspace, self.saver), self.tasks)
        self.review.sig_back_requested.connect(self._on_review_back_requested)
        self.gallery.sig_image_activated.connect(self._on_gallery_image_activated)
        self.pages = QStackedWidget()
        self.pages.addWidget(splitter)
        self.pages.addWidget(self.review)
        layout = self.views_holder.layout()
        assert layout is not None
        layout.addWidget(self.pages)
        self.cluster_dock.setWidget(cluster)
        self._views = {
            "review": self.review,
            "pages": self.pages,
            "splitter": splitter,
            "projects": self.projects,
            "gallery": self.gallery,
            "cluster": cluster,
        }
        self._reopen_last_project(workspace)

    # the review page: opened on the image activated in the gallery, Esc or Back returns to it

    def _on_gallery_image_activated(self, image_id: int) -> None:
        if self.gallery.project_id is not None:  # the review bar walks what the gallery shows
            self.review.walk_images(
                self.gallery.project_id, self.gallery.image_filter(), self.gallery.image_order()
            )
        self._hide_docks_for_review()
        self.pages.setCurrentWidget(self.review)
        if self._opening_image is not None:
            self._opening_image.cancel()  # the newest activation wins
        self._opening_image = self.tasks.start(
            "Opening the image", lambda task: self.review.open_image(image_id)
        )

    def _on_review_back_requested(self) -> None:
        self.pages.setCurrentWidget(self._views["splitter"])  # the gallery as it was left, scrolled there
        self._restore_docks_after_review()
        self.gallery.view.setFocus()

    def _hide_docks_for_review(self) -> None:
        """The canvas gets the window's whole width: a reviewer compares outlines with pixels, and the
        docks (tasks, notices, cluster) would take a quarter of it. Ctrl+J still shows the activity, and a
        new problem still opens it (``_on_notices_changed``)."""
        if self._docks_before_review:  # already on the review page (the next image)
            return
        for dock in (self.activity_dock, self.cluster_dock):
            self._docks_before_review[dock] = dock.isVisible()
            dock.setVisible(False)

    def _restore_docks_after_review(self) -> None:
        for dock, visible in self._docks_before_review.items():
            dock.setVisible(visible)
        self._docks_before_review = {}

    def _reopen_last_project(self, workspace: Workspace) -> None:
        """The project last open on this server, opened again once the list has loaded."""
        recent = self.settings.recent_projects(workspace.url)
        if not recent or self.options.sample_project:
            return

        async def reopen(task: Task) -> None:
            await self.projects.current_load().wait()  # the list's first read, not a second one
            for project in self.projects.projects.items:
                if project.id == recent[0]:
                    self.projects.select(project.id)
                    self._on_projects_opened(project.id, project.name)

        self.tasks.start("Opening the last project", reopen)

    # the toolbar's actions open their dialogs on the open project (the gallery's selection and filter)

    def _open_project_id(self) -> int | None:
        if self.current_project is None or self.workspace is None:
            self.notices.add(
                Notice(Level.INFO, "No project is open.", "Open one in the list on the left, or create one.")
            )
            return None
        return self.current_project[0]

    def _on_import_triggered(self) -> None:
        self._open_import([])

    def _on_gallery_files_dropped(self, paths: list[Path]) -> None:
        self._open_import(paths)

    def _open_import(self, paths: list[Path]) -> None:
        project_id = self._open_project_id()
        if project_id is None or self.workspace is None:
            return
        dialog = QtImport(self.workspace, self.tasks, project_id, parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.sig_imported.connect(self._on_import_imported)
        if paths:
            dialog.add_paths(paths)
        dialog.open()

    def _on_import_imported(self, image_ids: list[int]) -> None:
        self.projects.reload()  # the counts
        if self.current_project is not None:
            self.gallery.show_project(self.current_project[0])

    def _on_segment_triggered(self) -> None:
        self._open_on_gallery_scope(QtSegment)

    def _on_export_triggered(self) -> None:
        self._open_on_gallery_scope(QtExport)

    def _open_on_gallery_scope(self, dialog_class: type[QtSegment] | type[QtExport]) -> None:
        """Open ``dialog_class`` on the open project, offering the gallery's selection and filter."""
        project_id = self._open_project_id()
        if project_id is None or self.workspace is None:
            return
        selected, shown = self.gallery.selected_image_ids() or None, self.gallery.image_filter()
        dialog = dialog_class(self.workspace, self.tasks, project_id, selected, shown, parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def _on_projects_opened(self, project_id: int, name: str) -> None:
        """A project was opened: it becomes the gallery's, and the first of the recent projects."""
        if self.workspace is not None:
            self.settings.add_recent_project(self.workspace.url, project_id)
        self.current_project = (project_id, name)
        self.setWindowTitle(f"{name} — SpheroSeg Workbench")
        self.gallery.setEnabled(True)
        self.gallery.show_project(project_id)

    # opening a workspace

    def _on_start_screen_opened(self, workspace: Workspace) -> None:
        logger.info(
            "signed in to %s as %s (%s)", workspace.url, workspace.user.username, workspace.mode.value
        )
        self.workspace = workspace
        self.crash.setVisible(False)
        self.banner.show_change(workspace.live.state)
        self._build_workspace_views(workspace)
        self.stack.setCurrentWidget(self.workspace_page)
        self.toolbar.setVisible(True)
        for action in (self.import_action, self.segment_action, self.export_action, self.cluster_action):
            action.setEnabled(True)
        self.activity_action.setEnabled(True)
        self.activity_dock.setVisible(True)
        self._show_status()
        if workspace.mode is Mode.LAB:
            self.settings.add_recent_server(workspace.url)
            self._on_renew_timer_timeout()
            self._renew_timer.start()
        elif workspace.offline is not None and workspace.offline.owned:
            self._watching = asyncio.ensure_future(self._watch_offline_server(workspace))
        if self.options.sample_project:
            self.tasks.start("Opening the sample project", self._open_sample_project)
        self.sig_workspace_opened.emit(workspace)

    async def _open_sample_project(self, task: Task) -> None:
        assert self.workspace is not None
        project_id = await open_sample_project(self.workspace, task)
        self._on_projects_opened(project_id, SAMPLE_PROJECT)

    def _show_status(self) -> None:
        workspace = self.workspace
        if workspace is None:
            texts = ("Not connected", "", "")
        else:
            mode = "Offline (this computer)" if workspace.mode is Mode.OFFLINE else "Lab server"
            role = " (admin)" if workspace.is_admin else ""
            texts = (mode, workspace.url, f"Signed in as {workspace.user.username}{role}")
        for label, text in zip((self.mode_label, self.url_label, self.user_label), texts, strict=True):
            label.setText(text)
            label.setVisible(bool(text))

    # the connection

    def _on_channel_changed(self, change: StateChange) -> None:
        if not self.crash.isVisible():  # a dead offline server says more than a lost connection
            self.banner.show_change(change)

    def _on_banner_sign_in_requested(self) -> None:
        self.tasks.start("Signing out", self._back_to_start)

    async def _back_to_start(self, task: Task) -> None:
        if self.workspace is not None:
            self.sessions.forget(self.workspace.url)
            await self._close_workspace(stop_server=True)
        self.stack.setCurrentWidget(self.start_screen)
        self.toolbar.setVisible(False)
        self._show_status()

    async def _watch_offline_server(self, workspace: Workspace) -> None:
        """Until the offline server of ``workspace`` exits; if it did by itself, say so with its log."""
        assert workspace.offline is not None
        status = await workspace.offline.wait()
        if self.workspace is not workspace or self._closing is not None:
            return  # stopped on purpose
        logger.error("the offline server exited with status %s", status)
        self.banner.setVisible(False)
        self.crash.show_crash(status, workspace.offline.log_tail())
        self.views_holder.setEnabled(False)

    def _on_crash_restart_requested(self) -> None:
        self.crash.set_restarting()
        self.tasks.start("Restarting the offline server", self._restart_offline_server)

    async def _restart_offline_server(self, task: Task) -> None:
        """Start the server again on the same data folder. Back on its URL (the port it had), the session
        stands and the live channel reconnects, so every view carries on: a review page with its edits, a
        job's task, the gallery. On another URL (its port was taken meanwhile) the window signs in anew
        and builds its views again."""
        workspace = self.workspace
        assert workspace is not None and workspace.offline is not None
        server = workspace.offline
        try:
            started = await server.start()
            if started.url != workspace.url:
                await workspace.close(stop_server=False)
                workspace = await open_offline(
                    cache_dir=self.options.cache_dir,
                    on_channel=self._on_channel_changed,
                    server=server,
                    journal_dir=self.options.journal_dir,
                )
        except Exception as error:
            logger.exception("restarting the offline server failed")
            self.crash.show_crash(1, server.log_tail())
            self.crash.title.setText(f"<b>The offline server did not start again:</b> {error}")
            return
        self.views_holder.setEnabled(True)
        if workspace is not self.workspace:
            self._on_start_screen_opened(workspace)
            return
        workspace.started = started
        self.crash.setVisible(False)
        workspace.live.reconnect_now()
        self._watching = asyncio.ensure_future(self._watch_offline_server(workspace))

    def _on_renew_timer_timeout(self) -> None:
        if self.workspace is not None and self.workspace.mode is Mode.LAB:
            self.tasks.start("Renewing the session", self._renew_session)

    async def _renew_session(self, task: Task) -> None:
        workspace = self.workspace
        assert workspace is not None
        expires_at = await renew_if_due(workspace.client, workspace.user.expires_at)
        if expires_at != workspace.user.expires_at:
            workspace.user = replace(workspace.user, expires_at=expires_at)
            self.sessions.save(workspace.url, workspace.user.username, workspace.user.token, expires_at)
            logger.info("session on %s renewed until %s", workspace.url, expires_at)

    def _on_tasks_changed(self, task: Task) -> None:
        """Work refused because the session ended (signed out elsewhere, expired, account disabled):
        the banner offers to sign in again, as when the live connection is refused for its token."""
        if isinstance(task.error, NotSignedInError) and self.workspace is not None:
            self.banner.show_change(StateChange(ChannelState.SIGNED_OUT, str(task.error)))

    def _on_notices_changed(self, items: list[Notice]) -> None:
        if items and items[-1].level is not Level.INFO:  # a new problem: show it
            self.activity_dock.setVisible(True)
            self._notice_tabs.setCurrentWidget(self.qt_notices)

    # closing

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802  (Qt's name)
        self.settings.save_geometry(self.saveGeometry())
        if self._closed or self.workspace is None:
            self._closed = True
            self.tasks.cancel_all()
            event.accept()
            self.sig_closed.emit()
            return
        event.ignore()  # the workspace closes first; then the window does
        if self._closing is not None:
            return
        if self.tasks.running:
            self._ask_before_closing()
        else:
            self._start_closing()

    def close_without_asking(self) -> None:
        """Close as the close button does, running work stopped without the question."""
        if self._closed or self.workspace is None:
            self.close()
        elif self._closing is None:
            self._start_closing()

    def _ask_before_closing(self) -> None:
        offline = self.workspace is not None and self.workspace.mode is Mode.OFFLINE
        names = [task.name for task in self.tasks.running]
        self.close_question = ask_to_quit(self, names, offline, self._start_closing)

    def _start_closing(self) -> None:
        self._closing = asyncio.ensure_future(self._close_and_quit())

    async def _close_and_quit(self) -> None:
        self.tasks.cancel_all()
        self.statusBar().showMessage("Closing: stopping the offline server…")
        await self._close_workspace(stop_server=True)
        self._closed = True
        self.close()

    async def _close_workspace(self, stop_server: bool) -> None:
        workspace, self.workspace = self.workspace, None
        self._renew_timer.stop()
        saver, self.saver = self.saver, None
        if saver is not None:
            try:  # the last edits to the server; what cannot go stays in the journal for the next start
                await asyncio.wait_for(saver.flush(), FLUSH_ON_CLOSE_S)
            except Exception:
                logger.warning("edits not sent before closing: kept on this computer", exc_info=True)
        if self._watching is not None:
            self._watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watching
            self._watching = None
        if workspace is not None:
            try:
                await workspace.close(stop_server=stop_server)
            except (
                Exception
            ) as error:  # the window must still close; the user reads why the server did not stop
                logger.exception("closing the workspace failed")
                self.notices.add(notice_of(error, "Closing the workspace"))
