"""Who may act on a case and its callbacks: the rules escalation and followup enforce, and the console
reads to offer each person only the forms they may use (the services still refuse the rest). Pure."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from shared.directory import Directory, Role

# Who may judge harassment, and who may record the corrective measure and close the case; always
# also within the case's chains (escalation's domain checks that).
JUDGES: tuple[Role, ...] = ("supervisor", "executive", "second_line")
OWNERS: tuple[Role, ...] = ("supervisor", "executive", "handler", "second_line")
REPORT_TRACKS = ("first_hearer_report", "supervisor_report")


def report_tracks(by: str, owners: Mapping[str, str], supervisor_recipients: Collection[str]) -> list[str]:
    """The reporting tracks a report by ``by`` fulfils: a track they own, and the supervisor's track for
    anyone alerted for it (``owners``: each track's owner)."""
    return [
        track
        for track in REPORT_TRACKS
        if by == owners.get(track) or (track == "supervisor_report" and by in supervisor_recipients)
    ]


def callback_team(assignee: str, directory: Directory) -> set[str]:
    """Who shares a callback's calls and sees it: its assignee and the callback staff of the assignee's
    department (callbacks are shared out by complaint among them)."""
    member = directory.staff.get(assignee)
    if member is None:
        return {assignee}
    colleagues = {
        staff_id
        for staff_id, colleague in directory.staff.items()
        if "callback_staff" in colleague.roles and colleague.department == member.department
    }
    return {assignee} | colleagues
