"""The capabilities a blob stream may declare, in one place.

Streams are plain binary readers (``read``); some promise more, and the code that can use a
promise asks here instead of probing the stream itself:

* **self-verifying** (:class:`SelfVerifying`): ``verifies`` is the digest the stream checks
  when read to EOF, raising ``DigestMismatch`` otherwise (``sources.blobio.VerifyingReader``,
  and wrappers that forward it). A consumer that reads to EOF need not hash the bytes again.
* **restartable** (:class:`Restartable`): ``restart()`` reopens the stream from its first byte
  (copy's source blob, opened again when an upload starts over).

The protocols are for the type checker; at run time :func:`verified_digest` and
:func:`restarter` read the declared members (this module imports nothing, so it costs nothing
on the start-up path).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO, Protocol

    from imagewise.oci.digest import Digest

    class SelfVerifying(Protocol):
        verifies: Digest | None

        def read(self, n: int = -1, /) -> bytes: ...

    class Restartable(Protocol):
        def read(self, n: int = -1, /) -> bytes: ...

        def restart(self) -> None: ...


def verified_digest(stream: SelfVerifying | IO[bytes] | object) -> Digest | None:
    """The digest ``stream`` checks at EOF (its ``verifies``), or None for a plain stream."""
    return getattr(stream, "verifies", None)


def restarter(stream: Restartable | IO[bytes] | object) -> Callable[[], None] | None:
    """``stream.restart`` when the stream can start over from its first byte, else None."""
    restart = getattr(stream, "restart", None)
    return restart if callable(restart) else None
