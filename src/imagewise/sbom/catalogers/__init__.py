"""The declared catalogers, one table: what each reads and which package types it produces."""

from __future__ import annotations

from imagewise.sbom.catalogers import golang, java, npm, os, python, rpm
from imagewise.sbom.catalogers.base import Cataloger, Distro, FileInfo, Parsed

#: every cataloger, in the order they are consulted (first match wins for a path)
ALL: tuple[Cataloger, ...] = (
    *os.CATALOGERS,
    *rpm.CATALOGERS,
    *python.CATALOGERS,
    *npm.CATALOGERS,
    *java.CATALOGERS,
    *golang.CATALOGERS,
)

BY_ID: dict[str, Cataloger] = {c.id: c for c in ALL}

__all__ = ["ALL", "BY_ID", "Cataloger", "Distro", "FileInfo", "Parsed"]
