"""The application layer of the scan tests: old Python packages with known advisories."""

from __future__ import annotations

from fixtures_images import TarFile, tar_bytes

OLD = {"Jinja2": "2.10", "PyYAML": "5.3.1", "requests": "2.19.0", "urllib3": "1.24.1"}
SITE = "usr/lib/python3.11/site-packages"


def app_layer() -> bytes:
    """A layer with old Python packages (``OLD``) and a GitLab token in ``app/.env``."""
    files: dict[str, bytes | TarFile] = {
        "usr/lib/python3.11": TarFile(kind="dir"),
        SITE: TarFile(kind="dir"),
    }
    for name, version in OLD.items():
        d = f"{SITE}/{name}-{version}.dist-info"
        files[d] = TarFile(kind="dir")
        files[f"{d}/METADATA"] = (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n"
        ).encode()
    token = "glpat" + "-" + "Vb7qX2mNw9Lk4Rt8Yp3Z"
    files["app"] = TarFile(kind="dir")
    files["app/.env"] = f"GITLAB_TOKEN={token}\n".encode()
    return tar_bytes(files)
