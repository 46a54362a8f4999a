"""The tier of a complaint that arrived without one. Pure."""

from __future__ import annotations

from shared.policy import Classification


def classify(summary: str, given: str | None, rules: Classification) -> tuple[str, str]:
    """The tier and where it came from: the channel's own, the first matching rule, or the default."""
    if given is not None:
        return given, "given at intake"
    text = summary.casefold()
    for rule in rules.rules:
        for keyword in rule.keywords:
            if keyword.casefold() in text:
                return rule.tier, f"keyword {keyword!r}"
    return rules.default_tier, "policy default"
