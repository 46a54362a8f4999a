"""Real delivery providers in the test process: an SMTP server (aiosmtpd) and an HTTP endpoint
(http.server in a thread), each told how to answer."""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kizuki.processes import free_port


@dataclass
class Mailbox:
    """What the SMTP server accepted, and the replies it gives to RCPT for given addresses."""

    messages: list[EmailMessage] = field(default_factory=list)
    replies: dict[str, str] = field(default_factory=dict)
    logins: list[tuple[str, str]] = field(default_factory=list)
    tls: list[bool] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.replies.get(address, "250 OK")
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.tls.append(session.ssl is not None)
        self.messages.append(message_from_bytes(content, policy=policy.default))
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"right")


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    issued = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued - timedelta(minutes=1))
        .not_valid_after(issued + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@contextmanager
def smtp_server(certificate: tuple[Path, Path] | None = None) -> Iterator[tuple[int, Mailbox]]:
    """An SMTP server on a free loopback port offering AUTH; with a certificate it requires STARTTLS
    first, without one it offers AUTH in the clear (it is loopback)."""
    mailbox = Mailbox()
    port = free_port()
    tls: dict[str, Any] = {"auth_require_tls": False}
    if certificate is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
        tls = {"tls_context": context, "require_starttls": True}
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, authenticator=mailbox.authenticate, **tls
    )
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Endpoint:
    """Answers each POST with the next status in ``statuses`` (then 200) and the body ``reply``, after
    ``delay`` seconds (a slow provider; ``most_in_flight`` is the most requests it held at once); a path
    in ``hanging`` holds its requests until ``release`` is set (``held`` lists them)."""

    statuses: list[int] = field(default_factory=list)
    reply: bytes = b"{}"
    delay: float = 0.0
    in_flight: int = 0
    most_in_flight: int = 0
    hanging: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    requests: list[Request] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: Request) -> int:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return self._answer(request)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _answer(self, request: Request) -> int:
        time.sleep(self.delay)  # in the server's thread: a provider taking its time over each request
        if request.path in self.hanging and not self.release.is_set():
            with self.lock:
                self.held.append(request.path)
            self.release.wait(30)
        with self.lock:
            self.requests.append(request)
            return self.statuses.pop(0) if self.statuses else 200

    def keys(self) -> list[str]:
        """The Idempotency-Key of each request taken, in order."""
        with self.lock:
            return [request.headers["Idempotency-Key"] for request in self.requests]


@contextmanager
def http_endpoint() -> Iterator[tuple[str, Endpoint]]:
    endpoint = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Type", "").startswith("application/json"):
                body: Any = json.loads(raw)
            else:
                body = dict(parse_qsl(raw.decode()))
            status = endpoint.answer(Request(self.path, dict(self.headers.items()), body))
            with contextlib.suppress(ConnectionError):  # a client killed while its request was held
                self.send_response(status)
                self.send_header("Content-Length", str(len(endpoint.reply)))
                self.end_headers()
                self.wfile.write(endpoint.reply)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests assert on the requests instead."""

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", endpoint
    finally:
        endpoint.release.set()
        server.shutdown()
        server.server_close()
