"""``imagewise check``: one pass over each layer, one verdict.

Opens the image, runs the efficiency, catalog, secrets and audit visitors together in a single
pass per layer (served from the layer cache when a layer was seen before), lints the Dockerfile
when one is given and links image facts back to its lines, matches packages against the offline
vulnerability database, and judges everything with the policy.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Any

from imagewise import progress
from imagewise.findings import Finding
from imagewise.policy.evaluate import CheckFacts, Ignore, Verdict, Vuln, evaluate
from imagewise.policy.model import Policy, default_policy
from imagewise.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing the modules it names at run time
if TYPE_CHECKING:
    from imagewise.analysis.model import ImageAnalysis
    from imagewise.cache import LayerCache
    from imagewise.check.linkage import DockerfileLink
    from imagewise.dockerfile.model import Dockerfile
    from imagewise.sbom.model import Package
    from imagewise.sources.base import Image
    from imagewise.vulns.ignores import Decisions
    from imagewise.vulns.matching import Vulnerability
    from imagewise.vulns.update import AutoUpdate


class CheckOptions(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "image",
        "dockerfile",
        "policy",
        "db",
        "platform",
        "insecure",
        "use_cache",
        "cache_dir",
        "cache_store",  # where layer results live instead (``cache.LayerCache``'s store)
        "ignore_file",
        "vex",
        "today",
        "allow_incomplete",  # a verdict with unjudged gates may pass
        "db_update",  # update a missing or stale database first
    )

    def __init__(
        self,
        image: str,
        dockerfile: Path | None = None,
        policy: Policy | None = None,
        db: Path | None = None,
        platform: str | None = None,
        insecure: bool = False,
        use_cache: bool = True,
        cache_dir: Path | None = None,
        cache_store: Any = None,
        ignore_file: Path | None = None,
        vex: tuple[Path, ...] = (),
        today: date | None = None,
        allow_incomplete: bool = False,
        db_update: AutoUpdate | None = None,
    ) -> None:
        self.image = image
        self.dockerfile = dockerfile
        self.policy = default_policy() if policy is None else policy
        self.db = db
        self.platform = platform
        self.insecure = insecure
        self.use_cache = use_cache
        self.cache_dir = cache_dir
        self.cache_store = cache_store
        self.ignore_file = ignore_file
        self.vex = vex
        self.today = today
        self.allow_incomplete = allow_incomplete
        self.db_update = db_update


class CheckResult(Record):
    """What one check found. The finding lists are the verdict's: policy levels applied, "off"
    rules removed, and one finding per problem (the others' rule ids in ``extra["also"]``)."""

    __slots__ = (  # noqa: RUF023 - in field order
        "image",
        "analysis",
        "lint",
        "lint_file",
        "packages",
        "distro",
        "vulnerabilities",
        "vuln_note",
        "vuln_warnings",
        "secrets",
        "audit",
        "verdict",
        "areas",
        "seconds",
        "cache_hits",
        "cache_misses",
        "waste",  # the analysis' waste, linked to Dockerfile lines
    )

    def __init__(
        self,
        image: Image,
        analysis: ImageAnalysis,
        lint: tuple[Finding, ...],
        lint_file: str,
        packages: tuple[Package, ...],
        distro: str,
        vulnerabilities: tuple[Vulnerability, ...],
        vuln_note: str,
        vuln_warnings: tuple[str, ...],
        secrets: tuple[Finding, ...],
        audit: tuple[Finding, ...],
        verdict: Verdict,
        areas: dict[str, str],
        seconds: float,
        cache_hits: int = 0,
        cache_misses: int = 0,
        waste: tuple[Finding, ...] = (),
    ) -> None:
        self.image = image
        self.analysis = analysis
        self.lint = lint
        self.lint_file = lint_file
        self.packages = packages
        self.distro = distro
        self.vulnerabilities = vulnerabilities
        self.vuln_note = vuln_note
        self.vuln_warnings = vuln_warnings
        self.secrets = secrets
        self.audit = audit
        self.verdict = verdict
        self.areas = areas
        self.seconds = seconds
        self.cache_hits = cache_hits
        self.cache_misses = cache_misses
        self.waste = waste

    @property
    def vulns_scanned(self) -> bool:
        return not self.vuln_note

    @property
    def linted(self) -> bool:
        return bool(self.lint_file)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Everything the user should know that is not a finding, one line each."""
        return self.vuln_warnings


def _rule_areas(lint_ran: bool) -> dict[str, str]:
    """Rule id -> guide area, from the one rule table. Lint rules are only loaded when the
    linter ran (they are many)."""
    from imagewise.rules import catalog

    areas = {i.id: i.area for i in catalog(kinds=["audit"])}
    if lint_ran:
        for i in catalog(kinds=["dockerfile"]):
            areas.setdefault(i.id, i.area or "build")
    return areas


def _final_base(df: Dockerfile | None) -> str:
    """The final stage's base image as the Dockerfile names it ("" without a Dockerfile)."""
    if df is None:
        return ""
    from imagewise.check.linkage import final_base

    return final_base(df)


def _lint(path: Path, policy: Policy) -> tuple[list[Finding], Dockerfile]:
    """Lint the Dockerfile; the parsed file is returned too, for linking image findings. The
    policy's ``allowed_registries`` is IW102's list, so one list judges the base image."""
    from imagewise.dockerfile.config import load_config
    from imagewise.dockerfile.lint import lint_dockerfile
    from imagewise.dockerfile.parser import parse

    df = parse(path.read_text("utf-8", errors="replace"), str(path))
    config = load_config(None, cwd=path.parent).replace(
        default_registries=tuple(policy.security_baseline.allowed_registries)
    )
    return lint_dockerfile(df, config), df


def _env_keys(findings: list[Finding], env: tuple[str, ...] | list[str]) -> list[Finding]:
    """``config.Env[i]`` (the secret detectors' path) as ``config.Env.KEY`` (the audit's), so
    both link to the ``ENV`` line and are seen as one problem."""
    out = []
    for f in findings:
        path = f.location.path
        if path.startswith("config.Env[") and path.endswith("]"):
            try:
                key = env[int(path[11:-1])].partition("=")[0]
            except (ValueError, IndexError):
                key = ""
            if key:
                f = f.replace(location=f.location.replace(path=f"config.Env.{key}"))
        out.append(f)
    return out


def _at_line(f: Finding, file: str, line: int) -> Finding:
    """Point a finding at a Dockerfile line. A finding that already has a line (a secret's line
    inside an image file) keeps it and carries the Dockerfile line in ``extra``."""
    if not line:
        return f
    if f.location.line:
        return f.replace(extra={**f.extra, "dockerfile": file, "dockerfile_line": line})
    return f.replace(
        location=f.location.replace(file=file, line=line),
        extra={**f.extra, "dockerfile": file, "dockerfile_line": line},
    )


def _link_findings(findings: list[Finding], link: DockerfileLink) -> list[Finding]:
    """Give image findings the Dockerfile line that caused them."""
    out = []
    for f in findings:
        loc = f.location
        line = 0
        if f.rule == "CIS-DI-0001":
            line = link.user_line
        elif loc.path.startswith("config.Env."):
            line = link.env_lines.get(loc.path.split(".", 2)[2], 0)
        elif loc.layer_index is not None:
            line = link.line_by_layer.get(loc.layer_index, 0)
        out.append(_at_line(f, link.file, line))
    return out


def _visitors() -> tuple[Any, Any, Any, Any]:
    """The check's visitors: efficiency (dive's and ours), catalog, secrets, audit. A layer's
    cached results are those of exactly this set (``run_check`` and ``prepare_layer``)."""
    from imagewise.analysis import EfficiencyVisitors
    from imagewise.audit import AuditVisitor
    from imagewise.sbom.visitor import CatalogVisitor
    from imagewise.secrets.visitor import SecretsVisitor

    return EfficiencyVisitors(), CatalogVisitor(), SecretsVisitor(), AuditVisitor()


def layer_ready(layer_digest: str, cache: LayerCache) -> bool:
    """Whether a check would take the layer blob ``layer_digest`` from ``cache`` without
    reading it (``passes.cache_holds``: a split check asks this for every layer it is missing)."""
    from imagewise.layers.passes import cache_holds

    eff, *others = _visitors()
    return cache_holds(layer_digest, None, [*eff.all, *others], cache)


def prepare_layer(
    image_ref: str,
    layer_digest: str,
    *,
    cache: LayerCache,
    insecure: bool = False,
    platform: str | None = None,
    image: Image | None = None,
) -> bool:
    """Analyse one layer of ``image_ref`` into ``cache`` the way ``run_check`` would, without
    the rest of the image: the layer is walked on its own (as the bottom layer of a one-layer
    view of the image), its blob digest and diff_id verified, and its entries and every visitor's
    result stored under the verified diff_id. A later check of any image carrying this blob
    replays it instead of reading it. Returns False when it was in the cache already.

    This is the per-layer half of a check split by content (the service's ``layer`` jobs): a
    layer shared by many images is prepared once, and each image's check joins the results.
    ``image``: the image already open (its source still open), instead of opening the ref."""
    if layer_ready(layer_digest, cache):
        return False
    if image is not None:
        _prepare(image, image_ref, layer_digest, cache)
        return True
    from imagewise.oci.model import Platform
    from imagewise.reference import parse_transport
    from imagewise.sources import detect_local, source_for

    tref = detect_local(image_ref) or parse_transport(image_ref)
    with source_for(tref, insecure=insecure) as src:
        _prepare(
            src.image(Platform.parse(platform) if platform else None),
            image_ref,
            layer_digest,
            cache,
        )
    return True


def _prepare(image: Image, image_ref: str, layer_digest: str, cache: LayerCache) -> None:
    from imagewise.layers.passes import run_pass
    from imagewise.sources.base import Image, Layer

    found = [layer for layer in image.layers if str(layer.digest) == layer_digest]
    if not found:
        from imagewise.errors import NotFound

        raise NotFound(f"{image_ref} has no layer {layer_digest}")
    one = found[0]
    alone = Image(
        image.reference,
        image.manifest,
        image.config,
        (Layer(one.source, one.descriptor, one.diff_id, 0, one.created_by),),
        image.source,
        image.index,
    )
    eff, *others = _visitors()
    run_pass(alone, [*eff.all, *others], cache=cache, diff_ids=True)


def run_check(
    opts: CheckOptions, reporter: progress.Reporter = progress.NULL, image: Image | None = None
) -> CheckResult:
    """Check ``opts.image``; ``image``: that image already resolved, its source still open
    (the service looked at its layers first), instead of opening the reference again."""
    from contextlib import ExitStack

    from imagewise.audit import AuditContext, run_checks
    from imagewise.cache import LayerCache
    from imagewise.check.deprecations import find_deprecations
    from imagewise.layers.passes import run_pass
    from imagewise.oci.model import Platform
    from imagewise.reference import parse_transport
    from imagewise.sbom.catalog import catalog_from_visitor
    from imagewise.secrets.visitor import scan_config
    from imagewise.sources import detect_local, source_for
    from imagewise.vulns.scan import match_with_db
    from imagewise.vulns.store import default_path

    started = time.perf_counter()
    lint_findings: list[Finding] = []
    df = None
    if opts.dockerfile is not None:
        lint_findings, df = _lint(opts.dockerfile, opts.policy)

    tref = detect_local(opts.image) or parse_transport(opts.image)
    tag = tref.reference.tag if tref.reference is not None else tref.tag
    if (
        tref.is_registry
        and tref.reference is not None
        and tag is None
        and tref.reference.digest is None
    ):
        tag = "latest"  # what a registry serves for an untagged name
    eff, cat_v, sec_v, aud_v = _visitors()
    cache = LayerCache(opts.cache_dir, opts.cache_store) if opts.use_cache else None
    with ExitStack() as opened:  # a source opened here stays open for the pass
        if image is None:
            src = opened.enter_context(source_for(tref, insecure=opts.insecure))
            image = src.image(Platform.parse(opts.platform) if opts.platform else None)
        run_pass(image, [*eff.all, cat_v, sec_v, aud_v], reporter, cache=cache, diff_ids=True)

    analysis = eff.result(image)
    catalog = catalog_from_visitor(cat_v, image)
    secrets = _env_keys(scan_config(image.config, image) + list(sec_v.findings), image.config.env)
    layer_ids = tuple(str(layer.diff_id or layer.digest) for layer in image.layers)
    annotations = dict(image.manifest.annotations)
    today = opts.today or date.today()
    bases = [
        b
        for b in (
            {**image.config.labels, **annotations}.get("org.opencontainers.image.base.name", ""),
            _final_base(df),
        )
        if b
    ]
    deprecations, dep_warnings = find_deprecations(tref, image, bases, opts.insecure)
    audit = run_checks(
        AuditContext(
            image.config,
            aud_v,
            tag=tag,
            annotations=annotations,
            layer_ids=layer_ids,
            deprecations=tuple(deprecations),
            today=today,
        )
    )

    db_path = opts.db or default_path()
    vulns, _status, note, warnings = match_with_db(catalog.packages, db_path, update=opts.db_update)
    warnings = [*warnings, *dep_warnings]
    decisions = _decisions(opts)
    ignores: tuple[Ignore, ...] = ()
    if decisions is not None:
        ignores = tuple(
            Ignore(r.id, r.source, r.expires) for r in decisions.rules if not r.expired(today)
        )
        warnings = warnings + decisions.warnings(today)
        vulns, _ = decisions.apply_vulns(vulns, today)
        secrets, _ = decisions.apply_findings(secrets, today)

    waste = list(analysis.waste)
    base_image = ""
    if df is not None:
        from imagewise.check.linkage import link as link_df

        link = link_df(df, image)
        audit = _link_findings(audit, link)
        secrets = _link_findings(secrets, link)
        waste = _link_findings(waste, link)
        base_image = link.base_image

    areas = _rule_areas(df is not None)
    for f in secrets:
        areas.setdefault(f.rule, "security")
    for f in waste:
        areas.setdefault(f.rule, "performance")
    facts = CheckFacts(
        size_bytes=analysis.dive.size_bytes,
        layer_count=len(image.layers),
        efficiency=analysis.dive.efficiency,
        reclaimable_bytes=analysis.reclaimable_bytes,
        tag=tag,
        base_image=base_image,
        labels={**annotations, **image.config.labels},
        findings=tuple(lint_findings + audit + secrets + waste),
        areas=areas,
        vulns=tuple(
            Vuln(
                v.id,
                v.package.name,
                v.version,
                v.severity,
                tuple(v.fixed_versions),
                _layer_index(v),
            )
            for v in vulns
        ),
        vuln_scan_ran=not note,
        vuln_note=note,
        lint_ran=df is not None,
        ignores=ignores,
        today=today,
    )
    verdict = evaluate(opts.policy, facts, allow_incomplete=opts.allow_incomplete)
    # each section shows the verdict's findings: levels applied, one finding per problem
    judged = {_key(f): f for f in verdict.findings}

    def kept(items: list[Finding]) -> tuple[Finding, ...]:
        return tuple(judged[_key(f)] for f in items if _key(f) in judged)

    return CheckResult(
        image=image,
        analysis=analysis,
        lint=kept(lint_findings),
        lint_file=str(opts.dockerfile or ""),
        packages=tuple(catalog.packages),
        distro=catalog.distro.label if catalog.distro else "",
        vulnerabilities=tuple(vulns),
        vuln_note=note,
        vuln_warnings=tuple(warnings),
        secrets=kept(secrets),
        audit=kept(audit),
        verdict=verdict,
        areas=areas,
        seconds=time.perf_counter() - started,
        cache_hits=cache.hits if cache else 0,
        cache_misses=len(image.layers) - (cache.hits if cache else 0),
        waste=kept(waste),
    )


def _key(f: Finding) -> tuple[Any, ...]:
    """What tells a finding apart across the policy (which may change its severity, saving and
    fix when it groups it)."""
    return (f.rule, f.message, f.location)


def _layer_index(v: Vulnerability) -> int | None:
    loc = v.package.introduced_by
    return loc.layer_index if loc is not None else None


def _decisions(opts: CheckOptions) -> Decisions | None:
    from imagewise.vulns.ignores import discover, load_decisions

    files = [opts.ignore_file] if opts.ignore_file else discover(Path.cwd())
    if not files and not opts.vex:
        return None
    return load_decisions(files, list(opts.vex))
