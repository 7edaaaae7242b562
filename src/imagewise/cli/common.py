"""Helpers shared by command modules: options, output, progress bars. Errors are translated
once, at the entry (``cli.main.error_status``)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from imagewise.cli.args import echo, option
from imagewise.errors import ImagewiseError, UsageError
from imagewise.progress import Reporter

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Self, TypeVar

    from imagewise.cache import LayerCache
    from imagewise.encoders import Formats

    F = TypeVar("F", bound=Callable[..., Any])


def format_option(formats: Formats, *flags: str, what: str = "Output format") -> Callable[[F], F]:
    """``--format`` (or ``flags``) from a result kind's encoder registry: its ids and aliases
    are the choices, an alias arrives as its id (``tty`` -> ``table``), the help names the ids."""

    def canonical(name: str) -> str:
        try:
            return formats.canonical(name)
        except ImagewiseError:
            import argparse

            raise argparse.ArgumentTypeError(
                f"unknown format {name!r} (choose from {', '.join(formats.ids)})"
            ) from None

    canonical.__name__ = "format"
    return option(
        *(flags or ("--format",)),
        "fmt",
        choices=formats.choices,
        default=formats.default,
        metavar="FORMAT",
        type=canonical,
        help=formats.help(what),
    )


def platform_option(fn: F) -> F:
    return option(
        "--platform",
        metavar="OS/ARCH[/VARIANT]",
        help="Platform to pick from a multi-platform image (default: this host's).",
    )(fn)


def insecure_option(fn: F) -> F:
    return option(
        "--insecure",
        flag=True,
        help="Allow plain HTTP and unverified TLS (loopback registries are always allowed HTTP).",
    )(fn)


def checked_files_option(fn: F) -> F:
    """``--no-cache`` of the commands that keep no layer results, only the record of local files
    whose digests they checked (``checked_files``)."""
    return option(
        "--no-cache",
        flag=True,
        help="Hash every local layer, even one an earlier run checked in a file unchanged "
        "since; don't record the check.",
    )(fn)


def checked_files(no_cache: bool) -> LayerCache | None:
    """Where a command remembers the local files whose layer digests it checked: the layer
    cache (``imagewise.cache.LayerCache``; ``run_pass(checked=)``), or None with ``--no-cache``."""
    if no_cache:
        return None
    from imagewise.cache import LayerCache

    return LayerCache()


def verify_option(fn: F) -> F:
    return option(
        "--verify",
        flag=True,
        help="Also check the digest of uncompressed layers read in place from local archives "
        "and layouts (as dive and syft, imagewise trusts those files by default), and every "
        "layer's content against the config's diff_id. Registry blobs and compressed layers "
        "are always checked while they are read.",
    )(fn)


class RichReporter(Reporter):
    """A progress Reporter drawing rich progress bars on a terminal (stderr); silent otherwise."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> Self:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start(self, key: str, description: str, total: int | None = None) -> None:
        if self._progress is not None:
            self._tasks[key] = self._progress.add_task(description, total=total)

    def advance(self, key: str, amount: int) -> None:
        if self._progress is not None and key in self._tasks:
            self._progress.advance(self._tasks[key], amount)

    def done(self, key: str) -> None:
        if self._progress is not None and key in self._tasks:
            self._progress.remove_task(self._tasks.pop(key))

    def message(self, text: str) -> None:
        """A line for the user (a retry, a wait): on stderr, above the bars when drawn."""
        if self._progress is not None:
            self._progress.console.print(f"imagewise: {text}", markup=False, highlight=False)
        else:
            echo(f"imagewise: {text}", err=True)


def parse_build_args(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``--build-arg NAME=VALUE`` options as a mapping (a malformed one: a usage error)."""
    args: dict[str, str] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise UsageError(f"--build-arg {item!r}: expected NAME=VALUE")
        args[name] = value
    return args
