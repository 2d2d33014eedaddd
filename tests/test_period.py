"""Quarter arithmetic shared by the quarterly workflow and `whistle simulate`."""

from __future__ import annotations

from schemas.period import is_quarter, next_quarter, previous_quarter


def test_quarters_step_over_the_year_end():
    assert next_quarter("2026Q4") == "2027Q1" and next_quarter("2027Q1") == "2027Q2"
    assert previous_quarter("2027Q1") == "2026Q4" and previous_quarter("2027Q3") == "2027Q2"


def test_only_yyyyqn_is_a_quarter():
    assert is_quarter("2027Q1")
    assert not any(is_quarter(p) for p in ("2027", "2027Q5", "27Q1", "2027q1", "2027Q1 "))
