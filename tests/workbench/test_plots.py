"""The plots' tick chooser: round values, no more than the axis has room for, whole counts only."""

from __future__ import annotations

import itertools

import pytest

from workbench.plots import nice_ticks


@pytest.mark.parametrize("most", [2, 3, 4, 5, 8, 12])
@pytest.mark.parametrize(("low", "high"), [(1016.0, 10410.0), (0.0, 1.0), (31.7, 112.9), (0.0, 2.0)])
def test_ticks_are_round_values_in_the_range_no_more_than_fit(low: float, high: float, most: int) -> None:
    ticks = nice_ticks(low, high, most)
    assert 1 <= len(ticks) <= most
    assert all(low <= tick <= high for tick in ticks)
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) <= 1  # evenly spaced
    for step in steps:
        assert f"{step:.1e}"[:3] in ("1.0", "2.0", "5.0"), step  # 1, 2 or 5 times a power of ten


def test_room_for_four_labels_on_areas_up_to_ten_thousand_gives_round_thousands() -> None:
    assert nice_ticks(1016.0, 10410.0, 4) == [5000.0, 10000.0]
    assert nice_ticks(1016.0, 10410.0, 6) == [2000.0, 4000.0, 6000.0, 8000.0, 10000.0]


def test_counts_get_whole_ticks_only() -> None:
    assert nice_ticks(0, 2, 8) == [0.0, 0.5, 1.0, 1.5, 2.0]  # a circularity or a length may
    assert nice_ticks(0, 2, 8, integer=True) == [0.0, 1.0, 2.0]  # a count of spheroids may not
    assert nice_ticks(0, 5, 20, integer=True) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert nice_ticks(0, 37, 5, integer=True) == [0.0, 10.0, 20.0, 30.0]


def test_an_empty_range_has_one_tick() -> None:
    assert nice_ticks(3.0, 3.0, 5) == [3.0]
