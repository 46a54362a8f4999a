"""The learning notices of a case, as part of the case aggregate: issued, chased, read, answered, overdue.
Pure rules, no I/O; see ``services.escalation.notices`` for what a notice is."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.escalation.notices import DepartmentAnswer, Notice
from shared import refusals
from shared.events import HcatCategory, NoticeAnswer
from shared.policy import CalendarPolicy, ChasePolicy


class NoticesOfCase(Aggregate):
    """The learning notices of a case (part of ``Case``). Their alerts are numbered across the case, so
    that each has its own number on the record (the notifier keys a delivery by case, duty and number)
    and its follow-up timer names the one alert it follows."""

    notices: dict[UUID, Notice]
    notice_alerts: int
    tier: str
    chase: ChasePolicy
    calendar: CalendarPolicy
    corrective_measure: str | None

    class LearningNoticeIssued(Aggregate.Event):
        notice_id: UUID
        issued_by: str
        departments: list[str]
        responsible: dict[str, str]
        recipients: dict[str, list[str]]
        categories: list[str]
        due_at: datetime
        at: datetime

    class NoticeAlertRequested(Aggregate.Event):
        notice_id: UUID
        department: str
        tier: str
        recipient: str
        alert_number: int
        attempt: int
        due_at: datetime
        requested_at: datetime
        next_alert_at: datetime | None

    class LearningNoticeRead(Aggregate.Event):
        notice_id: UUID
        department: str
        read_by: str
        at: datetime

    class LearningNoticeAnswered(Aggregate.Event):
        notice_id: UUID
        department: str
        answered_by: str
        answer: str
        reason: str | None
        at: datetime

    class LearningNoticeOverdue(Aggregate.Event):
        notice_id: UUID
        department: str
        due_at: datetime
        at: datetime

    def people(self) -> set[str]:
        raise NotImplementedError  # the case's people, see Case

    def issue_notice(
        self,
        notice_id: UUID,
        by: str,
        anywhere: bool,
        recipients: dict[str, list[str]],
        categories: list[HcatCategory],
        due_at: datetime,
        at: datetime,
    ) -> None:
        """``anywhere``: the issuer may issue from any case (the quality officer), otherwise only from a
        case they are among the people of. ``recipients``: per department, see ``answerers``."""
        if not anywhere and by not in self.people():
            raise refusals.NotPermitted(f"{by} is not among the people of this case")
        if self.corrective_measure is None:
            raise refusals.NotPossible("record the corrective measure first: a notice issues it")
        self._issue(
            notice_id=notice_id,
            issued_by=by,
            departments=list(recipients),
            responsible={department: chain[0] for department, chain in recipients.items()},
            recipients=recipients,
            categories=list(categories),
            due_at=due_at,
            at=at,
        )
        for department in recipients:
            self._alert_department(self.notices[notice_id].departments[department], notice_id, at)

    @event(LearningNoticeIssued)
    def _issue(
        self,
        notice_id: UUID,
        issued_by: str,
        departments: list[str],
        responsible: dict[str, str],
        recipients: dict[str, list[str]],
        categories: list[HcatCategory],
        due_at: datetime,
        at: datetime,
    ) -> None:
        answers = {
            name: DepartmentAnswer(
                department=name,
                due_at=due_at,
                recipients=list(recipients[name]),
                history=[
                    f"{at.isoformat()} issued by {issued_by} to {responsible[name]}, due {due_at.isoformat()}"
                ],
            )
            for name in departments
        }
        self.notices[notice_id] = Notice(notice_id, issued_by, at, due_at, categories, answers)

    def _alert_department(self, part: DepartmentAnswer, notice_id: UUID, now: datetime) -> bool:
        target = part.next_alert(part.alerts_sent + 1, now, self.chase, self.calendar)
        if target is None:
            return False
        self._request_notice_alert(
            notice_id=notice_id,
            department=part.department,
            tier=self.tier,
            recipient=target.recipient,
            alert_number=self.notice_alerts + 1,
            attempt=target.attempt,
            due_at=part.due_at,
            requested_at=now,
            next_alert_at=target.next_alert_at,
        )
        return True

    @event(NoticeAlertRequested)
    def _request_notice_alert(
        self,
        notice_id: UUID,
        department: str,
        tier: str,
        recipient: str,
        alert_number: int,
        attempt: int,
        due_at: datetime,
        requested_at: datetime,
        next_alert_at: datetime | None,
    ) -> None:
        self.notice_alerts = alert_number
        part = self.notices[notice_id].departments[department]
        part.alerted_now(part.alerts_sent + 1, recipient)
        part.last_alert_number = alert_number
        part.history.append(f"{requested_at.isoformat()} alert to {recipient} (attempt {attempt})")

    def chase_notice(self, following: int, now: datetime) -> bool:
        """The follow-up of the notice alert numbered ``following``: the next alert of that department,
        if it is still unread and unanswered and that alert is still its latest; False otherwise."""
        for notice in self.notices.values():
            for part in notice.departments.values():
                if part.last_alert_number == following and part.is_chased:
                    return self._alert_department(part, notice.notice_id, now)
        return False

    def notice_people(self) -> set[str]:
        """Whoever is alerted about a notice of the case: they may read the case."""
        return {
            person
            for notice in self.notices.values()
            for part in notice.departments.values()
            for person in part.recipients
        }

    def _part(self, notice_id: UUID, department: str, by: str) -> DepartmentAnswer:
        notice = self.notices.get(notice_id)
        if notice is None:
            raise refusals.NotPossible(f"the case has no learning notice {notice_id}")
        if department not in notice.departments:
            named = ", ".join(notice.departments)
            raise refusals.NotPossible(f"the notice was not issued to {department!r}; it went to {named}")
        part = notice.departments[department]
        if by not in part.recipients:
            raise refusals.NotPermitted(
                f"{by} is neither responsible for {department}'s answer to this notice nor in their chain"
            )
        return part

    def read_notice(self, notice_id: UUID, department: str, by: str, at: datetime) -> None:
        """Reading it stops the chase, as acknowledging an alert does; the answer is still owed."""
        part = self._part(notice_id, department, by)
        if part.acknowledged_by is None:
            self._read(notice_id=notice_id, department=department, read_by=by, at=at)

    @event(LearningNoticeRead)
    def _read(self, notice_id: UUID, department: str, read_by: str, at: datetime) -> None:
        part = self.notices[notice_id].departments[department]
        part.acknowledged_by = read_by
        part.history.append(f"{at.isoformat()} read by {read_by}")

    def read_through_link(self, by: str, at: datetime) -> list[tuple[UUID, str]]:
        """An alert's acknowledgement link (which names the case, not the notice): every notice of the
        case that alerted this person and that is not yet read is read by them."""
        read = []
        for notice in self.notices.values():
            for part in notice.departments.values():
                if by in part.alerted and part.acknowledged_by is None and part.answer is None:
                    self._read(notice_id=notice.notice_id, department=part.department, read_by=by, at=at)
                    read.append((notice.notice_id, part.department))
        return read

    def answer_notice(
        self,
        notice_id: UUID,
        department: str,
        by: str,
        answer: NoticeAnswer,
        reason: str | None,
        at: datetime,
    ) -> None:
        """Answered once; a notice that does not apply says why. Late answers count, as late. A notice
        answered before anyone recorded reading it is read by whoever answers, at that moment: the
        record shows every department's reader."""
        part = self._part(notice_id, department, by)
        if answer == "not_applicable" and not (reason or "").strip():
            raise refusals.NotPossible("a notice that does not apply needs the reason why")
        if part.answer is not None:
            raise refusals.NotPossible(f"{department} already answered this notice: {part.answer}")
        if part.acknowledged_by is None:
            self._read(notice_id=notice_id, department=department, read_by=by, at=at)
        self._answer(
            notice_id=notice_id, department=department, answered_by=by, answer=answer, reason=reason, at=at
        )

    @event(LearningNoticeAnswered)
    def _answer(
        self,
        notice_id: UUID,
        department: str,
        answered_by: str,
        answer: str,
        reason: str | None,
        at: datetime,
    ) -> None:
        part = self.notices[notice_id].departments[department]
        part.answer, part.answered_by, part.reason = answer, answered_by, reason  # type: ignore[assignment]  # the wire's literal
        because = f", because {reason}" if reason else ""
        part.history.append(f"{at.isoformat()} answered by {answered_by}: {answer}{because}")

    def notice_deadline_reached(self, notice_id: UUID, now: datetime) -> bool:
        """Every department that has not answered is overdue; a fire seen before changes nothing."""
        notice = self.notices.get(notice_id)
        if notice is None or now < notice.due_at:
            return False
        late = [part for part in notice.departments.values() if part.answer is None and not part.overdue]
        for part in late:
            self._overdue(notice_id=notice_id, department=part.department, due_at=part.due_at, at=now)
        return bool(late)

    @event(LearningNoticeOverdue)
    def _overdue(self, notice_id: UUID, department: str, due_at: datetime, at: datetime) -> None:
        part = self.notices[notice_id].departments[department]
        part.overdue = True
        part.history.append(f"{at.isoformat()} overdue: {department} had not answered")
