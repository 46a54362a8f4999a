"""The console's languages: Babel message catalogues (ja, zh, en) and times in the hospital's time zone."""

from __future__ import annotations

import gettext
from datetime import datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("ja", "zh", "en")
LANGUAGE_NAMES = {"ja": "日本語", "zh": "中文", "en": "English"}
LOCALES = {"ja": "ja_JP", "zh": "zh_Hans_CN", "en": "en_GB"}
CATALOGUES = Path(__file__).parent / "locale"
DOMAIN = "console"


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The language's catalogue, compiled from its .po file when first asked for."""
    path = CATALOGUES / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        catalogue = read_po(po, locale=LOCALES[language])
    compiled = BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


@cache
def locale_of(language: str) -> Locale:
    """Parsed once: Babel parses a locale given by name on every date it formats."""
    return Locale.parse(LOCALES[language])


class Clock:
    """Times as a person reads them: in the hospital's time zone, in their language."""

    def __init__(self, timezone: str, language: str) -> None:
        self.zone = ZoneInfo(timezone)
        self.locale = locale_of(language)

    def time(self, moment: datetime, now: datetime) -> str:
        """The time alone when it is today, the date and time otherwise."""
        local, today = moment.astimezone(self.zone), now.astimezone(self.zone)
        if local.date() == today.date():
            return format_time(local, "HH:mm", tzinfo=self.zone, locale=self.locale)
        return format_datetime(local, "short", tzinfo=self.zone, locale=self.locale)

    def full(self, moment: datetime) -> str:
        return format_datetime(moment, "medium", tzinfo=self.zone, locale=self.locale)

    def local_input(self, moment: datetime) -> str:
        """For a ``datetime-local`` field."""
        return moment.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M")
