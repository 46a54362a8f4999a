"""`kizuki staff`: the staff directory as a table, so that a newcomer knows whom to sign in as."""

from __future__ import annotations

from typing import TextIO

from shared.directory import Directory

COLUMNS = ("id", "name", "roles", "department", "line", "language")


def line_of(directory: Directory, staff_id: str) -> str:
    """Their supervisor, that one's, and so on up: whom an unanswered alert goes to in the end."""
    line: list[str] = []
    current = directory.staff[staff_id].supervisor
    while current is not None and current not in line and current != staff_id:
        line.append(current)
        member = directory.staff.get(current)
        current = member.supervisor if member is not None else None
    return " > ".join(line) or "-"


def rows(directory: Directory) -> list[tuple[str, ...]]:
    """One row a member of staff, in directory order; the department's handler says so."""
    handlers = {department.handler: name for name, department in directory.departments.items()}
    found: list[tuple[str, ...]] = []
    for staff_id, member in directory.staff.items():
        roles: list[str] = [role for role in member.roles if not (role == "handler" and staff_id in handlers)]
        if staff_id in handlers:
            roles.append(f"handler of {handlers[staff_id]}")
        if staff_id == directory.duty_manager:
            roles.append("duty manager")
        line = line_of(directory, staff_id)
        found.append((staff_id, member.name, ", ".join(roles), member.department, line, member.language))
    return found


def print_staff(directory: Directory, out: TextIO) -> None:
    table = [COLUMNS, *rows(directory)]
    widths = [max(len(row[column]) for row in table) for column in range(len(COLUMNS))]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out
        )
    print(
        f"\nexecutives: {', '.join(directory.executives)}; duty manager: {directory.duty_manager}"
        "\nsign in as one of them with `kizuki token <id>`",
        file=out,
    )
