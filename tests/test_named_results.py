"""Results that cross module boundaries have named fields (and still unpack as before)."""

from __future__ import annotations

from pathlib import Path

from imagewise.vulns.scan import DBMatch, match_with_db


def test_match_with_db_names_what_it_gives(tmp_path: Path) -> None:
    found = match_with_db([], tmp_path / "none.sqlite")
    assert isinstance(found, DBMatch)
    assert found.vulnerabilities == [] and found.status is None and found.warnings == []
    assert found.note.startswith("vulnerability scan skipped: no database at")
    vulns, status, note, warnings = found  # still a 4-tuple where one is unpacked
    assert note == found.note
