"""Times typed in after the fact: the apology call's time and a discharge, bounded by the policy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from shared.entered import CLOCK_SKEW, TimeRefused, check_entered, duration
from shared.policy import Policy, PolicyError, load_policy
from shared.settings import load_settings
from tests.unit.test_case import OPENED, open_case

pytestmark = pytest.mark.unit

SETTINGS = load_settings({})
POLICY: Policy = load_policy(SETTINGS.policy_path)
CALL_WINDOW = timedelta(seconds=POLICY.recording.first_response_within_seconds)


def test_the_shipped_policy_states_how_far_back_a_time_may_be_typed_in() -> None:
    assert duration(CALL_WINDOW) == "6 hours"
    assert duration(timedelta(seconds=POLICY.recording.discharge_within_seconds)) == "2 days"
    assert duration(timedelta(seconds=90)) == "90 seconds"


def test_an_apology_call_typed_in_an_hour_later_is_taken_with_its_own_time() -> None:
    case = open_case()
    case.collect_events()
    called, typed_in = OPENED + timedelta(minutes=30), OPENED + timedelta(hours=1, minutes=30)
    case.check_call_time("hd-003", called, typed_in, CALL_WINDOW)
    case.record_first_response("hd-003", called, True, "apologised")
    [recorded] = [e for e in case.collect_events() if isinstance(e, case.FirstResponseRecorded)]
    assert recorded.at == called


def test_an_apology_call_three_days_back_is_refused_naming_the_limit() -> None:
    case = open_case()
    typed_in = OPENED + timedelta(days=3, hours=1)
    with pytest.raises(TimeRefused, match=r"at most 6 hours .*first_response_within_seconds"):
        case.check_call_time("hd-003", OPENED + timedelta(hours=1), typed_in, CALL_WINDOW)
    # The edge of the window is inside it.
    case.check_call_time("hd-003", typed_in - CALL_WINDOW, typed_in, CALL_WINDOW)


def test_an_apology_call_before_the_complaint_occurred_or_in_the_future_is_refused() -> None:
    case = open_case()
    before = case.complaint_occurred_at - timedelta(minutes=1)
    with pytest.raises(TimeRefused, match="at: cannot be before the complaint occurred"):
        case.check_call_time("hd-003", before, OPENED, CALL_WINDOW)
    with pytest.raises(TimeRefused, match="at: cannot be in the future"):
        case.check_call_time("hd-003", OPENED + CLOCK_SKEW + timedelta(seconds=1), OPENED, CALL_WINDOW)
    case.check_call_time("hd-003", OPENED + CLOCK_SKEW, OPENED, CALL_WINDOW)  # a clock a little ahead


def test_someone_outside_the_case_is_refused_before_the_time_is_judged() -> None:
    case = open_case()
    with pytest.raises(ValueError, match="n-002 is neither the owner"):
        case.check_call_time("n-002", OPENED - timedelta(days=9), OPENED, CALL_WINDOW)


def test_a_discharge_window_that_would_make_a_callback_overdue_on_arrival_is_refused() -> None:
    followup = POLICY.followup
    latest = followup.after_discharge_seconds + followup.complete_within_seconds
    recording = POLICY.recording.model_copy(update={"discharge_within_seconds": latest})
    with pytest.raises(ValueError, match="overdue the moment it is created"):
        Policy.model_validate(POLICY.model_dump() | {"recording": recording.model_dump()})


def test_a_policy_without_the_recording_section_is_refused(tmp_path: Path) -> None:
    shipped = SETTINGS.policy_path.read_text(encoding="utf-8")
    path = tmp_path / "policy.toml"
    path.write_text(shipped.split("[recording]")[0], encoding="utf-8")
    with pytest.raises(PolicyError, match="recording"):
        load_policy(path)


def test_check_entered_names_the_field() -> None:
    with pytest.raises(TimeRefused, match=r"^discharged_at: may be at most 2 days"):
        check_entered(
            "discharged_at", OPENED - timedelta(days=3), OPENED, timedelta(days=2), "discharge_within_seconds"
        )
