"""Smoke test of the benchmark report logic: medians, ratios, targets, rotation, Markdown (pure, no servers)."""

from __future__ import annotations

import pytest
from benchlib import report


def test_median_odd_even_and_missing():
    assert report.median([3.0, 1.0, 2.0]) == 2.0
    assert report.median([4, 1, 3, 2]) == 2.5
    assert report.median([None, 5.0, float("nan")]) == 5.0
    assert report.median([]) is None
    assert report.median([None]) is None


def test_ratio():
    assert report.ratio(1.0, 4.0) == 0.25
    assert report.ratio(0, 3) == 0.0
    assert report.ratio(0, 0) == 1.0
    assert report.ratio(2, 0) is None
    assert report.ratio(None, 1) is None
    assert report.ratio(1, None) is None


@pytest.mark.parametrize("value, op, limit, expected", [
    (0.4, "<=", 0.5, True),
    (0.5, "<=", 0.5, True),
    (0.6, "<=", 0.5, False),
    (0, "==", 0, True),
    (1, "==", 0, False),
    (None, "<=", 0.5, None),
])
def test_check(value, op, limit, expected):
    assert report.check(value, op, limit) is expected


def test_rotated_alternates_the_first_contender():
    items = ["a", "b", "c"]
    assert report.rotated(items, 0) == ["a", "b", "c"]
    assert report.rotated(items, 1) == ["b", "c", "a"]
    assert report.rotated(items, 4) == ["b", "c", "a"]
    assert report.rotated([], 3) == []


def _results():
    res = report.Results()
    res.case("c", "Case C")
    res.metric("c", "t", "time", "s")
    res.metric("c", "n", "count", "")
    res.contender("c", "ours", "our module", True)
    res.contender("c", "theirs", "their module", False)
    for ours, theirs in ((1.0, 4.0), (3.0, 2.0), (2.0, 6.0)):
        res.add("c", "t", "ours", ours)
        res.add("c", "t", "theirs", theirs)
    res.add("c", "n", "ours", 0)
    res.add("c", "n", "theirs", 1)
    res.case("s", "Skipped case")
    res.skip("s", "not ready")
    return res


def test_comparison_uses_medians():
    row = report.Comparison("c", "t", "ours", "theirs").evaluate(_results())
    assert row["ours_median"] == 2.0
    assert row["theirs_median"] == 4.0
    assert row["ratio"] == 0.5
    assert row["ours_label"] == "our module"
    assert row["unit"] == "s"


def test_targets_met_missed_and_unmeasured():
    res = _results()
    cmp_ = report.Comparison("c", "t", "ours", "theirs")
    assert report.Target("r", "ratio", "<=", 0.5, comparison=cmp_).evaluate(res)["met"] is True
    assert report.Target("r", "ratio", "<=", 0.4, comparison=cmp_).evaluate(res)["met"] is False
    zero = report.Target("z", "no leases", "==", 0, case_id="c", metric_id="n", contender="ours").evaluate(res)
    assert zero["met"] is True and zero["kind"] == "value"
    skipped = report.Target("s", "skipped", "<=", 1, comparison=report.Comparison("s", "t", "a", "b")).evaluate(res)
    assert skipped["met"] is None
    assert "not ready" in skipped["note"]


def test_markdown_and_dict():
    res = _results()
    rows = [report.Comparison("c", "t", "ours", "theirs").evaluate(res)]
    tgts = [report.Target("r", "ratio of C", "<=", 0.5, comparison=report.Comparison("c", "t", "ours", "theirs"))
            .evaluate(res)]
    text = report.markdown(rows, tgts, res, {"runs": 3, "environment": "test"})
    assert "| ratio of C | 0.500 | <= 0.5 | met |" in text
    assert "| Case C | time | our module | 2.00 s | their module | 4.00 s | 0.500 |" in text
    assert "**Skipped case** skipped: not ready" in text
    doc = res.to_dict()
    assert doc["c"]["metrics"]["t"]["contenders"]["ours"]["median"] == 2.0
    assert doc["s"]["skipped"] == "not ready"


def test_fmt():
    assert report.fmt(None) == "n/a"
    assert report.fmt(0.1234) == "0.123"
    assert report.fmt(12.34, "ms") == "12.3 ms"
    assert report.fmt(3) == "3"
    assert report.fmt(250.0) == "250"


def test_round_trip_through_dict():
    res = _results()
    again = report.Results.from_dict(res.to_dict())
    assert again.to_dict() == res.to_dict()
