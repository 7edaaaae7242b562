"""PostgreSQL restarted under a running service (a real cluster of the test's own): the API,
the workers and the scheduler come back by themselves, and a job that arrives after the restart
is run."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from fixtures_postgres import PostgresCluster, fresh_database, own_postgres  # noqa: F401
from fixtures_registry import RegistryServer, push_image, unique_repo
from service_support import wait_for
from storage_support import image

from imagewise.service.run import Service
from imagewise.service.tokens import create_token


def test_the_service_recovers_from_a_postgresql_restart(
    tmp_path: Path,
    own_postgres: PostgresCluster,  # noqa: F811 - the fixture
    registry: RegistryServer,
) -> None:
    svc = Service(db_url=fresh_database(own_postgres.url), secret="s" * 16, port=0, workers=1)
    svc.start()
    try:
        token = create_token(svc.engine, "t", "write")
        api = httpx.Client(
            base_url=svc.url, timeout=10, headers={"Authorization": f"Bearer {token}"}
        )

        def check(tag: str) -> str:
            repo = unique_repo("pg")
            img = image([9900, 9910 + int(tag.split(".")[0])])
            push_image(registry, repo, tag, img)
            body = {
                "registry": registry.host,
                "repository": repo,
                "tag": tag,
                "digest": img.manifest_digest,
            }
            assert api.post("/api/v1/checks", json=body).status_code == 202
            return img.manifest_digest

        first = check("1.0")
        wait_for(
            lambda: api.get(f"/api/v1/images/{first}").status_code == 200, 30, "the first check"
        )
        own_postgres.stop()  # every pooled connection dies with it
        time.sleep(2.0)  # the workers and the scheduler meet the outage
        own_postgres.start()
        second = wait_for(lambda: check("2.0"), 30, "the API to accept a check again")
        wait_for(
            lambda: api.get(f"/api/v1/images/{second}").status_code == 200, 60, "the second check"
        )
        # the worker stores the image's results, then marks its job done: wait for both jobs
        wait_for(
            lambda: sum(j["state"] == "done" for j in api.get("/api/v1/jobs").json()) == 2,
            30,
            "both jobs done",
        )
        assert all(t.is_alive() for t in svc.workers.threads)
    finally:
        svc.close()
