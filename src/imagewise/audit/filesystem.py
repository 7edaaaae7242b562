"""Facts about the final filesystem that image audit checks need, gathered in the single pass.

Only paths that matter to a check are tracked (setuid/setgid files, world-writable files,
account databases, credential-looking and unnecessary files, package-manager caches), so memory
stays small on images with 200k files. Whiteouts and opaque whiteouts remove earlier facts, so
what is reported is what a container started from the image would see.
"""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

from imagewise.layers.merged import PathTable
from imagewise.layers.model import Entry, Kind, Visitor
from imagewise.record import Record

if TYPE_CHECKING:
    from imagewise.archive.batch import EntryBatch
    from imagewise.sources.base import Layer

ACCOUNT_FILES = ("etc/passwd", "etc/group", "etc/shadow", "etc/master.passwd")
TMP_DIRS = ("tmp", "var/tmp", "dev/shm", "run/lock", "var/lock")
#: dockle DKL-LI-0003 (file names, directory names); node_modules/ and vendor/ are skipped
UNNECESSARY_FILES = frozenset(
    {
        "Dockerfile",
        "docker-compose.yml",
        "docker-compose.yaml",
        ".vimrc",
        ".DS_Store",
        ".swp",
        ".bash_history",
        ".python_history",
    }
)
UNNECESSARY_DIRS = frozenset(
    {
        ".cache",
        ".aws",
        ".azure",
        ".gcp",
        ".git",
        ".vscode",
        ".idea",
        ".npm",
        ".ssh",
        ".gnupg",
        ".docker",
        ".kube",
    }
)
#: dockle CIS-DI-0010 credential file names and extensions
CREDENTIAL_FILES = frozenset(
    {
        "credentials.json",
        "credentials",
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        ".env",
        "database.yml",
        "secret_token.rb",
        ".netrc",
        ".pgpass",
        ".git-credentials",
        ".npmrc",
        ".pypirc",
        "htpasswd",
        ".htpasswd",
        "wp-config.php",
        "secrets.yml",
        "master.key",
    }
)
CREDENTIAL_EXTS = (
    ".secret",
    ".ovpn",
    ".jks",
    ".keychain",
    ".pcap",
    ".p12",
    ".pfx",
    ".key",
    ".keystore",
    ".kdbx",
    ".tfstate",
)
APT_LISTS = "var/lib/apt/lists/"
APT_ARCHIVES = "var/cache/apt/archives/"
APK_CACHE = "var/cache/apk/"
CACHE_PREFIXES = {
    APT_LISTS: "apt-lists",
    APT_ARCHIVES: "apt-archives",
    APK_CACHE: "apk-cache",
    "var/cache/yum/": "yum-cache",
    "var/cache/dnf/": "dnf-cache",
}


class FileFact(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "path",
        "layer_index",
        "mode",
        "size",
        "uid",
        "gid",
    )

    def __init__(
        self,
        path: str,
        layer_index: int,
        mode: int,
        size: int,
        uid: int = 0,
        gid: int = 0,
    ) -> None:
        self.path = path
        self.layer_index = layer_index
        self.mode = mode
        self.size = size
        self.uid = uid
        self.gid = gid


def _under(path: str, prefix_dir: str) -> bool:
    return path == prefix_dir or path.startswith(prefix_dir + "/") if prefix_dir else True


_SETID = stat.S_ISUID | stat.S_ISGID
_IWOTH, _ISVTX = stat.S_IWOTH, stat.S_ISVTX
# Kind's members as plain module names: ``Kind.X`` is an enum descriptor call on every use
_FILE, _DIR, _HARDLINK = Kind.FILE, Kind.DIR, Kind.HARDLINK
_CACHE_TUPLE = tuple(CACHE_PREFIXES)
_CACHE_ROOTS = ("var/",)
_ACCOUNT_MAX = 4 << 20  # an account file's text is read up to this size


