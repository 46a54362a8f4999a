"""The callback lists on a real store (SQLite and PostgreSQL): the same callbacks as the whole log gives,
read from a complaint's index and from the open callbacks, never from every callback ever scheduled."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking
from fastapi.testclient import TestClient

from services.followup.application import FollowupApplication
from services.followup.domain import Callback
from services.followup.main import create_app
from shared.directory import Directory
from shared.events import EscalationStarted
from shared.policy import Policy
from shared.runtime import open_store
from shared.settings import Settings
from shared.timers import now
from tests.conftest import Headers
from tests.factories import complaint_received

pytestmark = pytest.mark.integration

LONG_AGO = timedelta(days=12)  # due whatever the calendar moves it by
OVERSEER = "q-001"  # sees every callback: the lists differ by what they read, not by access
sequence = itertools.count(1)


def open_case(store: FollowupApplication, policy: Policy) -> UUID:
    complaint = complaint_received(heard_by="n-001", department="Ward 3")
    store.hear_complaint(complaint, Tracking("EVENTS", next(sequence)))
    moment = now()
    opened = EscalationStarted(
        event_id=uuid4(),
        complaint_id=complaint.complaint_id,
        occurred_at=moment,
        recorded_at=moment,
        policy_version=policy.version,
        tier="complex",
        tier_reason="the policy's default",
    )
    store.follow_case(opened, Tracking("EVENTS", next(sequence)))
    return complaint.complaint_id


def schedule(store: FollowupApplication, complaint_id: UUID, policy: Policy, directory: Directory) -> UUID:
    tracking = Tracking("EVENTS", next(sequence))
    anchor = now() - LONG_AGO
    return store.schedule(
        complaint_id, "after_first_response", anchor, uuid4(), policy, directory, tracking
    ).id


def before_the_index(
    store: FollowupApplication, complaint_id: UUID, policy: Policy, directory: Directory
) -> UUID:
    """A callback stored as followup stored them before complaints had an index of their callbacks."""
    callback = Callback.schedule(
        uuid4(), complaint_id, "after_closure", now() - LONG_AGO, policy.followup, policy.escalation.calendar,
        directory,
    )  # fmt: skip
    store.record(callback, tracking=Tracking("EVENTS", next(sequence)))
    return callback.id


def close(store: FollowupApplication, callback_id: UUID, directory: Directory, completed: bool) -> None:
    """Completed at once, or abandoned after every attempt failed to reach the patient."""
    while (callback := store.get_callback(callback_id)) is not None and callback.is_open:
        store.act(callback_id, lambda c: c.fall_due())
        if completed:
            store.act(callback_id, lambda c: c.reached(c.assignee, now(), 5, True, "", directory))
        else:
            store.act(callback_id, lambda c: c.not_reached(c.assignee, now(), "", directory))


class Reads:
    """What the store reads, through a thin wrapper around the real one: the callbacks it loads and the
    notifications it selects."""

    def __init__(self, store: FollowupApplication, monkeypatch: pytest.MonkeyPatch) -> None:
        self.callbacks: list[UUID] = []
        self.notifications = 0
        get, select = store.repository.get, store.process_recorder.select_notifications

        def counted_get(aggregate_id: UUID, *args: Any, **kwargs: Any) -> Any:
            found = get(aggregate_id, *args, **kwargs)
            if isinstance(found, Callback):
                self.callbacks.append(found.id)
            return found

        def counted_select(*args: Any, **kwargs: Any) -> Any:
            selected = select(*args, **kwargs)
            self.notifications += len(selected)
            return selected

        monkeypatch.setattr(store.repository, "get", counted_get)
        monkeypatch.setattr(store.process_recorder, "select_notifications", counted_select)

    def reset(self) -> None:
        self.callbacks, self.notifications = [], 0


@pytest.fixture
def client(store_settings: Settings, policy: Policy, directory: Directory) -> Iterator[TestClient]:
    """Followup's API on a store that already holds callbacks from before the index: two complaints with
    one each (the app indexes them once when it starts)."""
    earlier = open_store(FollowupApplication, store_settings)
    for _ in range(2):
        before_the_index(earlier, open_case(earlier, policy), policy, directory)
    earlier.close()
    app = create_app(store_settings)
    yield TestClient(app)
    app.state.runtime.store.close()


def listed(client: TestClient, path: str, signed_in: Headers, **params: Any) -> list[str]:
    response = client.get(path, params=params, headers=signed_in(OVERSEER))
    assert response.status_code == 200, response.text
    return [callback["callback_id"] for callback in response.json()]


def test_the_lists_give_what_the_whole_log_gives_and_read_only_what_they_return(
    client: TestClient,
    policy: Policy,
    directory: Directory,
    signed_in: Headers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store: FollowupApplication = client.app.state.runtime.store  # type: ignore[attr-defined]
    complaints = [open_case(store, policy) for _ in range(3)]
    complaints += [callback.complaint_id for callback in store.callbacks()]  # the two from before
    for complaint_id in complaints:
        for _ in range(3):
            schedule(store, complaint_id, policy, directory)
    everything = store.callbacks()
    for index, callback in enumerate(everything):  # scheduled, due, overdue, completed, abandoned
        if index % 5 == 1:
            store.act(callback.id, lambda c: c.fall_due())
        elif index % 5 == 2:
            store.act(callback.id, lambda c: c.deadline_passed(now()))
        elif index % 5 in (3, 4):
            close(store, callback.id, directory, completed=index % 5 == 3)
    # As the whole log gives them, read before the wrapper counts.
    every = store.callbacks()
    open_ids = [callback.id for callback in every if callback.is_open]
    by_due = sorted(every, key=lambda callback: callback.due_at)
    assignees = sorted({callback.assignee for callback in every})
    assert {callback.status for callback in every} == {
        "scheduled",
        "due",
        "overdue",
        "completed",
        "abandoned",
    }

    reads = Reads(store, monkeypatch)
    for statuses in (["scheduled", "due", "overdue"], ["due"], ["overdue", "scheduled"]):
        for assignee in [None, *assignees]:
            expected = [
                str(callback.id)
                for callback in by_due
                if callback.status in statuses and assignee in (None, callback.assignee)
            ]
            filters = {"status": statuses} | ({} if assignee is None else {"assignee": assignee})
            assert listed(client, "/v1/callbacks", signed_in, **filters) == expected, filters
            assert sorted(reads.callbacks) == sorted(open_ids), "a work list loaded a closed callback"
            reads.reset()
    # Nothing stored since: the open set is not read again.
    listed(client, "/v1/callbacks", signed_in, status="due")
    assert reads.notifications == 0
    # One newly scheduled: its notification only, and it is listed.
    new = schedule(store, complaints[0], policy, directory)
    reads.reset()
    assert str(new) in listed(client, "/v1/callbacks", signed_in, status="scheduled")
    assert reads.notifications == 1
    # Closed ones asked for are still listed, from the whole log.
    closed = [str(c.id) for c in by_due if c.status == "completed"]
    assert listed(client, "/v1/callbacks", signed_in, status="completed") == closed

    for complaint_id in complaints:
        reads.reset()
        its = [callback.id for callback in store.callbacks() if callback.complaint_id == complaint_id]
        reads.reset()
        path = f"/v1/complaints/{complaint_id}/callbacks"
        assert listed(client, path, signed_in) == [str(callback_id) for callback_id in its]
        assert reads.callbacks == its
        assert reads.notifications == 0


def test_scheduling_retries_when_another_writer_changed_the_complaints_index_meanwhile(
    client: TestClient, policy: Policy, directory: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store: FollowupApplication = client.app.state.runtime.store  # type: ignore[attr-defined]
    complaint_id = open_case(store, policy)
    first = schedule(store, complaint_id, policy, directory)
    read_index = store.callback_index
    meanwhile: list[UUID] = []

    def index_read_just_before_a_discharge_is_registered(of: UUID) -> Any:
        index = read_index(of)
        if not meanwhile:  # the API's discharge callback is stored between the consumer's read and write
            monkeypatch.setattr(store, "callback_index", read_index)
            discharged = store.register_discharge(complaint_id, now() - LONG_AGO, policy, directory)
            assert discharged is not None
            meanwhile.append(discharged.id)
        return index

    monkeypatch.setattr(store, "callback_index", index_read_just_before_a_discharge_is_registered)
    last = schedule(store, complaint_id, policy, directory)
    assert meanwhile
    assert [callback.id for callback in store.callbacks_of(complaint_id)] == [first, *meanwhile, last]
