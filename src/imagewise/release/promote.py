"""``promote``, ``history`` and ``rollback``: env tags moved by digest, each move recorded in the
registry (:mod:`imagewise.release.history`), gated by the policy's ``version_management``."""

from __future__ import annotations

from datetime import datetime

from imagewise.errors import NotFound, UsageError
from imagewise.policy.model import Policy
from imagewise.reference import ImageReference
from imagewise.registry.client import RegistryClient
from imagewise.release.history import (
    HistoryError,
    Move,
    check_env,
    read_history,
    record_move,
    rollback_target,
    who,
)


class PromotionRefused(HistoryError):
    """The policy's promotion gate says no: exit 1 (a gate, like a failed check)."""

    exit_code = 1


class MoveResult:
    """What promote or rollback did: the record written and where the env tag now points."""

    __slots__ = ("repository", "move", "copied_from")  # noqa: RUF023

    def __init__(self, repository: str, move: Move, copied_from: str | None = None) -> None:
        self.repository, self.move, self.copied_from = repository, move, copied_from

    def to_json(self) -> dict[str, object]:
        doc = {"repository": self.repository, **self.move.to_json()}
        if self.copied_from:
            doc["copied_from"] = self.copied_from
        return doc


class History:
    """The recorded moves of a repository's env tags, oldest first."""

    __slots__ = ("repository", "env", "moves")  # noqa: RUF023

    def __init__(self, repository: str, env: str | None, moves: list[Move]) -> None:
        self.repository, self.env, self.moves = repository, env, moves

    def to_json(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "env": self.env,
            "moves": [m.to_json() for m in self.moves],
        }


def _registry_ref(image: str, what: str) -> ImageReference:
    from imagewise.reference import parse_transport

    transport = parse_transport(image)
    if not transport.is_registry or transport.reference is None:
        raise UsageError(f"{image}: {what} needs a registry image (docker://REGISTRY/REPO[:TAG])")
    return transport.reference


def _client(ref: ImageReference, insecure: bool) -> RegistryClient:
    from imagewise.sources.registry import client_for

    return client_for(ref, insecure)


def _gate(
    client: RegistryClient,
    ref: ImageReference,
    digest: str,
    env: str,
    policy: Policy,
    insecure: bool,
) -> None:
    order = policy.version_management.promotion.order
    if env in order and order.index(env) > 0:
        before = order[order.index(env) - 1]
        try:
            on_before = str(client.head_manifest(ref.repository, before).digest)
        except NotFound:
            on_before = None
        if on_before != digest:
            raise PromotionRefused(
                f"refused: {env} takes only the digest on {before} (policy "
                f"version_management.promotion.order), and {before} is "
                + (f"at {on_before[:19]}" if on_before else "not set")
                + f", not {digest[:19]}; promote to {before} first"
            )
    if policy.version_management.promotion.require_check:
        from imagewise.check import CheckOptions, run_check

        result = run_check(
            CheckOptions(
                image=f"docker://{ref.host}/{ref.repository}@{digest}",
                policy=policy,
                insecure=insecure,
            )
        )
        if not result.verdict.passed:
            raise PromotionRefused(
                f"refused: {ref.repository}@{digest[:19]} fails `imagewise check` under "
                f"{policy.source} (version_management.promotion.require_check)"
            )


def promote(
    image: str,
    env: str,
    *,
    policy: Policy,
    by: str | None = None,
    reason: str = "",
    into: str | None = None,
    insecure: bool = False,
    now: datetime | None = None,
) -> MoveResult:
    """Point ``env`` of IMAGE's repository (or of ``into``, after copying IMAGE there) at
    IMAGE's digest, if the policy's promotion gate allows, and record the move."""
    check_env(env)
    ref = _registry_ref(image, "promote")
    copied_from = None
    if into is not None:
        from imagewise.copy import copy

        dest = _registry_ref(into, "promote --into")
        if dest.tag or dest.digest:
            raise UsageError(f"--into names a repository, not an image: {into}")
        result = copy(
            f"docker://{ref}", f"docker://{dest.host}/{dest.repository}:{env}", insecure=insecure
        )
        copied_from = str(ref)
        ref = _registry_ref(f"docker://{dest.host}/{dest.repository}@{result.digest}", "promote")
    client = _client(ref, insecure)
    source = str(ref.digest) if ref.digest is not None else (ref.tag or "latest")
    try:
        digest = str(client.head_manifest(ref.repository, source).digest)
    except NotFound:
        raise UsageError(f"{ref}: not found in the registry (no such tag or digest)") from None
    _gate(client, ref, digest, env, policy, insecure)
    move = record_move(
        client,
        ref.repository,
        env,
        digest,
        by=who(ref.host, ref.repository, by),
        reason=reason,
        action="promote",
        now=now,
    )
    return MoveResult(ref.name, move, copied_from)


def history(repo: str, env: str | None = None, *, insecure: bool = False) -> History:
    """The recorded moves of REPO's env tags (``env`` only, when given), oldest first."""
    if env is not None:
        check_env(env)
    ref = _registry_ref(repo, "history")
    return History(ref.name, env, read_history(_client(ref, insecure), ref.repository, env))


def rollback(
    repo: str,
    env: str,
    *,
    to: str | None = None,
    steps: int = 1,
    by: str | None = None,
    reason: str = "",
    insecure: bool = False,
    now: datetime | None = None,
) -> MoveResult:
    """Move ``env`` back to ``to`` or to where it was ``steps`` recorded moves ago; the rollback
    is recorded like any move. Refuses a digest the registry no longer has."""
    check_env(env)
    ref = _registry_ref(repo, "rollback")
    client = _client(ref, insecure)
    moves = read_history(client, ref.repository, env)
    target = rollback_target(moves, to, steps)
    try:
        client.head_manifest(ref.repository, target)
    except NotFound:
        raise HistoryError(
            f"refused: {ref.name}@{target[:19]} no longer exists in the registry "
            "(deleted or garbage-collected); pick another with `imagewise history`"
        ) from None
    move = record_move(
        client,
        ref.repository,
        env,
        target,
        by=who(ref.host, ref.repository, by),
        reason=reason,
        action="rollback",
        now=now,
    )
    return MoveResult(ref.name, move)


def move_table(result: MoveResult) -> str:
    from imagewise.textsafe import safe  # a move's fields come from the registry's annotations

    m = result.move
    frm = safe(m.old[:19]) if m.old else "(unset)"
    lines = [
        f"{result.repository}:{safe(m.env)}  {frm} -> {safe(m.new[:19])}  "
        f"({safe(m.action)} #{m.seq})"
    ]
    if result.copied_from:
        lines.append(f"  copied from {result.copied_from}")
    lines.append(f"  by {safe(m.by)} at {safe(m.at)}" + (f": {safe(m.reason)}" if m.reason else ""))
    return "\n".join(lines) + "\n"


def history_table(h: History) -> str:
    if not h.moves:
        what = f"{h.env} of {h.repository}" if h.env else h.repository
        return f"no recorded moves for {what}\n"
    from imagewise.textsafe import aligned, safe  # the fields come from the registry

    rows: list[tuple[str, ...]] = [("SEQ", "ENV", "ACTION", "FROM", "TO", "BY", "AT", "REASON")]
    for m in h.moves:
        cells = (m.env, m.action, (m.old or "-")[:19], m.new[:19], m.by, m.at[:19], m.reason)
        rows.append((str(m.seq), *map(safe, cells)))
    return aligned(rows)
