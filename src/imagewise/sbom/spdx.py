"""SPDX 2.3 JSON through ``spdx-tools`` (validated by the library while writing). Licenses that
are not valid SPDX expressions go to ``licenseComments`` with ``NOASSERTION`` declared."""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from imagewise import __version__
from imagewise.errors import ImagewiseError
from imagewise.sbom.catalog import Catalog
from imagewise.sbom.model import Package


def _spdx_id(i: int, p: Package) -> str:
    return "SPDXRef-Package-" + re.sub(r"[^A-Za-z0-9.-]+", "-", f"{p.type}-{p.name}-{i}")


def _declared(p: Package, licensing: Any) -> tuple[Any, str | None]:
    from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion

    if not p.licenses:
        return SpdxNoAssertion(), None
    text = " AND ".join(f"({x})" if " " in x else x for x in p.licenses)
    try:
        info = licensing.validate(text, strict=True)
        if not info.errors:
            return licensing.parse(text), None
    except Exception:  # noqa: BLE001, S110 - fall through to a comment
        pass
    return SpdxNoAssertion(), "declared: " + "; ".join(p.licenses)


def build_document(cat: Catalog) -> Any:
    from license_expression import get_spdx_licensing
    from spdx_tools.spdx.model.actor import Actor, ActorType
    from spdx_tools.spdx.model.document import CreationInfo, Document
    from spdx_tools.spdx.model.package import (
        ExternalPackageRef,
        ExternalPackageRefCategory,
        Package as SpdxPackage,
    )
    from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
    from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion

    licensing = get_spdx_licensing()
    name = cat.source or "image"
    info = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name=name,
        document_namespace=f"https://imagewise.invalid/spdx/{re.sub(r'[^A-Za-z0-9.-]+', '-', name)}"
        f"-{uuid.uuid4()}",
        creators=[Actor(ActorType.TOOL, f"imagewise-{__version__}")],
        created=datetime.now(UTC).replace(microsecond=0),
    )
    root = SpdxPackage(
        spdx_id="SPDXRef-Image",
        name=name,
        download_location=SpdxNoAssertion(),
        files_analyzed=False,
        license_concluded=SpdxNoAssertion(),
        license_declared=SpdxNoAssertion(),
        copyright_text=SpdxNoAssertion(),
    )
    packages = [root]
    rels = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, "SPDXRef-Image")]
    for i, p in enumerate(cat.packages):
        declared, comment = _declared(p, licensing)
        refs = (
            [ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", p.purl)]
            if p.purl
            else []
        )
        where = p.introduced_by
        note = f"type {p.type}"
        if where is not None:
            note += f"; layer {where.layer}; path /{where.path}"
        if p.from_base is not None:
            note += f"; from base image: {str(p.from_base).lower()}"
        sid = _spdx_id(i, p)
        packages.append(
            SpdxPackage(
                spdx_id=sid,
                name=p.name,
                version=p.version or None,
                download_location=SpdxNoAssertion(),
                files_analyzed=False,
                license_concluded=SpdxNoAssertion(),
                license_declared=declared,
                license_comment=comment,
                copyright_text=SpdxNoAssertion(),
                source_info=f"source package {p.source_name} {p.source_version}".strip()
                if p.source_name
                else None,
                external_references=refs,
                comment=note,
            )
        )
        rels.append(Relationship("SPDXRef-Image", RelationshipType.CONTAINS, sid))
    return Document(creation_info=info, packages=packages, relationships=rels)


def render_spdx(cat: Catalog) -> str:
    from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

    buf = io.StringIO()
    try:
        write_document_to_stream(build_document(cat), buf, validate=True)
    except ValueError as e:  # spdx-tools raises ValueError listing validation messages
        raise ImagewiseError(f"SPDX document failed validation: {e}") from e
    return buf.getvalue() + "\n"
