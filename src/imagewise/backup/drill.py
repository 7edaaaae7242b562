"""``imagewise drill``: a recovery drill. Restore a snapshot to a scratch target, verify it,
check every restored image, measure the recovery, report, and clean the scratch target.

* **Restore and verify**: :func:`imagewise.backup.restore.restore` into ``SCRATCH`` (a registry:
  under the prefix ``drill-<snapshot>``; a layout: a fresh directory inside ``oci:DIR``), so a
  drill never touches what the target already holds.
* **Functional check**: ``imagewise check`` runs on every restored image (every layer read,
  decompressed and checked against its diff_id), under the policy the snapshot backed up (a
  config file named ``*policy*.y(a)ml``) or the one given. A check that cannot run fails the
  drill; a failing verdict is reported, and fails the drill with ``require_pass``.
* **Figures**: restore throughput (bytes per second), the whole drill's time (the RTO it
  demonstrates) and the snapshot's age (the RPO).
* **Clean-up**: the restored manifests are deleted from a scratch registry (when it allows
  deletes; the report says when it does not), a scratch layout directory is removed.
"""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

from imagewise.backup.store import Store, open_store
from imagewise.errors import ImagewiseError, UsageError


class DrillResult:
    def __init__(self, snapshot: str, scratch: str) -> None:
        self.snapshot, self.scratch = snapshot, scratch
        self.restored = 0
        self.bytes = 0
        self.restore_seconds = 0.0
        self.total_seconds = 0.0
        self.rpo_seconds = 0.0
        self.checks: list[dict[str, Any]] = []
        self.policy = ""
        self.cleaned = ""
        self.error = ""
        self.require_pass = False

    @property
    def ok(self) -> bool:
        if self.error or any(c.get("error") for c in self.checks):
            return False
        return not (self.require_pass and any(not c.get("passed") for c in self.checks))

    @property
    def throughput(self) -> float:
        return self.bytes / self.restore_seconds if self.restore_seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "snapshot": self.snapshot,
            "scratch": self.scratch,
            "images": self.restored,
            "bytes": self.bytes,
            "restore_seconds": round(self.restore_seconds, 3),
            "restore_bytes_per_second": round(self.throughput),
            "rto_seconds": round(self.total_seconds, 3),
            "rpo_seconds": round(self.rpo_seconds),
            "policy": self.policy,
            "checks": self.checks,
            "cleaned": self.cleaned,
            "error": self.error or None,
        }


def _snapshot_policy(store: Store, record: dict[str, Any], tmp: Path) -> tuple[Path, str] | None:
    """The policy file the snapshot backed up, written to ``tmp``, and its name."""
    for path, info in sorted(record.get("config_files", {}).items()):
        name = Path(path).name
        if "policy" in name.lower() and name.lower().endswith((".yaml", ".yml")):
            out = tmp / "policy-from-snapshot.yaml"
            out.write_bytes(store.read_blob(info["digest"]))
            return out, name
    return None


def drill(
    store_path: str,
    snapshot: str,
    scratch: str,
    *,
    policy_file: str | None = None,
    require_pass: bool = False,
    insecure: bool = False,
    now: datetime | None = None,
    key: bytes | None = None,
) -> DrillResult:
    import tempfile

    from imagewise.backup.restore import restore
    from imagewise.check import CheckOptions, run_check
    from imagewise.policy.model import load_policy

    store = open_store(store_path, key=key)
    record = store.snapshot(snapshot)
    started = time.perf_counter()
    result = DrillResult(record["id"], scratch)
    result.require_pass = require_pass
    taken = datetime.fromisoformat(str(record["time"]).replace("Z", "+00:00"))
    result.rpo_seconds = ((now or datetime.now(timezone.utc)) - taken).total_seconds()
    layout = scratch.startswith("oci:")
    if layout:
        root = Path(scratch[4:])
        if root.exists() and not root.is_dir():
            raise UsageError(f"{scratch}: not a directory")
        target_dir = root / f"drill-{record['id']}"
        if target_dir.exists():
            raise UsageError(f"{target_dir} exists: a drill restores into a fresh directory")
        target, prefix = f"oci:{target_dir}", ""
    else:
        target, prefix = scratch, f"drill-{record['id'].lower()}"
    with tempfile.TemporaryDirectory(prefix="imagewise-drill-") as tmp:
        policy_path: Path | None = None
        if policy_file:
            policy_path, result.policy = Path(policy_file), str(policy_file)
        elif (found := _snapshot_policy(store, record, Path(tmp))) is not None:
            policy_path, result.policy = found[0], f"the snapshot's {found[1]}"
        else:
            result.policy = "the default policy"
        policy = load_policy(policy_path)
        restored = None
        try:
            t0 = time.perf_counter()
            restored = restore(
                store_path, record["id"], target, prefix=prefix, insecure=insecure, key=key
            )
            result.restore_seconds = time.perf_counter() - t0
            result.restored = len(restored.images)
            result.bytes = sum(sum(s for s in _sizes(record, i["digest"])) for i in restored.images)
            for img in restored.images:
                ref = img["target"]
                if layout:
                    ref = f"oci:{target_dir}:{ref.split(':', 2)[2]}"
                entry: dict[str, Any] = {"image": img["source"], "restored_as": ref}
                try:
                    checked = run_check(
                        CheckOptions(
                            ref,
                            policy=policy,
                            insecure=insecure,
                            use_cache=False,
                            allow_incomplete=True,
                        )
                    )
                    entry["passed"] = checked.verdict.passed
                    entry["status"] = checked.verdict.status
                except ImagewiseError as e:
                    entry["passed"] = False
                    entry["error"] = str(e)
                result.checks.append(entry)
        except ImagewiseError as e:
            result.error = str(e)
        finally:
            result.cleaned = _clean(layout, target_dir if layout else None, restored, insecure)
    result.total_seconds = time.perf_counter() - started
    return result


