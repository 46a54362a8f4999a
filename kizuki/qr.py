"""`kizuki intake qr`: a ward's QR code, a PNG that opens the complaint form with its department set."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import qrcode
from qrcode.image.pure import PyPNGImage


def form_link(base_url: str, department: str) -> str:
    return f"{base_url.rstrip('/')}/form?{urlencode({'department': department})}"


def write_qr(link: str, path: Path) -> None:
    """Pure-Python PNG (pypng), with a margin wide enough for a phone camera."""
    qrcode.make(link, image_factory=PyPNGImage, border=4).save(str(path))
