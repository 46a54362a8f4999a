"""Which console pages each role may open; the owning services still decide every action."""

from __future__ import annotations

from shared.directory import Role

# The overview is read by those who answer for the regime; the auditor reads everything.
OVERVIEW: frozenset[Role] = frozenset({"executive", "quality", "auditor"})
# The periodic analysis (`kizuki analysis`) is for the same people.
ANALYSIS: frozenset[Role] = OVERVIEW
RECORD: frozenset[Role] = frozenset({"auditor"})
ERASURE: frozenset[Role] = frozenset({"administrator"})
# How the system is running: for those who run it (administrators) and who watch over it.
STATUS: frozenset[Role] = frozenset({"administrator", "quality", "auditor"})
# Each page's path and who may open it: its link is shown only to them.
PAGES = {
    "/overview": OVERVIEW,
    "/analysis": ANALYSIS,
    "/record": RECORD,
    "/erase": ERASURE,
    "/status": STATUS,
}
NOT_FOR_YOUR_ROLE = "This page is not for your role."
