"""The guide's own Dockerfile practices that hadolint lacks, as declared ``IW`` rules.

Each rule is an :class:`IWRule`: a :class:`~imagewise.findings.RuleInfo` (id, severity, title,
rationale, fix, area) and a check function ``(Dockerfile, IWContext) -> Iterable[Finding]``,
declared with ``@rule`` in one of the modules below. ``IW_RULES`` is the table; :func:`check`
runs them all; importing this package also registers them into the lint engine's table
(:mod:`imagewise.dockerfile.rules`), so ``imagewise lint``, ``rules`` and ``explain`` see them.

* :mod:`.images`   IW101 pinned base, IW102 allowed registry, IW103 non-root, IW104 HEALTHCHECK
* :mod:`.layers`   IW105 RUNs that belong in one layer, IW111 cache removed in a later RUN
* :mod:`.build`    IW106 dependency manifests before the source, IW108 toolchain in final stage
* :mod:`.secrets`  IW109 secrets in ARG/ENV, IW110 ADD of a URL without --checksum
* :mod:`.buildctx` IW107 .dockerignore, IW112 ``npm ci`` with a lockfile (need a build context)

Shell facts come from :mod:`imagewise.dockerfile.shell` (tree-sitter-bash); facts about the build
context from the directory in :class:`IWContext` (no context, e.g. stdin: those rules stay quiet).
"""

from __future__ import annotations

from imagewise.dockerfile.iw_rules import build, buildctx, images, layers, secrets
from imagewise.dockerfile.iw_rules._base import (
    DEFAULT_REGISTRIES,
    IW_RULES,
    POSIX_SHELLS,
    IWContext,
    IWRule,
    check,
    context_from_lint,
    is_windows,
    posix_shell_at,
    register_all,
    script_of,
    split_image,
    stage_chain,
)
from imagewise.dockerfile.iw_rules.buildctx import dockerignore_excludes, npm_installs
from imagewise.dockerfile.iw_rules.images import tag_is_pinned
from imagewise.dockerfile.iw_rules.layers import (
    cache_cleanups,
    consecutive_runs,
    installs,
    merge_reason,
    mergeable,
)
from imagewise.dockerfile.iw_rules.secrets import secret_name, secret_value

__all__ = [
    "DEFAULT_REGISTRIES",
    "IW_RULES",
    "POSIX_SHELLS",
    "IWContext",
    "IWRule",
    "build",
    "buildctx",
    "cache_cleanups",
    "check",
    "consecutive_runs",
    "context_from_lint",
    "dockerignore_excludes",
    "images",
    "installs",
    "is_windows",
    "layers",
    "merge_reason",
    "mergeable",
    "npm_installs",
    "posix_shell_at",
    "register_all",
    "script_of",
    "secret_name",
    "secret_value",
    "secrets",
    "split_image",
    "stage_chain",
    "tag_is_pinned",
]

register_all()
