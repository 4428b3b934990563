"""Review and segmentation states of an image, and the rules for changing the review state.

``segmentation_status`` says whether outlines exist (``none``; ``queued``/``running``/``failed`` belong to
jobs, part 2; ``done`` once a segmentation is saved). ``review_status`` is a person's verdict: every image
starts ``unreviewed``; an editor may mark it ``accepted``, ``needs_fix`` or ``rejected``, or reset it.
Accepting needs a segmentation to accept; ``needs_fix`` and ``rejected`` need a comment saying why.
Saving a new segmentation version of an accepted image sends it back to ``unreviewed``.

A verdict is about the outlines the reviewer saw: it names the segmentation version looked at (0 for an
image without one), and is refused while another version is current (:func:`check_reviewed_version`), so
nobody accepts outlines they never saw. Every verdict is kept in the image's review history, with who gave
it, when, the comment and the version.
"""

from __future__ import annotations

import enum

from server.domain.errors import ReviewRuleError, StaleReviewError

__all__ = [
    "MAX_COMMENT_LENGTH",
    "ReviewStatus",
    "SegmentationStatus",
    "check_review",
    "check_reviewed_version",
    "review_after_save",
]

MAX_COMMENT_LENGTH = 2000


class SegmentationStatus(enum.StrEnum):
    NONE = "none"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ReviewStatus(enum.StrEnum):
    UNREVIEWED = "unreviewed"
    ACCEPTED = "accepted"
    NEEDS_FIX = "needs_fix"
    REJECTED = "rejected"


def check_review(status: ReviewStatus, comment: str | None, has_segmentation: bool, image_name: str) -> None:
    """Raise :class:`ReviewRuleError` when ``status`` may not be set on this image with this comment."""
    if comment is not None and len(comment) > MAX_COMMENT_LENGTH:
        raise ReviewRuleError(f"comment: {len(comment)} characters, at most {MAX_COMMENT_LENGTH} allowed")
    if status is ReviewStatus.ACCEPTED and not has_segmentation:
        raise ReviewRuleError(f"{image_name}: has no segmentation to accept; segment or outline it first")
    if status in (ReviewStatus.NEEDS_FIX, ReviewStatus.REJECTED) and not (comment or "").strip():
        raise ReviewRuleError(f"{image_name}: marking it {status.value} needs a comment saying why")


def check_reviewed_version(image_id: int, image_name: str, reviewed: int, current: int) -> None:
    """Raise :class:`StaleReviewError` unless the version reviewed is the image's current one."""
    if reviewed != current:
        raise StaleReviewError(image_id, image_name, reviewed, current)


def review_after_save(current: ReviewStatus) -> ReviewStatus:
    """The review state after a new segmentation version is saved: an accepted image needs a new look."""
    return ReviewStatus.UNREVIEWED if current is ReviewStatus.ACCEPTED else current
