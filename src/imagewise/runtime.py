"""Running an image's commands with a real container runtime (buildah, no daemon).

imagewise never runs containers itself; what needs a running image (command tests of
``imagewise test``, ``imagewise measure startup``) goes through :class:`BuildahRuntime`:
``buildah from`` makes a working container of the image (any transport: ``oci:``,
``oci-archive:``, ``docker-archive:``, a registry), ``buildah run --isolation chroot`` runs a
command in it with the image's environment, user and working directory, and the container is
removed afterwards, also on errors. The storage is :func:`buildah_base`'s, shared with
``imagewise build``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from imagewise.errors import ImagewiseError, UsageError

#: what buildah adds to a command's standard error when the command exits non-zero
_NOISE = re.compile(r"^(subprocess exited with status \d+|Error: exit status \d+)$")


def quiet(text: str) -> str:
    """``text`` without the lines buildah adds when a command exits non-zero."""
    return "\n".join(ln for ln in text.splitlines() if not _NOISE.match(ln))


class Completed:
    __slots__ = ("exit_code", "stdout", "stderr")  # noqa: RUF023

    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code, self.stdout, self.stderr = exit_code, stdout, stderr


def _transport(image: str) -> str:
    """The reference as the containers transports spell it (a bare name is a registry)."""
    if image.startswith(("oci:", "oci-archive:", "docker-archive:", "docker://", "dir:")):
        return image
    return f"docker://{image}"


#: one component of an image name's path, as the containers libraries accept it
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")


def _valid_name_path(path: str) -> bool:
    return all(_COMPONENT.fullmatch(part) for part in path.strip("/").split("/"))


@contextmanager
def _nameable(ref: str) -> Iterator[str]:
    """``ref`` as buildah can take it. buildah names an ``oci:`` image it stores after the
    layout's path (``localhost/<path>``) and refuses a path that is no valid image name (capital
    letters, ``-_``, ``..``): such a layout is given through a symlink whose path is one."""
    from imagewise.reference import parse_transport

    if not ref.startswith("oci:"):
        yield ref
        return
    path = parse_transport(ref).path
    if path is None or _valid_name_path(os.path.abspath(path)):
        yield ref
        return
    import tempfile

    parents = [d for d in (tempfile.gettempdir(), "/tmp", "/var/tmp") if _valid_name_path(d)]
    if not parents:
        yield ref  # nowhere to link from: buildah says what it refuses
        return
    link_dir = os.path.join(parents[0], f"imagewise-{uuid.uuid4().hex[:16]}")
    os.mkdir(link_dir, 0o700)
    try:
        link = os.path.join(link_dir, "layout")
        os.symlink(os.path.abspath(path), link)
        yield "oci:" + link + ref[len("oci:") + len(path) :]
    finally:
        shutil.rmtree(link_dir, ignore_errors=True)


def buildah_base(path: str) -> list[str]:
    """``buildah`` with the storage imagewise uses: the ``vfs`` driver unless
    ``IMAGEWISE_BUILDAH_STORAGE_DRIVER`` names another, and the engine's default storage unless
    ``IMAGEWISE_BUILDAH_ROOT`` names a directory of its own (a fresh storage: nothing cached)."""
    base = [path, "--storage-driver", os.environ.get("IMAGEWISE_BUILDAH_STORAGE_DRIVER", "vfs")]
    root = os.environ.get("IMAGEWISE_BUILDAH_ROOT")
    if root:
        base += ["--root", os.path.join(root, "storage"), "--runroot", os.path.join(root, "run")]
    return base


class BuildahRuntime:
    name = "buildah"

    def __init__(self, insecure: bool = False) -> None:
        path = shutil.which("buildah")
        if path is None:
            raise UsageError(
                "running the image needs a container runtime: install buildah "
                "(apt-get install buildah); imagewise drives it, it never runs containers itself"
            )
        self._base = buildah_base(path)
        self._insecure = insecure

    @contextmanager
    def container(self, image: str, platform: object = None) -> Iterator[str]:
        """A working container of ``image`` (of its ``platform``'s image when it is an index),
        removed when the block ends."""
        ref = _transport(image)
        cmd = [*self._base, "from", "--quiet"]
        if platform is not None:
            cmd += ["--platform", str(platform)]
        if ref.startswith("docker://"):
            from imagewise.reference import ImageReference

            parsed = ImageReference.parse(ref.removeprefix("docker://"))
            if self._insecure or parsed.is_loopback:
                cmd.append("--tls-verify=false")
        # a name of our own: buildah's, made from the image name, is refused for some paths
        cmd += ["--name", f"imagewise-{uuid.uuid4().hex[:16]}"]
        with _nameable(ref) as given:
            made = subprocess.run([*cmd, given], capture_output=True, text=True, check=False)
        if made.returncode != 0:
            why = (made.stderr.strip().splitlines() or ["buildah from failed"])[-1]
            raise ImagewiseError(f"{image}: cannot make a container of it: {why}")
        name = made.stdout.strip().splitlines()[-1]
        try:
            yield name
        finally:
            subprocess.run([*self._base, "rm", name], capture_output=True, check=False)

    def run(
        self,
        container: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> Completed:
        """Run ``argv`` in ``container``; its exit code, standard output and error."""
        cmd = [*self._base, "run", "--isolation", "chroot"]
        for key, value in (env or {}).items():
            cmd += ["--env", f"{key}={value}"]
        try:
            done = subprocess.run(
                [*cmd, container, "--", *argv],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Completed(-1, "", f"timed out after {timeout:g}s")
        err = quiet(done.stderr)
        return Completed(done.returncode, done.stdout, err + ("\n" if err else ""))

    def popen(self, container: str, argv: Sequence[str]) -> subprocess.Popen[str]:
        """Start ``argv`` in ``container`` without waiting (output merged, line-buffered)."""
        return subprocess.Popen(
            [*self._base, "run", "--isolation", "chroot", container, "--", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group: stopped as a whole
        )
