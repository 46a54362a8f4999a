"""E-mail over SMTP, with STARTTLS and authentication as configured."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage

from services.notifier.channels import DeliveryFailed, FailureKind, Message, SmtpConfig


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
            code, _ = next(iter(refused.recipients.values()))
            raise _by_code("rejected_recipient", code) from None
        except smtplib.SMTPAuthenticationError as error:
            raise _by_code("auth_failed", error.smtp_code) from None
        except smtplib.SMTPResponseException as error:
            raise _by_code("rate_limited" if error.smtp_code == 421 else "refused", error.smtp_code) from None
        except TimeoutError:
            raise DeliveryFailed("timeout", permanent=False) from None
        except (OSError, smtplib.SMTPException):
            raise DeliveryFailed("unreachable", permanent=False) from None


def _by_code(kind: FailureKind, code: int) -> DeliveryFailed:
    """4xx replies are transient, 5xx permanent (RFC 5321). The reply's text is dropped: it names
    the address."""
    return DeliveryFailed(kind, permanent=500 <= code < 600, status=f"SMTP {code}")
