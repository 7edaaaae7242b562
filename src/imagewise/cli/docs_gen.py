"""Generate ``docs/rules.md`` from the one rule table (:func:`imagewise.rules.catalog`, what
``imagewise rules --format json`` prints), so the reference can never drift from the code.

    python -m imagewise.cli.docs_gen            # rewrite docs/rules.md
    python -m imagewise.cli.docs_gen --check    # exit 1 when docs/rules.md is out of date
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: default output, in the checkout this module is imported from (src layout)
RULES_MD = Path(__file__).resolve().parents[3] / "docs" / "rules.md"
REGENERATE = "python -m imagewise.cli.docs_gen"

#: (kind, heading, introduction), one per kind of :data:`imagewise.rules.KINDS`
KINDS: tuple[tuple[str, str, str], ...] = (
    (
        "dockerfile",
        "Dockerfile rules",
        (
            "Checked by `imagewise lint` (and by `imagewise check --dockerfile`). `DL` rules are "
            "hadolint's, with its ids, default severities and config keys; `IW` rules are imagewise's "
            "own. Ignore one with a `# hadolint ignore=ID` (or `# imagewise ignore=ID`) pragma, the "
            "`ignored:` config key or `--ignore ID`; change a severity with `override:`."
        ),
    ),
    (
        "custom",
        "Custom rules",
        "Declared in the rules files a lint config names (`custom-rules`) or `--rules` gives.",
    ),
    (
        "audit",
        "Image audit checks",
        (
            "Checked by `imagewise check` on the image itself: its config, history and the files of "
            "every layer. `CIS-DI` are CIS Docker Benchmark items and `DKL` dockle's checks, with "
            "dockle's ids; `IW-IMG` are imagewise's own."
        ),
    ),
    (
        "waste",
        "Layer waste",
        (
            "Reported by `imagewise analyze` and `imagewise check`: bytes a layer stores that the final "
            "filesystem does not need, each with the layer that wrote them and the change that saves "
            "them."
        ),
    ),
    (
        "secret",
        "Secret detectors",
        (
            "Run by `imagewise scan` and `imagewise check` on every layer (deleted files included), "
            "the image config and its history. Every value a detector matches is masked in every "
            "output of every command and format (inspect, analyze, diff, files, sbom, scan, check), "
            "wherever it appears: config, history, layer commands (`created_by`), file paths. Masking "
            "is one function: a known token format shows its fixed prefix and nothing more "
            "(`ghp_********`, `AKIA********`, `glpat-********`), a password or other value shows "
            "`********` (not a character, not its length). `imagewise inspect --show-secrets` opts "
            "out."
        ),
    ),
    (
        "tag",
        "Tag convention",
        (
            "Reported by `imagewise tags lint REPO` on a registry repository's tags, under the "
            "policy's `tags.allowed_patterns` and `version_management.tagging` (release tags, env "
            "tags, required kinds). Reads only; first-seen digests of release tags are kept in a "
            "local state file."
        ),
    ),
)


def rules_json() -> list[dict[str, Any]]:
    """The rules exactly as ``imagewise rules --format json`` lists them (no config)."""
    from imagewise.rules import catalog

    return [info.to_json() for info in catalog()]


def anchor(rule_id: str) -> str:
    from imagewise.findings import rule_anchor

    return rule_anchor(rule_id)


def _md(text: str) -> str:
    """One line of Markdown for declared text: code spans kept, emphasis and HTML escaped."""
    parts = " ".join(text.split()).split("`")
    for i in range(0, len(parts), 2):  # outside code spans
        parts[i] = re.sub(r"([\\*_<>\[\]])", r"\\\1", parts[i])
    return "`".join(parts)


def _cell(text: str) -> str:
    return _md(text).replace("|", "\\|")


def render(rules: Sequence[dict[str, Any]]) -> str:
    groups: dict[str, list[dict[str, Any]]] = {k: [] for k, *_ in KINDS}
    for r in rules:
        groups[r["kind"]].append(r)
    out = [
        "# Rule and check reference",
        "",
        f"<!-- Generated from the rule tables by `{REGENERATE}`; do not edit by hand. -->",
        "",
        (
            f"imagewise declares {len(rules)} rules and checks. `imagewise rules` lists them "
            "(`--format json` for the `imagewise/rules/v1` document this page is made from), "
            "`imagewise explain ID` shows one. A policy's `rules:` section (see "
            "[the guide](guide.md#policy-files-imagewise-policy)) sets any of them to `error`, "
            "`warning`, `info` or `off` for `imagewise check`."
        ),
        "",
        (
            "Severities: `error`, `warning`, `info`, `style`; `ignore` means the rule is declared "
            "but reports nothing unless a config raises its severity. Areas (`build`, `security`, "
            "`performance`, `operations`) are the rows of `imagewise check`'s scorecard."
        ),
        "",
    ]
    for kind, heading, _ in KINDS:
        if groups[kind]:
            out.append(f"- [{heading}](#{anchor(heading)}) ({len(groups[kind])})")
    for kind, heading, intro in KINDS:
        items = groups[kind]
        if not items:
            continue
        out += [
            "",
            f"## {heading}",
            "",
            intro,
            "",
            "| id | severity | area | source | title |",
            "|---|---|---|---|---|",
        ]
        for r in items:
            out.append(
                f"| [{r['id']}](#{anchor(r['id'])}) | {r['severity']} | "
                f"{r.get('area') or '-'} | {r.get('source') or '-'} | {_cell(r['title'])} |"
            )
        for r in items:
            out += [
                "",
                f'<a id="{anchor(r["id"])}"></a>',
                "",
                f"### {r['id']}",
                "",
                f"**{_cell(r['title'])}**",
                "",
                (
                    f"Severity `{r['severity']}` · area `{r.get('area') or '-'}` · "
                    f"source `{r.get('source') or '-'}`"
                ),
            ]
            if r.get("rationale"):
                out += ["", f"Why: {_md(r['rationale'])}"]
            if r.get("fix"):
                out += ["", f"Fix: {_md(r['fix'])}"]
            if r.get("fixable"):
                out += [
                    "",
                    (
                        "Autofix: `imagewise lint --fix` rewrites it (`--diff` shows the "
                        "change first)."
                    ),
                ]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    paths = [a for a in args if a != "--check"]
    target = Path(paths[0]) if paths else RULES_MD
    text = render(rules_json())
    if check:
        current = target.read_text("utf-8") if target.exists() else ""
        if current != text:
            print(
                f"{target} is out of date with the rule tables; regenerate it with `{REGENERATE}`",
                file=sys.stderr,
            )
            return 1
        return 0
    from imagewise.fileio import write_file

    write_file(str(target), text.encode("utf-8"))
    print(f"wrote {target} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
