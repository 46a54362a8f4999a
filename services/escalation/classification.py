"""The tier of a complaint that arrived without one. Pure."""

from __future__ import annotations

from shared.policy import Classification


def classify(summary: str, category: str | None, given: str | None, rules: Classification) -> tuple[str, str]:
    """The tier and where it came from: the channel's own, the first matching rule (by category or by
    a keyword in the summary), or the default."""
    if given is not None:
        return given, "given at intake"
    text = summary.casefold()
    folded_category = category.casefold() if category else None
    for rule in rules.rules:
        if folded_category in {known.casefold() for known in rule.categories}:
            return rule.tier, f"category {category!r}"
        for keyword in rule.keywords:
            if keyword.casefold() in text:
                return rule.tier, f"keyword {keyword!r}"
    return rules.default_tier, "policy default"
