"""Intake's SMTP receiver: e-mail to the complaints mailbox becomes a complaint.

What a sender sees at each limit (the values are the policy's ``[intake.email]``):
- a message larger than ``max_message_bytes``: 552, announced beforehand in EHLO as SIZE; the rest of
  an over-long message is read and dropped, never kept in memory;
- a text (subject and plain body) longer than the summary's limit: 552 naming the limit, nothing
  recorded: the sender learns it at once and can shorten it, and no patient's words are cut silently;
- more than ``messages_per_client`` from one client IP, or ``messages_per_sender`` from one sender
  address (envelope or From), in ``period_seconds``: 451, which a mail server retries later by itself.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import AnyStr

from aiosmtpd.smtp import SMTP, Envelope, Session

from services.intake.application import IntakeApplication
from services.intake.channels import email_message
from services.intake.limits import MAX_SUMMARY, summary_problem
from services.intake.ratelimit import RateLimiter
from shared.policy import IntakePolicy
from shared.timers import now


class ComplaintsMailbox:
    """The aiosmtpd handler: mail for the policy's address only, within the policy's limits; each message
    recorded before the 250 answer, so that a sender told "accepted" can rely on it."""

    def __init__(self, store: IntakeApplication, policy: IntakePolicy) -> None:
        self.store = store
        self.policy = policy
        period = timedelta(seconds=policy.email.period_seconds)
        self.per_client = RateLimiter(policy.email.messages_per_client, period)
        self.per_sender = RateLimiter(policy.email.messages_per_sender, period)

    def _too_many(self, limit: int) -> str:
        return (
            f"451 4.7.1 more than {limit} messages in {self.policy.email.period_seconds} s"
            " from here: try again later"
        )

    async def handle_MAIL(  # the names of aiosmtpd's hooks
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        client = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        if not self.per_client.allow(client, now()):
            return self._too_many(self.policy.email.messages_per_client)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.casefold() != self.policy.email.address.casefold():
            return f"550 5.1.1 only {self.policy.email.address} takes mail here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = await asyncio.to_thread(email_message, content, now())
        senders = {address.casefold() for address in (envelope.mail_from, message.sender) if address}
        if not all(self.per_sender.allows(sender, now()) for sender in senders):
            return self._too_many(self.policy.email.messages_per_sender)
        for sender in senders:
            self.per_sender.use(sender, now())
        if message.text is not None and len(message.text.strip()) > MAX_SUMMARY:
            return (
                f"552 5.3.4 the complaint's text (subject and message) {summary_problem(message.text)}:"
                f" please shorten it to {MAX_SUMMARY:,} characters and send it again"
            )
        receipt = await asyncio.to_thread(
            self.store.receive_message, message, self.policy.email, self.policy.default_language, now()
        )
        if receipt.outcome == "rejected":
            return f"250 2.0.0 received, not registered: {receipt.reason}"
        return f"250 2.0.0 received as complaint {receipt.complaint_id}"


class _Receiver(SMTP):
    """aiosmtpd's SMTP, whose answer to a message over the size limit names the limit."""

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str) and status.startswith("552 Error"):  # aiosmtpd's own wording
            limit = self.data_size_limit or 0
            await super().push(f"552 5.3.4 a message to this mailbox may be at most {limit:,} bytes")
            return
        await super().push(status)


class SmtpReceiver:
    """A worker of the intake service: the SMTP server of the complaints mailbox, until cancelled.

    Not leased: every replica listens on its own port and registers what is sent to it, as its HTTP
    API does; the same message sent to two replicas is one complaint (its Message-ID is the key)."""

    def __init__(
        self,
        store: IntakeApplication,
        policy: IntakePolicy,
        host: str,
        port: int,
    ) -> None:
        self.handler = ComplaintsMailbox(store, policy)
        self.max_message_bytes = policy.email.max_message_bytes
        self.host = host
        self.port = port

    async def run(self) -> None:
        server = await asyncio.get_running_loop().create_server(
            lambda: _Receiver(
                self.handler,
                data_size_limit=self.max_message_bytes,
                enable_SMTPUTF8=True,
                hostname="kizuki-intake",
            ),
            self.host,
            self.port,
        )
        async with server:
            await server.serve_forever()

    def wake(self) -> None:
        """Mail comes when it comes: a commit elsewhere changes nothing here."""
