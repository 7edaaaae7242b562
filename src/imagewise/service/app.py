"""The service's HTTP API (FastAPI; OpenAPI at ``/openapi.json``).

* ``POST /notifications``: the CNCF distribution registry's ``notifications:`` webhook. Only
  requests carrying the shared secret (``Authorization: Bearer SECRET`` or
  ``X-Imagewise-Secret: SECRET``) are accepted; every ``push`` event of a tagged manifest
  enqueues a check of its digest (once per digest while one is pending).
* ``GET /api/v1/images``, ``GET /api/v1/images/{digest}``, ``GET /api/v1/jobs``: what the
  service knows; ``POST /api/v1/checks``: queue a check of an image by hand.
* ``GET /metrics`` (Prometheus), ``GET /healthz``.
"""

# no ``from __future__ import annotations``: FastAPI reads the endpoints' annotations, and the
# classes they name are imported inside create_app (the server extra is imported only there)
import hmac
from typing import Any

from imagewise.oci import media


def create_app(engine: Any, queue: Any, *, secret: str, insecure: bool = False) -> Any:
    from typing import Annotated

    from fastapi import FastAPI, HTTPException, Path, Request, Response
    from sqlalchemy import select

    from imagewise.service.db import alerts as alerts_table, image_refs, jobs, results
    from imagewise.service.metrics import exposition

    app = FastAPI(title="imagewise", version="1", description="Keeps container images checked.")

    def authorized(request: Request) -> bool:
        """The registry's shared secret (notifications only)."""
        given = request.headers.get("x-imagewise-secret", "")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = given or auth[7:]
        return bool(secret) and hmac.compare_digest(given.encode(), secret.encode())

    def need(request: Request, scope: str) -> None:
        """An API token of at least ``scope`` (401 without one, 403 when it is too weak); the
        dashboard's cookie counts as one."""
        from imagewise.service.tokens import allows, scope_of

        auth = request.headers.get("authorization", "")
        token = (
            auth[7:] if auth.lower().startswith("bearer ") else request.cookies.get("iw_token", "")
        )
        have = scope_of(engine, token) if token else None
        if have is None:
            raise HTTPException(
                status_code=401, detail="an API token is needed (Authorization: Bearer iwt_...)"
            )
        if not allows(have, scope):
            raise HTTPException(
                status_code=403, detail=f"this token's scope is {have}; {scope} is needed"
            )

    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    def _harbor(doc: dict[str, Any]) -> list[int]:
        """Harbor's webhook (``PUSH_ARTIFACT``): the pushed artifact's digest and tag."""
        data = doc.get("event_data") or {}
        repo = (data.get("repository") or {}).get("repo_full_name", "")
        out = []
        for res in data.get("resources") or []:
            url, digest, tag = (
                res.get("resource_url", ""),
                res.get("digest", ""),
                res.get("tag", ""),
            )
            if not (repo and digest.startswith("sha256:") and tag):
                continue
            payload = {
                "registry": url.split("/", 1)[0],
                "repository": repo,
                "tag": tag,
                "digest": digest,
                "insecure": insecure,
            }
            out.append(queue.submit("check", f"check:{digest}", payload, priority=10))
        return out

    async def notifications(request: Request) -> dict[str, Any]:
        if not authorized(request):
            raise HTTPException(status_code=401, detail="missing or wrong secret")
        try:
            doc = await request.json()
        except ValueError:
            raise HTTPException(status_code=400, detail="not JSON") from None
        queued = []
        if isinstance(doc, dict) and doc.get("type") in ("PUSH_ARTIFACT", "pushImage"):
            queued += _harbor(doc)
            return {"queued": queued}
        for event in doc.get("events", []) if isinstance(doc, dict) else []:
            target = event.get("target") or {}
            if event.get("action") != "push" or not target.get("tag"):
                continue
            if target.get("mediaType") not in media.MANIFEST_TYPES | media.INDEX_TYPES:
                continue
            registry = (event.get("request") or {}).get("host") or _host(target.get("url", ""))
            payload = {
                "registry": registry,
                "repository": target["repository"],
                "tag": target["tag"],
                "digest": target["digest"],
                "insecure": insecure,
            }
            queued.append(queue.submit("check", f"check:{target['digest']}", payload, priority=10))
        return {"queued": queued}

    def request_check(body: dict[str, Any], request: Request) -> dict[str, Any]:
        need(request, "write")
        for key in ("registry", "repository", "digest"):
            if not isinstance(body.get(key), str):
                raise HTTPException(status_code=422, detail=f"{key} is required")
        payload = {**body, "insecure": insecure}
        return {"job": queue.submit("check", f"check:{body['digest']}", payload, priority=5)}

    def request_build(body: dict[str, Any], request: Request) -> dict[str, Any]:
        """Queue a build of a build file on the service's machine (admin: it runs the engine)."""
        from imagewise.errors import ImagewiseError
        from imagewise.service.builds import build_payload

        need(request, "admin")
        try:
            payload = build_payload(body, "build")
        except ImagewiseError as e:
            raise HTTPException(status_code=422, detail=str(e)) from None
        payload.setdefault("name", payload["build_file"])
        payload.setdefault("insecure", insecure)
        return {"job": queue.submit("build", f"build:{payload['name']}", payload, priority=5)}

    def images(request: Request) -> list[dict[str, Any]]:
        need(request, "read")
        with engine.begin() as conn:
            refs = conn.execute(select(image_refs)).mappings().all()
            latest = {
                r["digest"]: r
                for r in conn.execute(select(results).order_by(results.c.id)).mappings().all()
            }
        return [
            {
                "registry": r["registry"],
                "repository": r["repository"],
                "tag": r["tag"],
                "digest": r["digest"],
                "status": latest[r["digest"]]["status"] if r["digest"] in latest else "pending",
            }
            for r in refs
        ]

    def image(digest: str, request: Request) -> dict[str, Any]:
        need(request, "read")
        with engine.begin() as conn:
            rows = (
                conn.execute(
                    select(results).where(results.c.digest == digest).order_by(results.c.id)
                )
                .mappings()
                .all()
            )
        if not rows:
            raise HTTPException(status_code=404, detail="no result for this digest")
        return {"digest": digest, "history": [dict(r) for r in rows]}

    def list_jobs(request: Request, state: str | None = None) -> list[dict[str, Any]]:
        need(request, "read")
        query = select(
            jobs.c.id,
            jobs.c.kind,
            jobs.c.key,
            jobs.c.state,
            jobs.c.attempts,
            jobs.c.error,
            jobs.c.outcome,
        )
        if state:
            query = query.where(jobs.c.state == state)
        with engine.begin() as conn:
            return [
                dict(r)
                for r in conn.execute(query.order_by(jobs.c.id.desc()).limit(200)).mappings()
            ]

    def ui_login(request: Request, token: str = "", next: str = "/ui/") -> Response:
        from fastapi.responses import RedirectResponse

        from imagewise.service.tokens import scope_of

        if scope_of(engine, token) is None:
            raise HTTPException(status_code=401, detail="unknown token")
        target = next if next.startswith("/ui/") else "/ui/"
        resp = RedirectResponse(target, status_code=303)
        resp.set_cookie("iw_token", token, httponly=True, samesite="strict")
        return resp

    def ui_overview(request: Request) -> Response:
        from fastapi.responses import HTMLResponse

        from imagewise.service.ui import overview

        need(request, "read")
        with engine.begin() as conn:
            recent = [
                dict(r)
                for r in conn.execute(
                    select(jobs.c.id, jobs.c.kind, jobs.c.state, jobs.c.attempts, jobs.c.error)
                    .order_by(jobs.c.id.desc())
                    .limit(20)
                ).mappings()
            ]
        rows = _tag_rows()
        from imagewise.service.scheduler import latest_reports

        return HTMLResponse(
            overview(
                rows,
                recent,
                storage=latest_reports(engine, "space"),
                backups=latest_reports(engine, "backup"),
                drills=latest_reports(engine, "drill"),
                alerts=_alert_rows(),
            )
        )

    def _alert_rows() -> list[dict[str, Any]]:
        with engine.begin() as conn:
            return [
                dict(r)
                for r in conn.execute(
                    select(alerts_table).order_by(alerts_table.c.last_sent.desc())
                ).mappings()
            ]

    def _tag_rows() -> list[dict[str, Any]]:
        with engine.begin() as conn:
            latest = {
                r["digest"]: dict(r)
                for r in conn.execute(select(results).order_by(results.c.id)).mappings().all()
            }
            refs = conn.execute(select(image_refs)).mappings().all()
        return [
            {
                **dict(r),
                **(latest.get(r["digest"]) or {}),
                "status": latest[r["digest"]]["status"] if r["digest"] in latest else "pending",
            }
            for r in refs
        ]

    def ui_repositories(request: Request) -> Response:
        from fastapi.responses import HTMLResponse

        from imagewise.service.scheduler import latest_reports
        from imagewise.service.ui import repositories_page

        need(request, "read")
        return HTMLResponse(repositories_page(_tag_rows(), latest_reports(engine, "space")))

    def ui_jobs(request: Request) -> Response:
        from fastapi.responses import HTMLResponse

        from imagewise.service.ui import jobs_page

        need(request, "read")
        with engine.begin() as conn:
            rows = [
                dict(r)
                for r in conn.execute(
                    select(
                        jobs.c.id,
                        jobs.c.kind,
                        jobs.c.key,
                        jobs.c.state,
                        jobs.c.attempts,
                        jobs.c.created,
                        jobs.c.finished,
                        jobs.c.error,
                        jobs.c.outcome,
                    )
                    .order_by(jobs.c.id.desc())
                    .limit(200)
                ).mappings()
            ]
        return HTMLResponse(jobs_page(rows))

    #: a job id as every database keeps it (a 32-bit INTEGER: a larger number is refused,
    #: 422, before any query; schemathesis found the 500 a 2**63 id gave)
    JobId = Annotated[int, Path(ge=1, le=2**31 - 1)]

    def ui_retry(job_id: JobId, request: Request) -> Response:
        from fastapi.responses import RedirectResponse

        need(request, "write")
        queue.retry(job_id)
        return RedirectResponse("/ui/jobs", status_code=303)

    def retry_job(job_id: JobId, request: Request) -> dict[str, Any]:
        need(request, "write")
        if not queue.retry(job_id):
            raise HTTPException(status_code=409, detail="only a failed or cancelled job is retried")
        return {"job": job_id, "state": "queued"}

    def ui_alerts(request: Request) -> Response:
        from fastapi.responses import HTMLResponse

        from imagewise.service.db import tickets
        from imagewise.service.ui import alerts_page

        need(request, "read")
        with engine.begin() as conn:
            opened = [
                dict(r)
                for r in conn.execute(select(tickets).order_by(tickets.c.id.desc())).mappings()
            ]
        return HTMLResponse(alerts_page(_alert_rows(), opened))

    def ui_image(digest: str, request: Request) -> Response:
        from fastapi.responses import HTMLResponse

        from imagewise.service.ui import image_page

        need(request, "read")
        with engine.begin() as conn:
            rows = [
                dict(r)
                for r in conn.execute(
                    select(results).where(results.c.digest == digest).order_by(results.c.id)
                ).mappings()
            ]
        if not rows:
            raise HTTPException(status_code=404, detail="no result for this digest")
        return HTMLResponse(image_page(digest, rows))

    def metrics(request: Request) -> Response:
        need(request, "read")
        return Response(
            exposition(engine, queue), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_api_route("/notifications", notifications, methods=["POST"], status_code=202)
    app.add_api_route("/api/v1/checks", request_check, methods=["POST"], status_code=202)
    app.add_api_route("/api/v1/builds", request_build, methods=["POST"], status_code=202)
    app.add_api_route("/api/v1/images", images, methods=["GET"])
    app.add_api_route("/api/v1/images/{digest}", image, methods=["GET"])
    app.add_api_route("/api/v1/jobs", list_jobs, methods=["GET"])
    app.add_api_route("/metrics", metrics, methods=["GET"])
    app.add_api_route("/ui/login", ui_login, methods=["GET"], include_in_schema=False)
    app.add_api_route("/ui/", ui_overview, methods=["GET"], include_in_schema=False)
    app.add_api_route("/ui/images/{digest}", ui_image, methods=["GET"], include_in_schema=False)
    app.add_api_route("/ui/repositories", ui_repositories, methods=["GET"], include_in_schema=False)
    app.add_api_route("/ui/jobs", ui_jobs, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        "/ui/jobs/{job_id}/retry", ui_retry, methods=["POST"], include_in_schema=False
    )
    app.add_api_route("/ui/alerts", ui_alerts, methods=["GET"], include_in_schema=False)
    app.add_api_route("/api/v1/jobs/{job_id}/retry", retry_job, methods=["POST"])
    return app


def _host(url: str) -> str:
    from urllib.parse import urlparse

    return urlparse(url).netloc
