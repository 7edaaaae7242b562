"""The bottom of the layer stack: tar entries (``entry``), the tar walk (``walk``), decompression
(``decompress``), read-ahead (``prefetch``), byte regions of local files (``region``) and the
memory-mapped walk with its background digest checks (``mapped``). It depends only on
``errors``, ``fileio``, ``record`` and ``oci.digest``; ``sources/`` and ``layers/`` both build on it
and not on each other."""
