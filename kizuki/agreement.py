"""Agreement between coders: each blind second coding against the case's own coding, per HCAT category.

Published replications of HCAT find severity and safety the hardest to code alike; Cohen's kappa says
how far two coders agree beyond what chance would give.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from kizuki.analysis import Case

SEVERITY_LEVELS = 4  # HCAT severity 0-3


def kappa(pairs: Sequence[tuple[int, int]], levels: int, weighted: bool) -> float | None:
    """Cohen's kappa of two coders over ``levels`` ordered values; with linear weights (a near miss
    counts partly: 1 - |a - b| / (levels - 1)) when ``weighted``. None when chance explains all."""
    if not pairs:
        return None

    def agree(a: int, b: int) -> float:
        return 1 - abs(a - b) / (levels - 1) if weighted else float(a == b)

    n = len(pairs)
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    observed = sum(agree(a, b) for a, b in pairs) / n
    expected = sum(first[a] * second[b] * agree(a, b) for a in range(levels) for b in range(levels)) / n / n
    return None if expected == 1 else round((observed - expected) / (1 - expected), 4)


def agreement(cases: Sequence[Case], category: str) -> dict[str, Any]:
    """Each blind coding against the case's own coding, for one category."""
    pairs = [
        (case.coding.severity(category), blind.severity(category))
        for case in cases
        if case.coding is not None
        for blind in case.blind
    ]
    present = [(int(a > 0), int(b > 0)) for a, b in pairs]
    return {
        "pairs": len(pairs),
        "kappa_present": kappa(present, 2, weighted=False),
        "kappa_severity_linear": kappa(pairs, SEVERITY_LEVELS, weighted=True),
    }
