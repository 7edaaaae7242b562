"""The layer cache's records in the service database, shared by every worker of a fleet.

``cache.LayerCache`` frames and checksums each record itself; this store only keeps the bytes
under their path. A layer analysed by any worker is a hit for every other, on any machine: a
base layer carried by 500 images is read once for the whole fleet. Records derive only from
their key (a verified diff_id and an analyser version), so two workers writing the same key at
once write the same bytes: the first write wins, the second is a no-op.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from imagewise.cache import FORMAT
from imagewise.service.db import layer_cache


class SqlLayerStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @staticmethod
    def _key(parts: tuple[str, ...]) -> str:
        return "/".join((FORMAT, *parts))

    def read(self, parts: tuple[str, ...]) -> bytes | None:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(layer_cache.c.data).where(layer_cache.c.key == self._key(parts))
            ).first()
        return bytes(row[0]) if row else None

    def exists(self, parts: tuple[str, ...]) -> bool:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(layer_cache.c.key).where(layer_cache.c.key == self._key(parts))
            ).first()
        return row is not None

    def write(self, parts: tuple[str, ...], data: bytes) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(layer_cache).values(key=self._key(parts), data=data, created=time.time())
                )
        except IntegrityError:
            pass  # written by another worker meanwhile: the same record
