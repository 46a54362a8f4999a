"""Intake's SMTP receiver: e-mail to the complaints mailbox becomes a complaint."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiosmtpd.smtp import SMTP, Envelope, Session

from services.intake.application import IntakeApplication
from services.intake.channels import email_message
from shared.policy import IntakePolicy
from shared.timers import now

MAX_MESSAGE_BYTES = 1024 * 1024


class ComplaintsMailbox:
    """The aiosmtpd handler: mail for the policy's address only; each message recorded before the
    250 answer, so that a sender told "accepted" can rely on it."""

    def __init__(self, store: IntakeApplication, policy: IntakePolicy, on_commit: Callable[[], None]) -> None:
        self.store = store
        self.policy = policy
        self.on_commit = on_commit

    async def handle_RCPT(  # the names of aiosmtpd's hooks
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.casefold() != self.policy.email.address.casefold():
            return f"550 5.1.1 only {self.policy.email.address} takes mail here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email_message(content, now())
        receipt = await asyncio.to_thread(
            self.store.receive_message, message, self.policy.email, self.policy.default_language, now()
        )
        if receipt.new:
            self.on_commit()
        if receipt.outcome == "rejected":
            return f"250 2.0.0 received, not registered: {receipt.reason}"
        return f"250 2.0.0 received as complaint {receipt.complaint_id}"


class SmtpReceiver:
    """A worker of the intake service: the SMTP server of the complaints mailbox, until cancelled."""

    def __init__(
        self,
        store: IntakeApplication,
        policy: IntakePolicy,
        host: str,
        port: int,
        on_commit: Callable[[], None],
    ) -> None:
        self.handler = ComplaintsMailbox(store, policy, on_commit)
        self.host = host
        self.port = port

    async def run(self) -> None:
        server = await asyncio.get_running_loop().create_server(
            lambda: SMTP(
                self.handler,
                data_size_limit=MAX_MESSAGE_BYTES,
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
