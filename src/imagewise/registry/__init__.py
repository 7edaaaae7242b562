"""OCI distribution (registry HTTP API v2) client.

- :mod:`~imagewise.registry.client`: :class:`RegistryClient` (manifests, blobs, uploads, mount,
  tags, catalog, delete); one shared, pooled client per registry via ``RegistryClient.get``.
- :mod:`~imagewise.registry.session`: HTTP with authorization, retries and ``--insecure`` fallback.
- :mod:`~imagewise.registry.http`: the HTTP/1.1 client under it (pooled connections, TLS,
  streamed bodies, redirects, proxies from the environment).
- :mod:`~imagewise.registry.auth`: the ``WWW-Authenticate`` challenge flow (basic, bearer + scopes).
- :mod:`~imagewise.registry.credentials`: docker/containers auth files and credential helpers.
- :mod:`~imagewise.registry.upload`, :mod:`~imagewise.registry.blobstream`: uploads and verified
  downloads; :mod:`~imagewise.registry.errors`: responses to the error tree.
- :mod:`~imagewise.registry.transfer`: one operation's stall time, overall deadline and the
  reporter told about retries (``RegistryClient.using(transfer)``).

Nothing is imported here so that importing the package stays cheap.
"""
