"""Generated secrets for the secrets tests: one sample per rule (``CASES``) and the tokens they
are made of. Secrets are assembled at run time so no real-looking token sits in the repository."""

from __future__ import annotations

import base64
import json
import random
import string

RNG = random.Random(20240501)


def rand(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


def b64url(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


def pem(kind: str) -> str:
    body = base64.b64encode(RNG.randbytes(600)).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{lines}\n-----END {kind}PRIVATE KEY-----\n"


# secrets are assembled at run time so no real-looking token sits in the repository
AWS_ID = "AKIA" + rand(16, string.ascii_uppercase + "234567")
AWS_SECRET = rand(40, string.ascii_letters + string.digits + "/+")
GH = "ghp" + "_" + rand(36)
GL = "glpat" + "-" + rand(20)
SLACK = "xoxb" + "-" + rand(12, string.digits) + "-" + rand(13, string.digits) + "-" + rand(24)
STRIPE = "sk" + "_live_" + rand(24)
NPM = "npm" + "_" + rand(36)
PYPI = "pypi" + "-AgEIcHlwaS5vcmc" + rand(60, string.ascii_letters + string.digits + "-_")
JWT = ".".join(
    [
        b64url({"alg": "HS256", "typ": "JWT"}),
        b64url({"sub": "1234567890", "n": rand(8)}),
        rand(43, string.ascii_letters + string.digits + "-_"),
    ]
)
DB_PASS = "Zq8" + rand(13) + "!x"

CASES = [
    (
        "aws-access-key-id",
        "root/.aws/credentials",
        f"[default]\naws_access_key_id = {AWS_ID}\n",
        AWS_ID,
        2,
    ),
    (
        "aws-secret-access-key",
        "root/.aws/credentials",
        f"[default]\naws_secret_access_key = {AWS_SECRET}\n",
        AWS_SECRET,
        2,
    ),
    ("private-key", "root/.ssh/id_rsa", pem("RSA "), None, 1),
    ("private-key", "etc/app/key.pem", "# key\n" + pem("OPENSSH "), None, 2),
    ("private-key", "etc/app/ec.key", pem("EC "), None, 1),
    (
        "gcp-service-account",
        "app/sa.json",
        json.dumps(
            {
                "type": "service_account",
                "project_id": "p",
                "private_key_id": rand(40),
                "private_key": pem("").replace("\n", "\\n"),
            },
            indent=1,
        ),
        None,
        5,
    ),
    ("github-token", "app/deploy.sh", f"#!/bin/sh\ngit clone https://{GH}@github.com/o/r\n", GH, 2),
    ("gitlab-token", "app/ci.env", f"TOKEN={GL}\n", GL, 1),
    ("slack-token", "app/notify.py", f"client = WebClient(token='{SLACK}')\n", SLACK, 1),
    (
        "stripe-key",
        "app/settings.js",
        f"const stripe = require('stripe')('{STRIPE}');\n",
        STRIPE,
        1,
    ),
    ("npm-token", "root/.npmrc", f"//registry.npmjs.org/:_authToken={NPM}\n", NPM, 1),
    ("pypi-token", "root/.pypirc", f"[pypi]\nusername = __token__\npassword = {PYPI}\n", PYPI, 3),
    ("jwt", "app/client.py", f"HEADERS = {{'Authorization': 'Bearer {JWT}'}}\n", JWT, 1),
    (
        "password-in-url",
        "app/config.py",
        f"DATABASE_URL = 'postgres://app:{DB_PASS}@db.internal:5432/app'\n",
        DB_PASS,
        1,
    ),
    (
        "password-assignment",
        "etc/app/app.conf",
        f"[db]\nhost = db\npassword = {DB_PASS}\n",
        DB_PASS,
        3,
    ),
    ("password-assignment", "app/.env", f'DB_PASSWORD="{DB_PASS}"\n', DB_PASS, 1),
]