def _sizes(record: dict[str, Any], digest: str) -> list[int]:
    out: list[int] = []
    seen: set[str] = set()
    stack = [digest]
    while stack:
        d = stack.pop()
        if d in seen:
            continue
        seen.add(d)
        info = record["manifests"].get(d, {})
        out.append(int(info.get("size", 0)))
        out.extend(int(x) for x in info.get("blob_sizes", []))
        stack.extend(info.get("children", []))
    return out


def _clean(layout: bool, target_dir: Path | None, restored: Any, insecure: bool) -> str:
    if layout:
        if target_dir is not None and target_dir.exists():
            shutil.rmtree(target_dir)
        return "scratch layout removed"
    if restored is None:
        return "nothing restored"
    from imagewise.reference import ImageReference
    from imagewise.registry.client import RegistryClient

    deleted = 0
    try:
        for img in restored.images:
            ref = ImageReference.parse(img["target"].removeprefix("docker://"))
            client = RegistryClient.get(ref.host, insecure=insecure)
            try:
                client.delete_manifest(ref.repository, img["digest"])
                deleted += 1
            except ImagewiseError as e:
                if "404" in str(e) or "not found" in str(e).lower():
                    continue
                raise
    except ImagewiseError as e:
        return f"scratch images left in place: the registry refused deletes ({e})"
    return f"{deleted} scratch image(s) deleted (run the registry's garbage collector to free them)"


def drill_table(result: DrillResult) -> str:
    from imagewise.units import format_size

    lines = [
        f"drill of snapshot {result.snapshot} into {result.scratch}: {'OK' if result.ok else 'FAILED'}",
        f"  restored {result.restored} image(s), {format_size(result.bytes)} in {result.restore_seconds:.2f} s "
        f"({format_size(int(result.throughput))}/s), verified",
        f"  RTO shown: {result.total_seconds:.2f} s for the whole drill; RPO: the snapshot is "
        f"{result.rpo_seconds / 3600:.1f} h old",
        f"  checks under {result.policy}:",
    ]
    for c in result.checks:
        what = c.get("error") or c.get("status", "")
        lines.append(f"    {c['image']}: {what}")
    if result.error:
        lines.append(f"  error: {result.error}")
    lines.append(f"  clean-up: {result.cleaned}")
    return "\n".join(lines) + "\n"


def drill_html(result: DrillResult) -> str:
    from imagewise.report.html import Section, render_page
    from imagewise.units import format_size

    rows = "".join(
        f"<tr><td>{escape(c['image'])}</td><td>{escape(str(c.get('error') or c.get('status', '')))}</td></tr>"
        for c in result.checks
    )
    summary = (
        f"<p><b>{'OK' if result.ok else 'FAILED'}</b>: {result.restored} image(s), "
        f"{escape(format_size(result.bytes))} restored in {result.restore_seconds:.2f} s "
        f"({escape(format_size(int(result.throughput)))}/s); RTO {result.total_seconds:.2f} s; "
        f"RPO {result.rpo_seconds / 3600:.1f} h; clean-up: {escape(result.cleaned)}</p>"
    )
    return render_page(
        f"imagewise drill {result.snapshot}",
        [
            Section("summary", "Summary", summary),
            Section(
                "checks",
                f"Checks under {result.policy}",
                f"<table><thead><tr><th>image</th><th>verdict</th></tr></thead><tbody>{rows}</tbody></table>",
            ),
        ],
        subtitle=result.scratch,
    )
