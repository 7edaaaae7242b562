"""The curated secret rules: one declared object per kind of secret.

Each rule names either cheap lower-case ``keywords`` (the text is searched with the regex only when
one occurs) or none, when its pattern starts with a literal the regex engine finds as fast as a
keyword (``boundary`` then checks the character before the match); the ``pattern`` whose group
``group`` is the secret, an optional Shannon-entropy floor and
an optional ``check`` for structure (a JWT header that decodes, a service-account JSON with a key).
``config_like`` rules (passwords in assignments) run only on configuration-shaped files and on the
image config, where ``name = value`` means what it says. ``literals``: exact strings one of which
every match of the pattern contains, looked for before the regex runs (``tests/test_secrets.py``
holds them to the patterns).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from imagewise.findings import RuleInfo, Severity
from imagewise.record import Record

SECRET_NAME = (
    r"(?:password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?key|"
    r"access[_-]?token|auth[_-]?token|client[_-]?secret|private[_-]?key|credentials?)"
)


class SecretRule(Record):
    __slots__ = (
        "id",
        "title",
        "severity",
        "keywords",
        "pattern",
        "group",
        "entropy",  # noqa: RUF023
        "check",
        "config_like",
        "boundary",
        "literals",
        "reach",
        "anchors",
    )
    _unshown = ("check",)

    def __init__(
        self,
        id: str,
        title: str,
        severity: Severity,
        keywords: tuple[str, ...],
        pattern: re.Pattern[str],
        group: int = 0,
        entropy: float = 0.0,
        check: Callable[[re.Match[str], str], bool] | None = None,
        config_like: bool = False,
        boundary: bool = False,
        literals: tuple[str, ...] = (),
        reach: int | None = None,
        anchors: tuple[str, ...] = (),
    ) -> None:
        self.id = id
        self.title = title
        self.severity = severity
        self.keywords = keywords
        self.pattern = pattern
        self.group = group
        self.entropy = entropy
        self.check = check
        self.config_like = config_like
        self.boundary = boundary  # the match must not continue a word to its left
        #: exact strings one of which every match contains (``in`` finds them several times
        #: faster than the regex engine finds its literal prefix): a text with none is skipped
        self.literals = literals
        #: every match begins at most ``reach`` characters before an occurrence of one of the
        #: ``anchors`` (lower case; the ``keywords`` unless given) in the lowered text: only
        #: those starts need trying (``detect._anchored``)
        self.anchors = anchors or keywords
        if reach is not None and not self.anchors:
            raise ValueError(f"{id}: a reach needs anchors to reach from")
        self.reach = reach

    @property
    def info(self) -> RuleInfo:
        """The detector as a declared rule; its findings' rule id is ``secret/<id>``."""
        return RuleInfo(
            f"secret/{self.id}",
            self.severity,
            self.title,
            area="security",
            source="imagewise",
            kind="secret",
            fix="Remove the secret from the image (every layer) and rotate it; a file "
            "deleted in a later layer is still in the earlier layer's blob.",
        )


def _jwt_ok(m: re.Match[str], text: str) -> bool:
    import base64
    import json

    head = m.group(0).split(".", 1)[0]
    try:
        doc = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and "alg" in doc


def _gcp_ok(m: re.Match[str], text: str) -> bool:
    return (
        '"service_account"' in text
        and re.search(r'"type"\s*:\s*"service_account"', text) is not None
    )


def _aws_id_ok(m: re.Match[str], text: str) -> bool:
    return m.group(1)[:4] in ("AKIA", "ASIA", "ABIA", "ACCA") and "EXAMPLE" not in m.group(1)


_HIGH, _MED = Severity.ERROR, Severity.WARNING

