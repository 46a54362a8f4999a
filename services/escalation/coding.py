"""HCAT coding of a case: severities per category, harm and stage of care. Pure rules, no I/O.

A handler of the case or the quality officer codes it; recoding is a new event and the old one stays.
A blind coding is a second coder's, kept apart to measure agreement: it is never shown in the case view
and never the case's coding, which is the latest coding that is not blind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import get_args

from eventsourcing.domain import Aggregate, event

from shared import refusals
from shared.events import CareStage, HcatCategory

HCAT_CATEGORIES: tuple[HcatCategory, ...] = get_args(HcatCategory)


@dataclass(frozen=True)
class Coding:
    coded_by: str
    blind: bool
    severities: dict[HcatCategory, int]  # every category, 0 where it is not present
    harm: int
    stage: CareStage
    at: datetime

    @property
    def present(self) -> list[HcatCategory]:
        """The categories the complaint is about (severity above 0), in HCAT order."""
        return [category for category in HCAT_CATEGORIES if self.severities[category] > 0]


def every_category(severities: dict[HcatCategory, int]) -> dict[HcatCategory, int]:
    """Severities for all seven categories: a category not given is not present (0)."""
    return {category: severities.get(category, 0) for category in HCAT_CATEGORIES}


class CodingOfCase(Aggregate):
    """The HCAT codings of a case (part of ``Case``)."""

    codings: list[Coding]

    class Coded(Aggregate.Event):
        coded_by: str
        blind: bool
        severities: dict[str, int]
        harm: int
        stage: str
        at: datetime

    def people(self) -> set[str]:
        raise NotImplementedError  # the case's people, see Case

    @property
    def coding(self) -> Coding | None:
        """The case's coding: the latest that is not blind."""
        return next((coding for coding in reversed(self.codings) if not coding.blind), None)

    def code(
        self,
        by: str,
        anywhere: bool,
        severities: dict[HcatCategory, int],
        harm: int,
        stage: CareStage,
        blind: bool,
        at: datetime,
    ) -> None:
        """``anywhere``: the coder may code any case (the quality officer); otherwise (a handler) only a
        case they are among the people of. A blind coding is a second coder's: not by whoever coded the
        case openly."""
        if not anywhere and by not in self.people():
            raise refusals.NotPermitted(f"{by} is not among the people of this case")
        if blind and any(coding.coded_by == by and not coding.blind for coding in self.codings):
            raise refusals.NotPossible(f"{by} coded this case openly: a blind coding is a second coder's")
        self._code(
            coded_by=by, blind=blind, severities=every_category(severities), harm=harm, stage=stage, at=at
        )

    @event(Coded)
    def _code(
        self,
        coded_by: str,
        blind: bool,
        severities: dict[HcatCategory, int],
        harm: int,
        stage: CareStage,
        at: datetime,
    ) -> None:
        self.codings.append(Coding(coded_by, blind, severities, harm, stage, at))
