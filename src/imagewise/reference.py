"""Image references (the docker reference grammar) and transports (``docker://``, ``oci:`` ...).

Grammar, as docker/distribution defines it::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path-component { "/" path-component }
    domain     := host [ ":" port ]          host: DNS name, IPv4 or "[" IPv6 "]"
    path-comp  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := algorithm ":" hex

The first component is a registry host only when it contains ``.`` or ``:``, is ``localhost``,
or has upper-case letters; otherwise the reference is on Docker Hub (``docker.io``), and a
one-component Hub name gets the ``library/`` prefix: ``alpine`` is ``docker.io/library/alpine``.

Transports follow skopeo: ``docker://REF`` (or a bare REF), ``oci:DIR[:TAG]``,
``oci-archive:FILE[:TAG]``, ``docker-archive:FILE[:REF]`` (also ``docker-archive:FILE:@N`` for
the N-th image of a multi-image archive). Like skopeo, the path ends at the *first* colon, so a
path containing ``:`` cannot be named with these transports (rename or symlink it).
"""

from __future__ import annotations

import re

from imagewise.errors import ImageFormatError, InvalidReference
from imagewise.oci.digest import Digest
from imagewise.record import Record

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}

_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")
_OCI_TAG = re.compile(r"^[a-zA-Z0-9._-]+(?:[:/@][a-zA-Z0-9._-]+)*$")
_MAX_NAME = 255


class ImageReference(Record):
    """A parsed, normalised image reference: ``registry/repository[:tag][@digest]``."""

    __slots__ = ("registry", "repository", "tag", "digest")  # noqa: RUF023

    def __init__(
        self, registry: str, repository: str, tag: str | None = None, digest: Digest | None = None
    ) -> None:
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        """Parse ``text`` with Docker's normalisation; raises InvalidReference with the reason."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidReference("empty image reference")
        raw = text.strip()
        if raw != text or any(c.isspace() for c in raw):
            raise InvalidReference(f"invalid reference {text!r}: contains whitespace")
        rest, digest = _split_digest(raw, text)
        name, tag = _split_tag(rest, text)
        registry, repository = _split_domain(name, text)
        if len(repository) + len(registry) + 1 > _MAX_NAME:
            raise InvalidReference(
                f"invalid reference {text!r}: name longer than {_MAX_NAME} characters"
            )
        return cls(registry, repository, tag, digest)

    def with_tag(self, tag: str | None) -> ImageReference:
        return ImageReference(self.registry, self.repository, tag, None)

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What to ask the registry for: the digest when present, else the tag (default ``latest``)."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag or "latest"

    @property
    def is_docker_hub(self) -> bool:
        return self.registry == DOCKER_HUB

    @property
    def host(self) -> str:
        """The host[:port] to talk HTTP to (Docker Hub's API lives on registry-1.docker.io)."""
        return DOCKER_HUB_API if self.is_docker_hub else self.registry

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.registry)

    def api_base(self, insecure: bool = False) -> str:
        """Base URL of the registry API: plain HTTP for loopback hosts or when ``insecure``."""
        scheme = "http" if insecure or self.is_loopback else "https"
        return f"{scheme}://{self.host}"

    @property
    def familiar_name(self) -> str:
        """The short name users type: ``alpine`` for ``docker.io/library/alpine``."""
        if not self.is_docker_hub:
            return self.name
        if self.repository.startswith("library/") and self.repository.count("/") == 1:
            return self.repository.removeprefix("library/")
        first = self.repository.split("/", 1)[0]
        if "." in first or first == "localhost":  # would read back as a registry host
            return self.name
        return self.repository

    def familiar(self) -> str:
        """The short form users type: ``alpine:3.20`` rather than ``docker.io/library/alpine:3.20``."""
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        out = f":{self.tag}" if self.tag else ""
        return out + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()


