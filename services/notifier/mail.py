"""E-mail over SMTP, with STARTTLS and authentication as configured."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage

from services.notifier.channels import DeliveryFailed, Message, SmtpConfig


class SmtpChannel:
    """One SMTP session per message. The Message-ID is the idempotency key, so a message sent again
    after a crash can be recognised by the receiving side as the same one."""

    def __init__(self, config: SmtpConfig, password: str | None, timeout: float) -> None:
        self.config = config
        self.password = password
        self.timeout = timeout

    async def send(self, message: Message) -> None:
        await asyncio.to_thread(self._send, message)

    def _send(self, message: Message) -> None:
        mail = EmailMessage()
        mail["From"] = self.config.sender
        mail["To"] = message.address
        mail["Subject"] = message.subject
        mail["Message-ID"] = f"<{message.idempotency_key}@kizuki>"
        mail.set_content(message.text)
        try:
            with smtplib.SMTP(self.config.host, self.config.port, timeout=self.timeout) as smtp:
                if self.config.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=self.config.ca_file))
                if self.config.username is not None:
                    smtp.login(self.config.username, self.password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as refused:
            code, reply = next(iter(refused.recipients.values()))
            raise _by_code(code, reply) from None
        except smtplib.SMTPResponseException as error:
            raise _by_code(error.smtp_code, error.smtp_error) from None
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryFailed(f"SMTP server not reachable: {error!r}", permanent=False) from None


def _by_code(code: int, reply: bytes | str) -> DeliveryFailed:
    """4xx replies are transient, 5xx permanent (RFC 5321)."""
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    return DeliveryFailed(f"SMTP {code} {text}", permanent=500 <= code < 600)
