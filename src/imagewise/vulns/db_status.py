"""``imagewise db status`` as a document and as text: sources, records per ecosystem, age."""

from __future__ import annotations

from typing import Any


def db_status_json(status: Any, feeds: dict[str, Any]) -> dict[str, Any]:
    return {**status.to_json(), "feeds": feeds}


def db_status_table(status: Any, feeds: dict[str, Any]) -> str:
    age = status.age_days()
    lines = [
        f"database: {status.path}",
        f"records: {status.records} ({status.withdrawn} withdrawn)",
        f"newest record: {status.newest_modified or '-'}"
        + (f" ({age:.1f} days old)" if age is not None else ""),
        f"last import: {status.last_import or '-'}",
        "ecosystems:",
    ]
    lines += [f"  {eco:<20} {n}" for eco, n in status.per_ecosystem.items()]
    lines.append("sources:")
    lines += [f"  {path}  ({n} records, imported {when})" for path, when, n in status.sources]
    if feeds:
        lines.append("updates (imagewise db update):")
        lines += [
            f"  {eco:<20} checked {f['checked_at']}, changed {f['updated_at']}"
            for eco, f in feeds.items()
        ]
    return "".join(line + "\n" for line in lines)