def is_loopback_host(hostport: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``[::1]``, with or without a port."""
    host = hostport
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        import ipaddress

        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_digest(raw: str, text: str) -> tuple[str, Digest | None]:
    if "@" not in raw:
        return raw, None
    rest, _, dig = raw.partition("@")
    if "@" in dig:
        raise InvalidReference(f"invalid reference {text!r}: more than one '@'")
    try:
        digest = Digest.parse(dig)
    except ImageFormatError as e:
        raise InvalidReference(f"invalid reference {text!r}: {e}") from e
    if not rest:
        raise InvalidReference(f"invalid reference {text!r}: missing repository name before '@'")
    return rest, digest


def _split_tag(rest: str, text: str) -> tuple[str, str | None]:
    # a tag is after the last ':' that comes after the last '/' (a port colon precedes a '/')
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon <= slash:
        return rest, None
    name, tag = rest[:colon], rest[colon + 1 :]
    if not _TAG.match(tag):
        raise InvalidReference(
            f"invalid reference {text!r}: bad tag {tag!r} (letters, digits, '_', '.', '-'; "
            "at most 128 characters, not starting with '.' or '-')"
        )
    if not name:
        raise InvalidReference(f"invalid reference {text!r}: missing repository name before ':'")
    return name, tag


def _split_domain(name: str, text: str) -> tuple[str, str]:
    first, sep, remainder = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        domain, path = first, remainder
        if not _DOMAIN.match(domain):
            raise InvalidReference(f"invalid reference {text!r}: bad registry host {domain!r}")
        if domain in _HUB_ALIASES:
            domain = DOCKER_HUB
    else:
        domain, path = DOCKER_HUB, name
    if not path:
        raise InvalidReference(f"invalid reference {text!r}: missing repository name")
    if path.lower() != path:
        raise InvalidReference(f"invalid reference {text!r}: repository name must be lowercase")
    for comp in path.split("/"):
        if not _PATH_COMPONENT.match(comp):
            raise InvalidReference(
                f"invalid reference {text!r}: bad repository name component {comp!r} "
                "(lowercase letters, digits and single '.', '_', '__' or '-' separators)"
            )
    if domain == DOCKER_HUB and "/" not in path:
        if _HEX64.match(path):
            raise InvalidReference(
                f"invalid reference {text!r}: a 64-character hex string is an image ID, not a name"
            )
        path = f"library/{path}"
    return domain, path


# --------------------------------------------------------------------------- transports


class TransportRef(Record):
    """Where an image lives: a transport plus its registry reference or path (and tag/index)."""

    __slots__ = (  # noqa: RUF023 - in field order
        "transport",
        "reference",  # docker: the image; docker-archive: the tag to pick/write
        "path",  # oci, oci-archive, docker-archive
        "tag",  # oci, oci-archive: the ref.name annotation
        "index",  # docker-archive / oci: ``@N`` picks the N-th image
    )

    def __init__(
        self,
        transport: str,
        reference: ImageReference | None = None,
        path: str = "",
        tag: str | None = None,
        index: int | None = None,
    ) -> None:
        self.transport = transport
        self.reference = reference
        self.path = path
        self.tag = tag
        self.index = index

    @property
    def is_registry(self) -> bool:
        return self.transport == "docker"

    def __str__(self) -> str:
        if self.transport == "docker":
            return f"docker://{self.reference}"
        out = f"{self.transport}:{self.path}"
        if self.index is not None:
            return f"{out}:@{self.index}"
        if self.transport == "docker-archive":
            return out + (f":{self.reference}" if self.reference else "")
        return out + (f":{self.tag}" if self.tag else "")


def parse_transport(text: str) -> TransportRef:
    """Parse ``docker://REF``, a bare REF, ``oci:DIR[:TAG]``, ``oci-archive:FILE[:TAG]`` or
    ``docker-archive:FILE[:REF]``."""
    if not isinstance(text, str) or not text:
        raise InvalidReference("empty image reference")
    if text.startswith("docker://"):
        return TransportRef("docker", ImageReference.parse(text[len("docker://") :]))
    transport, sep, rest = text.partition(":")
    if sep and transport in ("oci", "oci-archive"):
        path, tag, index = _split_path(rest, text)
        if tag is not None and not _OCI_TAG.match(tag):
            raise InvalidReference(
                f"invalid reference {text!r}: bad {transport} image name {tag!r}"
            )
        return TransportRef(transport, path=path, tag=tag, index=index)
    if sep and transport == "docker-archive":
        path, ref, index = _split_path(rest, text)
        parsed: ImageReference | None = None
        if ref is not None:
            parsed = ImageReference.parse(ref)
            if parsed.digest is not None:
                raise InvalidReference(
                    f"invalid reference {text!r}: docker-archive does not take digests"
                )
            if parsed.tag is None:
                parsed = parsed.with_tag("latest")
        return TransportRef("docker-archive", reference=parsed, path=path, index=index)
    try:
        return TransportRef("docker", ImageReference.parse(text))
    except InvalidReference:
        # ``docker:latest`` is an image, but ``docker-daemon:x/y`` is a transport we do not have
        if sep and transport in ("docker-daemon", "containers-storage", "dir", "docker", "ostree"):
            raise InvalidReference(
                f"transport {transport!r} is not supported; use docker://, oci:, oci-archive: "
                "or docker-archive:"
            ) from None
        raise


def _split_path(rest: str, text: str) -> tuple[str, str | None, int | None]:
    path, sep, extra = rest.partition(":")
    if not path:
        raise InvalidReference(f"invalid reference {text!r}: missing path")
    if not sep:
        return path, None, None
    if not extra:
        raise InvalidReference(f"invalid reference {text!r}: empty name after ':'")
    if extra.startswith("@"):
        try:
            index = int(extra[1:])
        except ValueError as e:
            raise InvalidReference(f"invalid reference {text!r}: bad image index {extra!r}") from e
        if index < 0:
            raise InvalidReference(f"invalid reference {text!r}: negative image index")
        return path, None, index
    return path, extra, None
