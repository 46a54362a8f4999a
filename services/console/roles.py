"""Which console pages each role may open; the owning services still decide every action."""

from __future__ import annotations

from shared.directory import Role

# The overview is read by those who answer for the regime; the auditor reads everything.
OVERVIEW: frozenset[Role] = frozenset({"executive", "quality", "auditor"})
RECORD: frozenset[Role] = frozenset({"auditor"})
ERASURE: frozenset[Role] = frozenset({"administrator"})
# Each page's path and who may open it: its link is shown only to them.
PAGES = {"/overview": OVERVIEW, "/record": RECORD, "/erase": ERASURE}
NOT_FOR_YOUR_ROLE = "This page is not for your role."