class AuditVisitor(Visitor):
    """Collects the filesystem facts for :mod:`imagewise.audit.checks`."""

    name = "audit"
    version = "1"

    def __init__(self) -> None:
        self.setid: dict[str, FileFact] = {}
        self.world_writable: dict[str, FileFact] = {}
        self.unnecessary: dict[str, FileFact] = {}
        self.credentials: dict[str, FileFact] = {}
        self.caches: dict[str, FileFact] = {}  # path -> fact, for package-manager caches
        self.accounts: dict[str, tuple[int, str]] = {}  # path -> (layer index, text)
        self._layer_accounts: dict[str, str] = {}
        self._index = 0
        self._restored: dict[str, str] | None = None
        #: the paths in any table, under the OCI layer rules: drops a path's facts when hidden
        self._paths = PathTable(lambda path, layer: self._drop(path))
        self._tables = (
            self.setid,
            self.world_writable,
            self.unnecessary,
            self.credentials,
            self.caches,
        )

    # --- pass hooks ------------------------------------------------------------------------
    def begin_layer(self, index: int, layer: Layer) -> None:
        self._index = index
        self._layer_accounts = {}
        self._restored = None

    def wants_content(self, entry: Entry) -> bool:
        return entry.kind is _FILE and entry.path in ACCOUNT_FILES and entry.size <= _ACCOUNT_MAX

    def visit(self, entry: Entry) -> None:
        self._one(entry.path, entry.kind, entry.mode, entry.size, entry.uid, entry.gid, entry, -1)

    batches = True

    def visit_batch(self, batch: EntryBatch) -> None:
        """:meth:`visit` of each entry from the batch's columns (an account file's text read
        from the batch's buffer)."""
        one = self._one
        for k, (path, kind, mode, size, uid, gid) in enumerate(
            zip(batch.paths, batch.kinds, batch.modes, batch.sizes, batch.uids, batch.gids)
        ):
            one(path, kind, mode, size, uid, gid, batch, k)

    def _one(
        self,
        path: str,
        kind: Kind,
        mode: int,
        size: int,
        uid: int,
        gid: int,
        source: Entry | EntryBatch,
        k: int,
    ) -> None:
        """One entry's facts; its content (an account file's) from ``source``: the entry, or
        entry ``k`` of a batch."""
        paths = self._paths
        if paths.apply(path, kind, self._index):  # a whiteout: hidden facts are dropped
            return
        if path in paths.index:  # a directory listed again: its own facts are decided anew
            self._drop(path)
        name = path.rpartition("/")[2]
        is_file = kind is _FILE
        hits: list[dict[str, FileFact]] = []
        if mode & _SETID and (is_file or kind is _HARDLINK):
            hits.append(self.setid)
        if (
            mode & _IWOTH
            and (is_file or kind is _DIR)
            and not (kind is _DIR and mode & _ISVTX)
            and not any(_under(path, d) for d in TMP_DIRS)
        ):
            hits.append(self.world_writable)
        if (
            (is_file and name in UNNECESSARY_FILES) or (kind is _DIR and name in UNNECESSARY_DIRS)
        ) and ("node_modules" not in path and "vendor" not in path.split("/")):
            hits.append(self.unnecessary)
        if is_file:
            if (name in CREDENTIAL_FILES or name.endswith(CREDENTIAL_EXTS)) and not path.startswith(
                ("usr/share/", "usr/lib/python", "usr/local/lib/python")
            ):
                hits.append(self.credentials)
            if (
                size > 0
                and path.startswith(_CACHE_ROOTS)
                and path.startswith(_CACHE_TUPLE)
                and "/partial" not in path
                and not path.endswith("/lock")
            ):
                hits.append(self.caches)
        if hits:
            fact = FileFact(path, self._index, mode, size, uid, gid)
            paths.keep(path, kind is _DIR, self._index)
            for table in hits:
                table[path] = fact
        if is_file and path in ACCOUNT_FILES:
            if self._restored is not None:  # replayed from the layer cache
                text = self._restored.get(path, "")
            elif isinstance(source, Entry):
                text = source.read(_ACCOUNT_MAX).decode("utf-8", "replace")
            else:  # what the pass gives when wants_content declines: nothing
                data = source.content(k) if size <= _ACCOUNT_MAX else b""
                text = data.decode("utf-8", "replace")
            if not hits:
                paths.keep(path, False, self._index)
            self._layer_accounts[path] = text
            self.accounts[path] = (self._index, text)

    def layer_result(self, index: int, layer: Layer) -> object:
        return dict(self._layer_accounts)

    def restore_layer(self, index: int, layer: Layer, result: object) -> None:
        self._index = index
        self._restored = (
            {str(k): str(v) for k, v in result.items()} if isinstance(result, dict) else {}
        )

    # --- whiteouts -------------------------------------------------------------------------
    def _drop(self, path: str) -> None:
        for table in self._tables:
            table.pop(path, None)
        self.accounts.pop(path, None)
