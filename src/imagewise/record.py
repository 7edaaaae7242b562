"""``Record``: the base of the small value classes that every command imports.

A record lists its fields in ``__slots__`` (in order) and writes its own ``__init__`` taking
each field by name; ``Record`` derives equality, hashing, ordering, ``repr`` and
:meth:`~Record.replace` from those fields. Records are immutable by convention: nothing assigns
a field after ``__init__``. A class may name fields that equality, hashing and ordering ignore
in ``_uncompared`` (a dataclass field's ``compare=False``), fields only hashing ignores in
``_unhashed`` (``hash=False``: a dict field compared by value) and fields ``repr`` leaves out in
``_unshown`` (``repr=False``; ``_private`` fields are never shown).

Why not ``dataclasses``: a dataclass generates and compiles its methods when its module is
imported, about a millisecond per class (more when frozen), and the image, reference and analysis
models hold a few dozen of them. That was a tenth of ``imagewise analyze``'s run time before any
work began; ``imagewise lint`` (model, config, rule table, shell model) is on that path too.
The policy model is made of records too (every registry command reads a policy), and so is
everything ``check``, ``scan`` and ``sbom`` import (the policy's verdict, the SBOM and
vulnerability models, the catalogers, the audit's facts: ~40 dataclasses were ~20 ms of a
check's start-up, with ``inspect`` and ``ast``, which ``dataclasses`` imports). Modules off
those paths (``diff``, ``fix``, ``files``, the HTML report) keep dataclasses.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Self


class Record:
    __slots__ = ()
    _fields: tuple[str, ...] = ()
    #: set by a subclass: fields left out of equality, hashing and ordering
    _uncompared: tuple[str, ...] = ()
    #: set by a subclass: compared fields left out of hashing (unhashable values such as dicts)
    _unhashed: tuple[str, ...] = ()
    #: set by a subclass: fields left out of ``repr``
    _unshown: tuple[str, ...] = ()
    # derived for each subclass from its fields and the three above
    _compared: tuple[str, ...] = ()
    _hashed: tuple[str, ...] = ()
    _shown: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: list[str] = []
        for klass in reversed(cls.__mro__):
            slots = klass.__dict__.get("__slots__", ())
            fields.extend(
                n for n in ((slots,) if isinstance(slots, str) else slots) if n not in fields
            )
        cls._fields = tuple(fields)
        cls._compared = tuple(n for n in fields if n not in cls._uncompared)
        cls._hashed = tuple(n for n in cls._compared if n not in cls._unhashed)
        cls._shown = tuple(n for n in fields if n not in cls._unshown and not n.startswith("_"))

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self._compared])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(tuple([getattr(self, name) for name in self._hashed]))

    def __lt__(self, other: Self) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() < other._values()

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._shown)
        return f"{type(self).__name__}({args})"

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (through ``__init__``, so it validates again)."""
        values = {name: getattr(self, name) for name in self._fields}
        values.update(changes)
        return type(self)(**values)
