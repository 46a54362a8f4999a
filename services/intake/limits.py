"""What one registration may hold, whichever door it came through (API, form, chat, e-mail, import).
Pure rules: the registration checks them, and a door may check them earlier to answer in its own way."""

from __future__ import annotations

import re

# A sealed complaint must stay far below the bus's largest message (1 MiB), and a person reads it.
MAX_SUMMARY = 4000
MAX_FIELD = 200
MAX_CATEGORY = 100
# One mailbox: no list, no display name, no comment; a receipt goes to exactly one address.
_ONE_MAILBOX = re.compile(r'^[^\s@,;:<>()\[\]\\"]+@[^\s@,;:<>()\[\]\\"]+$')
_LIST_SEPARATORS = re.compile(r"[,;\n\r]")


def summary_problem(summary: str) -> str | None:
    """Why a complaint's text cannot be registered as it is, or None; never shortened in silence."""
    length = len(summary.strip())
    if not length:
        return "must not be blank"
    if length > MAX_SUMMARY:
        return f"is {length:,} characters long; at most {MAX_SUMMARY:,} are taken"
    return None


def contact_problem(contact: str) -> str | None:
    """Why a complainant's contact cannot be used for the receipt, or None: it is exactly one e-mail
    address or one phone number (or a chat account), never a list."""
    if len(contact) > MAX_FIELD:
        return f"is longer than {MAX_FIELD} characters"
    if "@" in contact:
        if not _ONE_MAILBOX.match(contact.strip()):
            return "must be exactly one e-mail address (name@domain), not a list or a name with an address"
    elif _LIST_SEPARATORS.search(contact):
        return "must be exactly one phone number or address, not a list"
    return None
