"""Webhooks (generic JSON, Slack, LINE, WeChat Work) and SMS through a provider's HTTP API."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from services.notifier.channels import DeliveryFailed, Message, SmsConfig


def webhook_body(format: str, message: Message) -> dict[str, Any]:
    """The body each tool expects; the address is whom to mention or push to."""
    match format:
        case "slack":  # Slack incoming webhook; the address is a member id to mention
            return {"text": f"<@{message.address}> {message.text}"}
        case "line":  # LINE Messaging API push; the address is the user id
            return {"to": message.address, "messages": [{"type": "text", "text": message.text}]}
        case "wechat":  # WeChat Work group robot; the address is the mobile number to mention
            return {
                "msgtype": "text",
                "text": {"content": message.text, "mentioned_mobile_list": [message.address]},
            }
        case _:
            return {
                "delivery_id": str(message.delivery_id),
                "to": message.address,
                "subject": message.subject,
                "text": message.text,
            }


class HttpChannel:
    """POSTs one request per message with the idempotency key in the headers providers read it from
    (``Idempotency-Key``; LINE's ``X-Line-Retry-Key``). 5xx, 429 and no answer are transient; any
    other 4xx is permanent."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        self.url = url
        self.headers = headers
        self.timeout = timeout

    async def post(self, message: Message, **body: Any) -> None:
        key = str(message.idempotency_key)
        headers = self.headers | {"Idempotency-Key": key, "X-Line-Retry-Key": key}
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(self.url, headers=headers, **body)
        except httpx.TimeoutException:
            raise DeliveryFailed("timeout", permanent=False) from None
        except httpx.HTTPError:
            raise DeliveryFailed("unreachable", permanent=False) from None
        if not response.is_success:
            raise refusal(response.status_code)


def refusal(status: int) -> DeliveryFailed:
    """What an HTTP status says, without the body: a provider's error text often echoes the address."""
    if status in (401, 403):
        return DeliveryFailed("auth_failed", permanent=True, status=f"HTTP {status}")
    if status == 429:
        return DeliveryFailed("rate_limited", permanent=False, status=f"HTTP {status}")
    if status >= 500:
        return DeliveryFailed("server_error", permanent=False, status=f"HTTP {status}")
    return DeliveryFailed("refused", permanent=True, status=f"HTTP {status}")


class WebhookChannel:
    def __init__(self, http: HttpChannel, format: str) -> None:
        self.http = http
        self.format = format

    async def send(self, message: Message) -> None:
        await self.http.post(message, json=webhook_body(self.format, message))


class SmsChannel:
    def __init__(self, http: HttpChannel, config: SmsConfig) -> None:
        self.http = http
        self.config = config

    async def send(self, message: Message) -> None:
        fields = {
            name: template.format(to=message.address, text=message.text, delivery_id=message.delivery_id)
            for name, template in self.config.body.items()
        }
        if self.config.encoding == "json":
            await self.http.post(message, json=fields)
        else:
            await self.http.post(message, data=fields)


def basic_auth(username: str, password: str) -> dict[str, str]:
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}
