"""imagewise: make container images good and keep them good.

The library behind the ``imagewise`` command, its service and its workers. Every name below is
imported on first use (``import imagewise`` costs nothing), and every entry point may be called
from several threads at once and from worker processes. See docs/api.md.

Images: ``open_source(ref)`` / ``open_sink(ref)`` take the transports of skopeo
(``docker://``, ``oci:``, ``oci-archive:``, ``docker-archive:``, or a bare reference or path);
``Source.image(platform)`` resolves one ``Image``; ``copy_image(source, sink)`` copies.
Analysis: ``analyze(image)`` (layer efficiency), ``catalog(image)`` (SBOM),
``scan_image(image, db_path)`` (vulnerabilities), ``lint(text)`` / ``lint_file(path)``
(Dockerfile), ``run_check(CheckOptions(...))`` (all of it in one pass, with a verdict).
Errors: every failure on bad input or a bad remote is an ``ImagewiseError`` subclass.
"""

from imagewise.lazy import exports

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from imagewise.analysis.model import ImageAnalysis as ImageAnalysis
    from imagewise.analysis.run import analyze as analyze
    from imagewise.check.run import (
        CheckOptions as CheckOptions,
        CheckResult as CheckResult,
        run_check as run_check,
    )
    from imagewise.copy import CopyResult as CopyResult, copy_image as copy_image
    from imagewise.dockerfile.config import LintConfig as LintConfig
    from imagewise.dockerfile.lint import lint as lint, lint_file as lint_file
    from imagewise.errors import (
        AuthError as AuthError,
        ConfigError as ConfigError,
        DigestMismatch as DigestMismatch,
        DockerfileSyntaxError as DockerfileSyntaxError,
        ImageFormatError as ImageFormatError,
        ImagewiseError as ImagewiseError,
        InvalidReference as InvalidReference,
        LayerReadError as LayerReadError,
        NotAnImage as NotAnImage,
        NotFound as NotFound,
        PlatformNotFound as PlatformNotFound,
        RegistryError as RegistryError,
        UsageError as UsageError,
        VulnDBError as VulnDBError,
    )
    from imagewise.findings import (
        Finding as Finding,
        Location as Location,
        RuleInfo as RuleInfo,
        Severity as Severity,
    )
    from imagewise.oci.digest import Digest as Digest
    from imagewise.oci.model import (
        Descriptor as Descriptor,
        ImageConfig as ImageConfig,
        Index as Index,
        Manifest as Manifest,
        Platform as Platform,
    )
    from imagewise.policy.model import Policy as Policy, load_policy as load_policy
    from imagewise.progress import Reporter as Reporter
    from imagewise.rules import catalog as rule_catalog  # noqa: F401 - exported below
    from imagewise.sbom.catalog import Catalog as Catalog, catalog as catalog
    from imagewise.sbom.model import Package as Package
    from imagewise.sources import open_sink as open_sink, open_source as open_source
    from imagewise.sources.base import (
        Image as Image,
        Layer as Layer,
        Sink as Sink,
        Source as Source,
    )
    from imagewise.vulns.matching import Vulnerability as Vulnerability
    from imagewise.vulns.scan import (
        ScanResult as ScanResult,
        scan_image as scan_image,
        scan_packages as scan_packages,
    )


__version__ = "0.1.0"

_API = {
    # images: sources, sinks, copy
    "open_source": "imagewise.sources",
    "open_sink": "imagewise.sources",
    "Source": "imagewise.sources.base",
    "Sink": "imagewise.sources.base",
    "Image": "imagewise.sources.base",
    "Layer": "imagewise.sources.base",
    "copy_image": "imagewise.copy",
    "CopyResult": "imagewise.copy",
    "Digest": "imagewise.oci.digest",
    "Platform": "imagewise.oci.model",
    "Descriptor": "imagewise.oci.model",
    "Manifest": "imagewise.oci.model",
    "Index": "imagewise.oci.model",
    "ImageConfig": "imagewise.oci.model",
    # analysis, SBOM, vulnerabilities, Dockerfiles, the one-pass check
    "analyze": "imagewise.analysis.run",
    "ImageAnalysis": "imagewise.analysis.model",
    "catalog": "imagewise.sbom.catalog",
    "Catalog": "imagewise.sbom.catalog",
    "Package": "imagewise.sbom.model",
    "scan_image": "imagewise.vulns.scan",
    "scan_packages": "imagewise.vulns.scan",
    "ScanResult": "imagewise.vulns.scan",
    "Vulnerability": "imagewise.vulns.matching",
    "lint": "imagewise.dockerfile.lint",
    "lint_file": "imagewise.dockerfile.lint",
    "LintConfig": "imagewise.dockerfile.config",
    "run_check": "imagewise.check.run",
    "CheckOptions": "imagewise.check.run",
    "CheckResult": "imagewise.check.run",
    "Policy": "imagewise.policy.model",
    "load_policy": "imagewise.policy.model",
    # results and progress
    "Finding": "imagewise.findings",
    "Location": "imagewise.findings",
    "Severity": "imagewise.findings",
    "RuleInfo": "imagewise.findings",
    "rule_catalog": "imagewise.rules:catalog",
    "Reporter": "imagewise.progress",
    # the error tree
    "ImagewiseError": "imagewise.errors",
    "UsageError": "imagewise.errors",
    "InvalidReference": "imagewise.errors",
    "ImageFormatError": "imagewise.errors",
    "NotAnImage": "imagewise.errors",
    "PlatformNotFound": "imagewise.errors",
    "DigestMismatch": "imagewise.errors",
    "LayerReadError": "imagewise.errors",
    "RegistryError": "imagewise.errors",
    "AuthError": "imagewise.errors",
    "NotFound": "imagewise.errors",
    "DockerfileSyntaxError": "imagewise.errors",
    "ConfigError": "imagewise.errors",
    "VulnDBError": "imagewise.errors",
}

__getattr__, __dir__, _names = exports(__name__, _API)
__all__ = ["__version__", *_names]
