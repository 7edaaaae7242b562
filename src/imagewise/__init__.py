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
    from imagewise.sources import open_source as open_source, open_sink as open_sink
    from imagewise.sources.base import (
        Source as Source,
        Sink as Sink,
        Image as Image,
        Layer as Layer,
    )
    from imagewise.copy import copy_image as copy_image, CopyResult as CopyResult
    from imagewise.oci.digest import Digest as Digest
    from imagewise.oci.model import (
        Platform as Platform,
        Descriptor as Descriptor,
        Manifest as Manifest,
        Index as Index,
        ImageConfig as ImageConfig,
    )
    from imagewise.analysis.run import analyze as analyze
    from imagewise.analysis.model import ImageAnalysis as ImageAnalysis
    from imagewise.sbom.catalog import catalog as catalog, Catalog as Catalog
    from imagewise.sbom.model import Package as Package
    from imagewise.vulns.scan import (
        scan_image as scan_image,
        scan_packages as scan_packages,
        ScanResult as ScanResult,
    )
    from imagewise.vulns.matching import Vulnerability as Vulnerability
    from imagewise.dockerfile.lint import lint as lint, lint_file as lint_file
    from imagewise.dockerfile.config import LintConfig as LintConfig
    from imagewise.check.run import (
        run_check as run_check,
        CheckOptions as CheckOptions,
        CheckResult as CheckResult,
    )
    from imagewise.policy.model import Policy as Policy, load_policy as load_policy
    from imagewise.findings import (
        Finding as Finding,
        Location as Location,
        Severity as Severity,
        RuleInfo as RuleInfo,
    )
    from imagewise.rules import catalog as rule_catalog  # noqa: F401 - exported below
    from imagewise.progress import Reporter as Reporter
    from imagewise.errors import (
        ImagewiseError as ImagewiseError,
        UsageError as UsageError,
        InvalidReference as InvalidReference,
        ImageFormatError as ImageFormatError,
        NotAnImage as NotAnImage,
        PlatformNotFound as PlatformNotFound,
        DigestMismatch as DigestMismatch,
        LayerReadError as LayerReadError,
        RegistryError as RegistryError,
        AuthError as AuthError,
        NotFound as NotFound,
        DockerfileSyntaxError as DockerfileSyntaxError,
        ConfigError as ConfigError,
        VulnDBError as VulnDBError,
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