RULES: tuple[SecretRule, ...] = (
    # rules without keywords start with a literal, which the regex engine searches for as fast
    # as a keyword; the start boundary is checked in code (a look-behind would defeat that)
    SecretRule(
        "aws-access-key-id",
        "AWS access key ID",
        _HIGH,
        (),
        re.compile(r"(A[KSBC][IC]A[A-Z2-7]{16})(?![A-Z0-9])"),
        1,
        entropy=3.0,
        check=_aws_id_ok,
        boundary=True,
        literals=(
            "AKIA",
            "AKCA",
            "ASIA",
            "ASCA",
            "ABIA",
            "ABCA",
            "ACIA",
            "ACCA",
        ),
    ),
    SecretRule(
        "aws-secret-access-key",
        "AWS secret access key",
        _HIGH,
        ("secret", "private"),  # and "aws" in any case: its literals
        re.compile(
            r"(?i)aws.{0,20}?(?:secret|private).{0,20}?['\"]?\s*[:=]\s*['\"]?"
            r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
        ),
        1,
        entropy=4.0,
        # every match begins with "aws" in some case: tried only there (the engine cannot skip
        # to a case-insensitive start: 0.07 s -> 0.01 s over the aws-sdk of a node_modules)
        reach=0,
        anchors=("aws",),
        literals=(
            "AWS",
            "AWs",
            "AwS",
            "Aws",
            "aWS",
            "aWs",
            "awS",
            "aws",
        ),
    ),
    SecretRule(
        "gcp-service-account",
        "GCP service account key",
        _HIGH,
        (),
        re.compile(r'"private_key"\s*:\s*"(-----BEGIN[ A-Z]*PRIVATE KEY-----[^"]{64,})"'),
        1,
        check=_gcp_ok,
        literals=('"private_key"',),
    ),
    SecretRule(
        "private-key",
        "Private key",
        _HIGH,
        (),
        re.compile(
            r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----[ \t]*\r?\n"
            r"(?:[A-Za-z-]+:[^\n]*\n)*\s*([A-Za-z0-9+/=\r\n]{64,})"
        ),
        1,
        literals=("-----BEGIN",),
    ),
    SecretRule(
        "github-token",
        "GitHub token",
        _HIGH,
        (),
        re.compile(
            r"(gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})"
            r"(?![A-Za-z0-9_])"
        ),
        1,
        entropy=3.0,
        boundary=True,
        literals=(
            "ghp_",
            "gho_",
            "ghu_",
            "ghs_",
            "ghr_",
            "github_pat_",
        ),
    ),
    SecretRule(
        "gitlab-token",
        "GitLab personal access token",
        _HIGH,
        (),
        re.compile(r"(glpat-[A-Za-z0-9_-]{20})(?![A-Za-z0-9_-])"),
        1,
        entropy=3.0,
        boundary=True,
        literals=("glpat-",),
    ),
    SecretRule(
        "slack-token",
        "Slack token",
        _HIGH,
        (),
        re.compile(
            r"(xox[abposr]-[0-9A-Za-z]{10,48}(?:-[0-9A-Za-z]{4,64}){1,4})"
            r"(?![A-Za-z0-9-])"
        ),
        1,
        entropy=3.0,
        boundary=True,
        literals=("xox",),
    ),
    SecretRule(
        "slack-webhook",
        "Slack incoming webhook URL",
        _MED,
        (),
        re.compile(
            r"https://hooks\.slack\.com/services/"
            r"(T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/[A-Za-z0-9]{24})"
        ),
        1,
        literals=("https://hooks.slack.com/services/",),
    ),
    SecretRule(
        "stripe-key",
        "Stripe secret key",
        _HIGH,
        ("k_live_", "k_test_"),
        re.compile(r"([rs]k_(?:live|test)_[0-9a-zA-Z]{24,99})(?![A-Za-z0-9])"),
        1,
        entropy=3.0,
        boundary=True,
        literals=(
            "k_live_",
            "k_test_",
        ),
    ),
    SecretRule(
        "npm-token",
        "npm access token",
        _HIGH,
        (),
        re.compile(r"(npm_[A-Za-z0-9]{36})(?![A-Za-z0-9])"),
        1,
        entropy=3.5,
        boundary=True,
        literals=("npm_",),
    ),
    SecretRule(
        "npmrc-auth-token",
        "npm registry auth token in .npmrc",
        _HIGH,
        (),
        re.compile(r"_authToken\s*=\s*([^\s'\"$]{16,})"),
        1,
        entropy=3.0,
        literals=("_authToken",),
    ),
    SecretRule(
        "pypi-token",
        "PyPI upload token",
        _HIGH,
        (),
        re.compile(r"(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,})"),
        1,
        literals=("pypi-AgEIcHlwaS5vcmc",),
    ),
    SecretRule(
        "jwt",
        "JSON Web Token",
        _MED,
        (),
        re.compile(r"(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,})"),
        1,
        check=_jwt_ok,
        boundary=True,
        literals=("eyJ",),
    ),
    SecretRule(
        "password-in-url",
        "Password in URL",
        _MED,
        (),
        re.compile(
            # possessive runs (3.11): what they give back holds no ":" and no "@", so backing
            # off could never match; with them each "://" of a URL costs one try, not 64
            r"://([^:@/\s'\"<>{}$%]{1,64}+):([^@/\s'\"<>{}$%]{3,128}+)@"
            r"[A-Za-z0-9][A-Za-z0-9.-]*"
        ),
        2,
        entropy=2.0,
        literals=("://",),
    ),
    SecretRule(
        "password-assignment",
        "Password or secret in an assignment",
        _MED,
        # every spelling of SECRET_NAME holds one of these ("key" alone is in every package.json)
        (
            "passw",
            "pwd",
            "secret",
            "apikey",
            "api_key",
            "api-key",
            "accesskey",
            "access_key",
            "access-key",
            "accesstoken",
            "access_token",
            "access-token",
            "authtoken",
            "auth_token",
            "auth-token",
            "privatekey",
            "private_key",
            "private-key",
            "credential",
        ),
        re.compile(
            r"(?i)(?<![A-Za-z0-9])([A-Za-z0-9_.-]{0,40}"
            + SECRET_NAME
            + r")[\"']?[ \t]*(?:=|:)[ \t]*([\"']?)([^\s\"'`,;]{8,128})\2(?=[\s,;]|$)",
            re.MULTILINE,
        ),
        3,
        entropy=3.0,
        config_like=True,
        # up to 40 characters of name, then SECRET_NAME, whose spellings hold a keyword at most
        # 7 characters in ("client_secret"): tried only there, 0.42 s -> 0.03 s over the 1,012
        # config files of a real node_modules
        reach=40 + 7,
    ),
)

BY_ID = {r.id: r for r in RULES}
