"""Each `kizuki` run is a process of its own: what loads slowly is imported by the commands that need it,
so that reading the record or printing the help does not pay for FastAPI, argon2, openpyxl, matplotlib,
the FHIR models; and no command loads a service's code at all."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SLOW = ("fastapi", "argon2", "openpyxl", "matplotlib", "fhir")


def modules_loaded(code: str) -> set[str]:
    shown = "import sys; " + code + "; print('\\n'.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", shown], capture_output=True, text=True, check=True)
    return set(done.stdout.splitlines())


def test_the_command_and_its_parser_load_none_of_the_slow_modules() -> None:
    loaded = modules_loaded("from kizuki.cli import _parser; _parser().format_help()")
    assert "kizuki.cli" in loaded
    assert [module for module in SLOW if module in loaded] == []


def test_no_module_of_the_command_loads_a_service() -> None:
    root = Path(__file__).parents[2]
    commands = [f"kizuki.{source.stem}" for source in sorted((root / "kizuki").glob("*.py"))]
    loaded = modules_loaded("; ".join(f"import {module}" for module in commands))
    assert set(commands) - {"kizuki.__init__"} <= loaded
    assert sorted(module for module in loaded if module.split(".")[0] == "services") == []


# The bus and store plumbing every service runs; the HTTP layer is shared/service.py and what it loads.
PLUMBING = (
    "shared.runtime",
    "shared.outbox",
    "shared.consumer",
    "shared.store",
    "shared.privacy",
    "shared.timers",
    "shared.metrics",
    "shared.secret_files",
)
# Not uvicorn: faststream imports it at import time when it is installed, to offer its ASGI runner.
HTTP_LAYER = ("fastapi", "starlette", "shared.auth", "shared.service")


def test_the_bus_and_store_plumbing_loads_no_http_layer() -> None:
    loaded = modules_loaded("; ".join(f"import {module}" for module in PLUMBING))
    assert set(PLUMBING) <= loaded
    assert [module for module in HTTP_LAYER if module in loaded] == []


def test_no_service_imports_another_service() -> None:
    root = Path(__file__).parents[2]
    crossing = []
    for source in sorted((root / "services").glob("*/**/*.py")):
        own = source.relative_to(root / "services").parts[0]
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            crossing += [
                f"{source.relative_to(root)} imports {name}"
                for name in names
                if name.startswith("services.") and name.split(".")[1] != own
            ]
    assert crossing == []
