"""What the notifier does with the record: it records what is owed; the dispatcher delivers it."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking

from services.notifier.application import AlertOwed, NotifierApplication
from services.notifier.sink import FileSink
from shared.consumer import Consumer
from shared.contracts import NOTIFIER
from shared.directory import Directory
from shared.events import AlertRequested, ComplaintErased, ComplaintReceived, DutyAssigned
from shared.live_file import LiveFile
from shared.messages import Handles, On
from shared.policy import Policy
from shared.privacy import KeyVault
from shared.timers import now


def consumers(
    store: NotifierApplication,
    policy: Policy,
    directory: LiveFile[Directory],
    configured: Collection[str],
    acknowledge_link: Callable[[UUID], str],
    vault: KeyVault,
    sinks: Sequence[FileSink] = (),
) -> list[Consumer[Any]]:
    def when_a_complaint_is_received_owe_a_receipt(complaint: ComplaintReceived, tracking: Tracking) -> None:
        patient = vault.open_patient_data(complaint.complaint_id, complaint.patient_data)
        store.request_receipt(complaint, patient, policy, configured, now(), tracking)

    def when_an_alert_is_requested_owe_it(alert: AlertRequested, tracking: Tracking) -> None:
        owe(AlertOwed.requested(alert), tracking)

    def when_a_duty_is_assigned_owe_its_alert(assigned: DutyAssigned, tracking: Tracking) -> None:
        if assigned.alert is None:  # no one to alert, or an older record's (its AlertRequested follows)
            store.record(tracking=tracking)
            return
        owe(AlertOwed.with_assignment(assigned, assigned.alert), tracking)

    def owe(alert: AlertOwed, tracking: Tracking) -> None:
        store.request_alert(alert, directory.current, configured, acknowledge_link, now(), tracking)

    def when_a_complaint_is_erased_forget_its_receipt(erased: ComplaintErased, tracking: Tracking) -> None:
        # The local channel's copies of the receipt go with the key: the record cannot be erased,
        # these files can. (Done again, harmlessly, if the message comes again.)
        for sink in sinks:
            sink.erase(erased.complaint_id)
        store.complaint_erased(erased.complaint_id, now(), tracking)

    return Handles(
        NOTIFIER,
        On(ComplaintReceived, when_a_complaint_is_received_owe_a_receipt),
        On(DutyAssigned, when_a_duty_is_assigned_owe_its_alert),
        On(AlertRequested, when_an_alert_is_requested_owe_it),
        On(ComplaintErased, when_a_complaint_is_erased_forget_its_receipt),
        opening_with=vault,
    ).consumers()
