"""CycloneDX 1.6 JSON through ``cyclonedx-python-lib``; layer and base-image attribution are
component properties (``imagewise:layer``, ``imagewise:path``, ``imagewise:from-base``)."""

from __future__ import annotations

from typing import Any

from imagewise import __version__
from imagewise.sbom.catalog import Catalog
from imagewise.sbom.model import Package


def _licenses(texts: tuple[str, ...], factory: Any) -> list[Any]:
    """CycloneDX 1.6 allows either one SPDX expression or a list of licenses (by SPDX id or by
    name), never both. One string is taken as the factory reads it; several strings that hold an
    expression become one ``(a) AND (b)`` expression when that is valid SPDX (a package carries
    files under each), and otherwise every one of them is listed by id or name."""
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression

    made: list[tuple[str, Any]] = []
    for text in (t.strip() for t in texts):
        if not text:
            continue
        try:
            made.append((text, factory.make_from_string(text)))
        except Exception:  # noqa: BLE001 - an odd license string never breaks the SBOM
            made.append((text, DisjunctiveLicense(name=text)))
    if len(made) < 2 or not any(isinstance(m, LicenseExpression) for _, m in made):
        return [m for _, m in made]
    try:
        return [factory.make_with_expression(" AND ".join(f"({t})" for t, _ in made))]
    except Exception:  # noqa: BLE001 - not valid SPDX together: list them by name instead
        return [
            DisjunctiveLicense(name=t) if isinstance(m, LicenseExpression) else m for t, m in made
        ]


def _component(p: Package, ref: str) -> Any:
    try:
        from cyclonedx.contrib.license.factories import LicenseFactory
    except ImportError:  # cyclonedx-python-lib < 11.5
        from cyclonedx.factory.license import LicenseFactory  # type: ignore[no-redef,unused-ignore]
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    licenses = _licenses(p.licenses, LicenseFactory())
    props = [Property(name="imagewise:package-type", value=p.type)]
    for loc in p.locations:
        props.append(Property(name="imagewise:location", value=f"{loc.layer}:{loc.path}"))
    if p.introduced_by is not None:
        props.append(Property(name="imagewise:layer", value=p.introduced_by.layer))
        props.append(Property(name="imagewise:path", value=p.introduced_by.path))
    if p.from_base is not None:
        props.append(Property(name="imagewise:from-base", value=str(p.from_base).lower()))
    if p.source_name:
        props.append(
            Property(
                name="imagewise:source-package", value=f"{p.source_name} {p.source_version}".strip()
            )
        )
    if p.distro:
        props.append(Property(name="imagewise:distro", value=p.distro))
    group = str(p.metadata.get("group") or "") if p.type == "maven" else None
    purl = PackageURL.from_string(p.purl) if p.purl else None
    return Component(
        name=p.name,
        version=p.version or None,
        group=group or None,
        type=ComponentType.LIBRARY,
        bom_ref=ref,
        purl=purl,
        licenses=licenses,
        properties=props,
    )


def build_bom(cat: Catalog) -> Any:
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.tool import Tool

    bom = Bom()
    bom.metadata.tools.tools.add(Tool(vendor="imagewise", name="imagewise", version=__version__))
    bom.metadata.component = Component(
        name=cat.source or "image", type=ComponentType.CONTAINER, bom_ref="image"
    )
    if cat.distro:
        bom.components.add(
            Component(
                name=cat.distro.id,
                version=cat.distro.version_id or None,
                type=ComponentType.OPERATING_SYSTEM,
                bom_ref=f"os:{cat.distro.label}",
                description=cat.distro.pretty_name or None,
            )
        )
    for i, p in enumerate(cat.packages):
        bom.components.add(_component(p, f"pkg-{i}:{p.purl or p.type + '/' + p.name}"))
    bom.register_dependency(bom.metadata.component, list(bom.components))
    return bom


def render_cyclonedx(cat: Catalog) -> str:
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat, SchemaVersion

    out = make_outputter(build_bom(cat), OutputFormat.JSON, SchemaVersion.V1_6)
    return str(out.output_as_string(indent=2)) + "\n"
