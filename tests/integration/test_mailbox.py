"""Intake's SMTP receiver over a real socket, on its real store: what a sender sees at each limit."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from kizuki.processes import free_port
from services.intake.application import IntakeApplication
from services.intake.mailbox import SmtpReceiver
from services.intake.main import open_intake_store
from shared.policy import load_policy
from shared.settings import Settings
from tests.polling import eventually

pytestmark = pytest.mark.integration

MAILBOX = "complaints@hospital.example"


def mail(sender: str = "ono@example.org", text: str = "会計で一時間待ちました。") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, MAILBOX, "会計"
    message["Message-ID"] = make_msgid()
    message.set_content(text)
    return message


def said(reply: bytes | str) -> str:
    return reply.decode() if isinstance(reply, bytes) else reply


class Mailbox:
    def __init__(self, port: int, store: IntakeApplication) -> None:
        self.port = port
        self.store = store

    def connect(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port, timeout=30)

    def stored(self) -> int:
        return self.store.process_recorder.max_notification_id() or 0

    def complaints(self) -> int:
        notifications = self.store.process_recorder.select_notifications(1, 1000)
        return sum(n.topic.endswith("Complaint.Received") for n in notifications)


@pytest.fixture
def with_email_policy(settings: Settings, tmp_path: Path) -> Callable[..., Settings]:
    def changed(**limits: int) -> Settings:
        policy = settings.policy_path.read_text(encoding="utf-8")
        for name, value in limits.items():
            policy = policy.replace(f"\n{name} = ", f"\n{name} = {value}\n# was: ", 1)
        path = tmp_path / "policy.toml"
        path.write_text(policy, encoding="utf-8")
        changed_settings = replace(settings, policy_path=path)
        email = load_policy(path).intake.email
        assert all(getattr(email, name) == value for name, value in limits.items())
        return changed_settings

    return changed


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Mailbox]:
    store = open_intake_store(settings)
    port = free_port()
    receiver = SmtpReceiver(store, load_policy(settings.policy_path).intake, "127.0.0.1", port)
    task = asyncio.create_task(receiver.run())

    async def listening() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        return False

    try:
        await eventually(listening, within=10, what="the SMTP receiver listening")
        yield Mailbox(port, store)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()


async def test_a_message_over_the_size_limit_is_refused_naming_it_and_nothing_is_kept(
    settings: Settings,
) -> None:
    async with running(settings) as mailbox:
        big = mail(text="I waited for hours at the desk.\n" * 28_000)  # about 900 KB of plain text

        def session() -> tuple[str, tuple[int, bytes], tuple[int, bytes]]:
            with mailbox.connect() as smtp:
                smtp.ehlo()
                announced = smtp.esmtp_features["size"]
                # Announced up front: a client that says the size is refused before it sends anything.
                with pytest.raises(smtplib.SMTPSenderRefused) as declared:
                    smtp.sendmail("ono@example.org", [MAILBOX], big.as_bytes())
                smtp.rset()
                # A client that does not say it is refused once the limit is passed, the rest dropped.
                smtp.mail("ono@example.org")
                smtp.rcpt(MAILBOX)
                streamed = smtp.data(big.as_bytes(policy=big.policy.clone(linesep="\r\n")))
                return announced, (declared.value.smtp_code, declared.value.smtp_error), streamed

        announced, declared, streamed = await asyncio.to_thread(session)
        assert announced == "262144"  # the policy's max_message_bytes
        for code, text in (declared, streamed):
            assert (code, text.decode()) == (
                552,
                "5.3.4 a message to this mailbox may be at most 262,144 bytes",
            )
        assert mailbox.stored() == 0


async def test_a_text_over_the_summary_limit_is_refused_naming_it_and_nothing_is_kept(
    settings: Settings,
) -> None:
    async with running(settings) as mailbox:

        def send_long() -> None:
            with mailbox.connect() as smtp:
                smtp.send_message(mail(text="受付で待たされました。" * 500))  # 5,000 characters, ~15 KB

        with pytest.raises(smtplib.SMTPDataError) as refused:
            await asyncio.to_thread(send_long)
        assert refused.value.smtp_code == 552
        assert said(refused.value.smtp_error) == (
            "5.3.4 the complaint's text (subject and message) is 5,504 characters long; at most 4,000"
            " are taken: please shorten it to 4,000 characters and send it again"
        )
        assert mailbox.stored() == 0


async def test_a_sender_over_its_rate_is_told_to_try_later_and_others_are_not_held_up(
    with_email_policy: Callable[..., Settings],
) -> None:
    async with running(with_email_policy(messages_per_sender=2, period_seconds=600)) as mailbox:

        def send(sender: str) -> None:
            with mailbox.connect() as smtp:
                smtp.send_message(mail(sender), from_addr="relay@mx.example")

        await asyncio.to_thread(send, "ono@example.org")
        await asyncio.to_thread(send, "kei@example.org")
        # The envelope sender counts too: relay@mx.example has sent two.
        with pytest.raises(smtplib.SMTPDataError) as refused:
            await asyncio.to_thread(send, "sato@example.org")
        assert refused.value.smtp_code == 451
        assert (
            said(refused.value.smtp_error) == "4.7.1 more than 2 messages in 600 s from here: try again later"
        )

        def send_direct(sender: str) -> None:
            with mailbox.connect() as smtp:
                smtp.send_message(mail(sender))

        await asyncio.to_thread(send_direct, "kei@example.org")
        with pytest.raises(smtplib.SMTPDataError):
            await asyncio.to_thread(send_direct, "Kei@Example.org")  # the same address written otherwise
        await asyncio.to_thread(send_direct, "yuki@example.org")
        assert mailbox.complaints() == 4  # ono, kei twice, yuki: nothing of what was refused


async def test_a_client_over_its_rate_is_told_to_try_later_before_it_sends(
    with_email_policy: Callable[..., Settings],
) -> None:
    async with running(with_email_policy(messages_per_client=3, period_seconds=600)) as mailbox:

        def send_all() -> list[int]:
            codes = []
            with mailbox.connect() as smtp:
                smtp.ehlo()
                for number in range(5):
                    smtp.rset()
                    code, _ = smtp.mail(f"p{number}@example.org")
                    codes.append(code)
            return codes

        assert await asyncio.to_thread(send_all) == [250, 250, 250, 451, 451]
