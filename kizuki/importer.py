"""`kizuki import FILE`: a call-centre log or survey results, as CSV or .xlsx, registered row by row."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import openpyxl

# Well under the services' 64 KiB body limit, with room for JSON escapes.
BATCH_BYTES = 40 * 1024
BATCH_ROWS = 200

Row = dict[str, Any]  # {"line": …, "values": {column: text}}


class ImportFailed(Exception):
    """The file cannot be read, or intake refused the import as a whole."""


def read_rows(path: Path) -> Iterator[Row]:
    """Each row with its line in the file (the header is line 1) and its cells as text."""
    if path.suffix.lower() == ".xlsx":
        yield from _xlsx_rows(path)
    elif path.suffix.lower() == ".csv":
        yield from _csv_rows(path.read_bytes())
    else:
        raise ImportFailed(f"{path.name}: only .csv and .xlsx files can be imported")


def _csv_rows(content: bytes) -> Iterator[Row]:
    try:
        text = content.decode("utf-8-sig")  # Excel writes a byte-order mark
    except UnicodeDecodeError:
        raise ImportFailed("the CSV file is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for values in reader:
        extra = values.pop(None, None)  # DictReader's key for surplus cells
        cells = {name: value or "" for name, value in values.items()}
        if extra:
            cells["(surplus cells)"] = ",".join(extra)
        if any(cell.strip() for cell in cells.values()):
            yield {"line": reader.line_num, "values": cells}


def _xlsx_rows(path: Path) -> Iterator[Row]:
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        header = [str(cell or "").strip() for cell in next(rows, ())]
        for line, row in enumerate(rows, start=2):
            cells = {name: _cell_text(cell) for name, cell in zip(header, row, strict=False) if name}
            if any(cells.values()):
                yield {"line": line, "values": cells}
    finally:
        workbook.close()


def _cell_text(cell: object) -> str:
    if isinstance(cell, datetime | date):
        return cell.isoformat()  # a spreadsheet date has no offset: the row is then refused, saying so
    return "" if cell is None else str(cell).strip()


def batches(rows: Iterator[Row]) -> Iterator[list[Row]]:
    batch: list[Row] = []
    size = 0
    for row in rows:
        row_size = len(json.dumps(row, ensure_ascii=False).encode())
        if batch and (size + row_size > BATCH_BYTES or len(batch) == BATCH_ROWS):
            yield batch
            batch, size = [], 0
        batch.append(row)
        size += row_size
    if batch:
        yield batch


def import_file(intake_url: str, token: str, path: Path, channel: str) -> list[dict[str, Any]]:
    """Every row's result from intake, in file order."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise ImportFailed(f"{path}: {error.strerror}") from None
    results: list[dict[str, Any]] = []
    with httpx.Client(base_url=intake_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        for batch in batches(read_rows(path)):
            response = http.post(
                "/v1/imports", json={"channel": channel, "file_digest": digest, "rows": batch}
            )
            if response.status_code != 200:
                raise ImportFailed(f"intake refused the import ({response.status_code}): {response.text}")
            results.extend(response.json())
    return results


def report(results: list[dict[str, Any]]) -> str:
    registered = [result for result in results if result["outcome"] != "rejected"]
    rejected = [result for result in results if result["outcome"] == "rejected"]
    already = sum(not result["new"] for result in registered)
    lines = [f"accepted {len(registered)} rows ({already} of them imported before: nothing new)"]
    lines += [f"line {result['line']}: registered as {result['complaint_id']}" for result in registered]
    lines.append(f"rejected {len(rejected)} rows")
    lines += [f"line {result['line']}: {result['reason']}" for result in rejected]
    return "\n".join(lines)
