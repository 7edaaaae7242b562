"""Progress is observed, never steering: library code reports to a Reporter, the CLI draws bars."""

from __future__ import annotations


class Reporter:
    """Receives progress events. The default does nothing; the CLI passes a rich-backed one."""

    def start(self, key: str, description: str, total: int | None = None) -> None:
        pass

    def advance(self, key: str, amount: int) -> None:
        pass

    def done(self, key: str) -> None:
        pass

    def message(self, text: str) -> None:
        pass


NULL = Reporter()
