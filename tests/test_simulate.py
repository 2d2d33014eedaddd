"""`whistle simulate`: the scenario is drawn from the seed; a whole quarter runs through the
real workflows on the time-skipping server; the same seed gives the same red/black list."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from schemas.league import LeagueRow
from schemas.period import next_quarter, quarter_of
from whistle.console.cli import app
from whistle.config import DEMO_JURISDICTION
from whistle.console.simulation.run import SimulationError, simulate
from whistle.console.simulation.scenario import OfficeHours, build_scenario
from whistle.workdays import WorkingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def calendar(demo) -> WorkingCalendar:
    return WorkingCalendar(demo.calendar, demo.timezone)


def test_the_scenario_is_the_seeds(demo, calendar):
    a = build_scenario(demo, "2027Q1", 300, seed=5, calendar=calendar)
    assert a == build_scenario(demo, "2027Q1", 300, seed=5, calendar=calendar)
    b = build_scenario(demo, "2027Q1", 300, seed=6, calendar=calendar)
    assert [p.category for p in a.issues] != [p.category for p in b.issues]
    assert len(a.slow()) == 2 and len(a.prompt()) == 2 and not set(a.slow()) & set(a.prompt())


def test_arrivals_follow_the_day_and_the_season(demo, calendar):
    winter = build_scenario(demo, "2027Q1", 2000, seed=1, calendar=calendar)
    summer = build_scenario(demo, "2027Q3", 2000, seed=1, calendar=calendar)
    for plan in winter.issues:
        assert winter.start <= plan.reported_at < winter.end
        assert plan.reported_at.hour != 0  # midnight is when deadlines fall due
        # Submitted the same day, never before the call.
        assert plan.arrival >= plan.reported_at and plan.arrival.date() == plan.reported_at.date()
    hours = Counter(p.reported_at.hour for p in winter.issues)
    assert hours[10] > 3 * hours[3]  # mid-morning is busy, the small hours are not
    heating = lambda s: sum(p.category == "heating" for p in s.issues)
    flooding = lambda s: sum(p.category == "drainage-flooding" for p in s.issues)
    assert heating(winter) > 5 * heating(summer)
    assert flooding(summer) > 5 * flooding(winter)


def test_office_hours_skip_nights_weekends_and_holidays(calendar):
    office = OfficeHours(calendar, "Asia/Shanghai")
    friday_evening = datetime(2027, 1, 8, 17, tzinfo=SHANGHAI)
    assert office.after(friday_evening, 0) == friday_evening
    assert office.after(friday_evening, 1) == datetime(2027, 1, 11, 9, tzinfo=SHANGHAI)  # Monday
    # New Year's Day 2027 is a Friday: the first office hour of the year is Monday the 4th.
    assert office.next_open(datetime(2027, 1, 1, 0, 30, tzinfo=SHANGHAI)) == datetime(2027, 1, 4, 9, tzinfo=SHANGHAI)
    # Office time two working days before a deadline at Thursday 24:00 is Wednesday morning.
    assert office.days_before(datetime(2027, 1, 15, 0, tzinfo=SHANGHAI), 2) == datetime(2027, 1, 13, 10, tzinfo=SHANGHAI)


async def test_a_quarter_runs_and_the_same_seed_gives_the_same_list(tmp_path):
    quarter = next_quarter(quarter_of(datetime.now(SHANGHAI), "Asia/Shanghai"))
    summaries: dict[str, str | None] = {}

    async def look(client, scenario) -> None:  # what the Web UI lists: each workflow's summary
        from temporalio.api.common.v1 import WorkflowExecution
        from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
        from temporalio.converter import PayloadConverter

        plan = scenario.issues[0]
        for wid in (f"issue-{plan.channel.value}-{plan.reference}", f"evaluation-{quarter}", f"league-{quarter}"):
            # The raw call: the time-skipping server's search attributes trip describe()'s decoding.
            raw = await client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
                namespace=client.namespace, execution=WorkflowExecution(workflow_id=wid)))
            payload = raw.execution_config.user_metadata.summary
            if payload.metadata.get("encoding") == b"json/plain":  # the issue's: in clear (no personal data)
                summaries[wid.split("-")[0]] = PayloadConverter.default.from_payloads([payload], [str])[0]
            else:
                summaries[wid.split("-")[0]] = (await client.data_converter.decode([payload], [str]))[0]

    first = await simulate(DEMO_JURISDICTION, 40, quarter, 11, tmp_path / "a", before_shutdown=look)
    second = await simulate(DEMO_JURISDICTION, 40, quarter, 11, tmp_path / "b")

    assert first.summary() == second.summary()
    assert summaries["evaluation"] == f"逆向考评 {quarter}" and summaries["league"] == f"红黑榜 {quarter}"
    plan = first.scenario.issues[0]
    assert summaries["issue"].endswith(f" · {plan.channel.value}-{plan.reference}") and " → " in summaries["issue"]
    assert sum(first.outcomes.values()) == 40  # every issue closed
    assert first.league.stage == "published" and first.actions["review_draft"] == 1
    assert first.actions["rate"] > 0 and first.notifications > 0
    rows = [LeagueRow.model_validate(r) for r in first.summary()["rows"]]
    assert {r.unit_kind for r in rows} == {"department", "street"}
    # Every rate within 0..1 with its counts; no small unit listed by score; a middle band.
    policy_min = 10
    for r in rows:
        for rate in r.rates.values():
            assert rate.value is None or (0 <= rate.value <= 1 and rate.numerator <= rate.denominator)
        assert r.score_interval[0] <= r.score <= r.score_interval[1]
        by_score = [x for x in r.reasons if x.startswith("综合得分")]
        if r.volume < policy_min:
            assert not r.ranked and not by_score
        if r.listed:
            assert by_score or any(x.startswith("硬性规则") for x in r.reasons)
    for kind in ("department", "street"):
        ranked = [r for r in rows if r.unit_kind == kind and r.ranked]
        by_score = [r for r in ranked if any(x.startswith("综合得分") for x in r.reasons)]
        assert len(by_score) <= 2 * ((len(ranked) - 1) // 2)
    # The slow departments collect the penalties.
    penalties = {r.unit_id: r.penalties for r in rows if r.unit_kind == "department"}
    scenario = first.scenario
    assert sum(penalties.get(d, 0) for d in scenario.slow()) > sum(penalties.get(d, 0) for d in scenario.prompt())
    # The page and the figures are written where the report says.
    assert f"{quarter} 红黑榜" in first.html.read_text(encoding="utf-8")
    figures = json.loads(first.json.read_text(encoding="utf-8"))
    assert figures["status"] == "published" and first.json.parent.name == f"{quarter}-seed11"
    assert "score_interval" in figures["departments"][0] and 'class="error-bar"' in first.html.read_text(encoding="utf-8")
    # The quarter's three monthly briefings, published and written beside the list.
    assert [b.month for b in first.briefings] == sorted({i.reported_at.strftime("%Y-%m") for i in scenario.issues})
    assert sum(b.issues for b in first.briefings) == 40
    month = first.briefings[0].month
    assert f"{month} 月度通报" in (first.html.parent / f"briefing-{month}.html").read_text(encoding="utf-8")


async def test_a_quarter_that_has_begun_is_refused(tmp_path):
    with pytest.raises(SimulationError, match="has begun already"):
        await simulate(DEMO_JURISDICTION, 10, quarter_of(datetime.now(SHANGHAI)), 1, tmp_path)
    assert not any(tmp_path.iterdir())


def test_the_command_refuses_a_malformed_quarter():
    result = CliRunner().invoke(app, ["simulate", "--quarter", "2027-1"])
    assert result.exit_code == 1
    assert "--quarter must look like 2027Q1" in result.output


def test_the_command_prints_where_it_wrote_absolutely(tmp_path):
    """Run from elsewhere with a relative --data-dir: the printed paths are absolute and real."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "whistle.console.cli", "simulate", "--issues", "3", "--seed", "2", "--data-dir", "rel"],
        cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    page = Path(result.stdout.split("page:")[1].split()[0])
    assert page.is_absolute() and page.is_file() and page.is_relative_to(tmp_path / "rel" / "simulations")
