"""CycloneDX 1.6 JSON through ``cyclonedx-python-lib``; layer and base-image attribution are
component properties (``imagewise:layer``, ``imagewise:path``, ``imagewise:from-base``)."""

from __future__ import annotations

from typing import Any

from imagewise import __version__
from imagewise.sbom.catalog import Catalog
from imagewise.sbom.model import Package


def _component(p: Package, ref: str) -> Any:
    try:
        from cyclonedx.contrib.license.factories import LicenseFactory
    except ImportError:  # cyclonedx-python-lib < 11.5
        from cyclonedx.factory.license import LicenseFactory  # type: ignore[no-redef,unused-ignore]
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    factory = LicenseFactory()
    licenses = []
    for text in p.licenses:
        try:
            licenses.append(factory.make_from_string(text))
        except Exception:  # noqa: BLE001, S112 - an odd license string never breaks the SBOM
            continue
    props = [Property(name="imagewise:package-type", value=p.type)]
    for loc in p.locations:
        props.append(Property(name="imagewise:location", value=f"{loc.layer}:{loc.path}"))
    if p.introduced_by is not None:
        props.append(Property(name="imagewise:layer", value=p.introduced_by.layer))
        props.append(Property(name="imagewise:path", value=p.introduced_by.path))
    if p.from_base is not None:
        props.append(Property(name="imagewise:from-base", value=str(p.from_base).lower()))
    if p.source_name:
        props.append(Property(name="imagewise:source-package",
                              value=f"{p.source_name} {p.source_version}".strip()))
    if p.distro:
        props.append(Property(name="imagewise:distro", value=p.distro))
    group = str(p.metadata.get("group") or "") if p.type == "maven" else None
    purl = PackageURL.from_string(p.purl) if p.purl else None
    return Component(name=p.name, version=p.version or None, group=group or None,
                     type=ComponentType.LIBRARY, bom_ref=ref, purl=purl,
                     licenses=licenses, properties=props)


def build_bom(cat: Catalog) -> Any:
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.tool import Tool

    bom = Bom()
    bom.metadata.tools.tools.add(Tool(vendor="imagewise", name="imagewise", version=__version__))
    bom.metadata.component = Component(name=cat.source or "image", type=ComponentType.CONTAINER,
                                       bom_ref="image")
    if cat.distro:
        bom.components.add(Component(name=cat.distro.id, version=cat.distro.version_id or None,
                                     type=ComponentType.OPERATING_SYSTEM,
                                     bom_ref=f"os:{cat.distro.label}",
                                     description=cat.distro.pretty_name or None))
    for i, p in enumerate(cat.packages):
        bom.components.add(_component(p, f"pkg-{i}:{p.purl or p.type + '/' + p.name}"))
    bom.register_dependency(bom.metadata.component, list(bom.components))
    return bom


def render_cyclonedx(cat: Catalog) -> str:
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat, SchemaVersion

    out = make_outputter(build_bom(cat), OutputFormat.JSON, SchemaVersion.V1_6)
    return str(out.output_as_string(indent=2)) + "\n"
