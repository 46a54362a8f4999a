"""Intake's chat webhooks: LINE and WeChat official accounts post what patients write to them."""

# Without `from __future__ import annotations`: FastAPI reads these signatures.
import asyncio
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.responses import PlainTextResponse

from services.intake.application import IntakeApplication
from services.intake.channels import (
    ChannelMessage,
    Malformed,
    NotAuthentic,
    check_line_signature,
    check_wechat_signature,
    line_messages,
    wechat_decrypted,
    wechat_message,
)
from services.intake.domain import Receipt
from shared.auth import Refused
from shared.policy import Inbox, IntakePolicy
from shared.timers import now


def configured(path: Path) -> bytes:
    """A secret file's content, empty when there is none; read at each request, so that a secret set
    up after the start is used at once."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        return b""


def not_set_up(channel: str, missing: str) -> HTTPException:
    """503 saying what is missing; where the server keeps it is for its operator, not for the caller."""
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"the {channel} channel is not set up here: {missing}"
    )


def channel_secret(path: Path, channel: str, what: str) -> bytes:
    secret = configured(path)
    if not secret:
        raise not_set_up(channel, f"its {what} is not configured")
    return secret


def router(
    store: IntakeApplication,
    policy: IntakePolicy,
    line_secret: Path,
    wechat_token: Path,
    wechat_aes_key: Path,
    wechat_plaintext: bool,
) -> APIRouter:
    """``wechat_plaintext``: take WeChat's plaintext mode (the body not signed) when no EncodingAESKey is
    set up; otherwise only safe mode is taken."""
    api = APIRouter(prefix="/v1/channels", tags=["channels"])

    async def take(messages: list[ChannelMessage], inbox: Inbox) -> list[Receipt]:
        receipts = []
        for message in messages:
            receipt = await asyncio.to_thread(
                store.receive_message, message, inbox, policy.default_language, now()
            )
            receipts.append(receipt)
        return receipts

    @api.post("/line")
    async def line_webhook(
        request: Request, x_line_signature: Annotated[str | None, Header()] = None
    ) -> dict[str, int]:
        """LINE's webhook: each text message becomes a complaint (or joins the sender's recent one)."""
        secret = channel_secret(line_secret, "LINE", "channel secret")
        body = await request.body()
        try:
            check_line_signature(secret, body, x_line_signature)
            messages = line_messages(body)
        except NotAuthentic as error:
            raise Refused(request, status.HTTP_401_UNAUTHORIZED, str(error), "LINE webhook") from None
        except Malformed as error:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(error)) from None
        return {"messages": len(await take(messages, policy.line))}

    def check_wechat(
        request: Request, signature: str | None, timestamp: str | None, nonce: str | None
    ) -> str:
        """The token, once the request is found signed with it."""
        token = channel_secret(wechat_token, "WeChat", "token").decode()
        try:
            check_wechat_signature(token, signature, timestamp, nonce, now())
        except NotAuthentic as error:
            raise Refused(request, status.HTTP_401_UNAUTHORIZED, str(error), "WeChat webhook") from None
        return token

    @api.get("/wechat", response_class=PlainTextResponse)
    async def wechat_verification(
        request: Request,
        echostr: Annotated[str, Query(max_length=200)],
        signature: str | None = None,
        timestamp: str | None = None,
        nonce: str | None = None,
    ) -> str:
        """WeChat's check of the server URL: the echo string back, if the request is signed."""
        check_wechat(request, signature, timestamp, nonce)
        return echostr

    @api.post("/wechat", response_class=PlainTextResponse)
    async def wechat_webhook(
        request: Request,
        signature: str | None = None,
        timestamp: str | None = None,
        nonce: str | None = None,
        encrypt_type: str | None = None,
        msg_signature: str | None = None,
    ) -> str:
        """WeChat's push: a text message becomes a complaint; 'success' answers it. Only safe-mode
        (encrypted, signed) pushes are taken, unless plaintext mode was asked for and no EncodingAESKey
        is set up."""
        token = check_wechat(request, signature, timestamp, nonce)
        assert timestamp is not None  # checked with the signature
        assert nonce is not None
        aes_key = configured(wechat_aes_key).decode()
        if not aes_key and not wechat_plaintext:
            raise not_set_up("WeChat", "safe mode needs its EncodingAESKey, and plaintext mode is off")
        body = await request.body()
        try:
            if aes_key:
                if encrypt_type != "aes":
                    raise NotAuthentic("safe mode is set up: a plaintext push is refused")
                body = wechat_decrypted(token, aes_key, msg_signature, timestamp, nonce, body)
            message = wechat_message(body)
        except NotAuthentic as error:
            raise Refused(request, status.HTTP_401_UNAUTHORIZED, str(error), "WeChat webhook") from None
        except Malformed as error:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(error)) from None
        await take([message] if message is not None else [], policy.wechat)
        return "success"

    return api
