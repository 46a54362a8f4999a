"""What "My work" and the callbacks page narrow to: a tier, a department, the overdue only. Kept in
the session, so that they survive going to a case and back, and shown in each page's address."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

# The filter form sends this with its fields, so that choosing "all" again is a choice, not nothing.
CHOSEN = "filter"


@dataclass(frozen=True)
class Filters:
    tier: str = ""
    department: str = ""
    overdue: bool = False

    @classmethod
    def chosen(cls, query: Mapping[str, str], kept: Filters) -> Filters:
        """The filters a page's query string chose, or ``kept`` (the session's) when it chose none."""
        if CHOSEN not in query and not any(name in query for name in ("tier", "department", "overdue")):
            return kept
        return cls(query.get("tier", ""), query.get("department", ""), query.get("overdue") == "yes")

    @property
    def any(self) -> bool:
        return bool(self.tier or self.department or self.overdue)

    def query(self, page: int = 1) -> str:
        """As a query string (with its "?"), with the page when it is not the first; "" when nothing is
        filtered on the first page."""
        fields = {"tier": self.tier, "department": self.department, "overdue": "yes" if self.overdue else ""}
        fields["page"] = str(page) if page > 1 else ""
        kept = urlencode({name: value for name, value in fields.items() if value})
        return f"?{kept}" if kept else ""


NO_FILTERS = Filters()
