"""The service's dashboard: server-rendered pages (no front-end toolchain), one self-contained
style with the HTML reports. ``/ui/login?token=...`` turns an API token into an HttpOnly
cookie; every page needs a token of at least the ``read`` scope.

* ``/ui/``: verdicts at a glance, every tag the service knows with its digest's newest result
  (worst first), storage per repository (the newest space reports), backups and drills, the
  latest alerts and jobs;
* ``/ui/images/{digest}``: every check of the digest over time: size, wasted and reclaimable
  bytes and vulnerabilities as trend charts (inline SVG), verdicts, violations; the newest
  check's findings with their fixes and its layers;
* ``/ui/repositories``: per repository its tags, verdicts and storage;
* ``/ui/jobs``: the queue live (the page reloads itself), each job's state, attempts and last
  error, and a retry button for failed and cancelled jobs (a ``write`` token);
* ``/ui/alerts``: every alert's state and when it was last sent, and the tickets opened.
"""

from __future__ import annotations

from html import escape
from typing import Any

from imagewise.units import format_size


def _cards(counts: dict[str, int]) -> str:
    return "".join(
        f'<div class="card"><div class="k">{escape(k)}</div><div class="v">{n}</div></div>'
        for k, n in counts.items()
    )


MENU = (
    '<p class="menu"><a href="/ui/">Overview</a> · <a href="/ui/repositories">Repositories</a>'
    ' · <a href="/ui/jobs">Jobs</a> · <a href="/ui/alerts">Alerts</a></p>'
)


def _when(t: float | None) -> str:
    import datetime as dt

    if not t:
        return ""
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _table(head: list[str], rows: list[list[str]]) -> str:
    """An HTML table; ``rows`` are cells already escaped."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _storage_rows(storage: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for report, body in sorted(storage.items()):
        for r in body.get("repositories", []):
            rows.append(
                [
                    escape(report),
                    escape(r["repository"]),
                    escape(format_size(r["logical_bytes"])),
                    escape(format_size(r["unique_bytes"])),
                ]
            )
    return rows


def overview(
    images: list[dict[str, Any]],
    jobs: list[dict[str, Any]],
    storage: dict[str, dict[str, Any]] | None = None,
    backups: dict[str, dict[str, Any]] | None = None,
    drills: dict[str, dict[str, Any]] | None = None,
    alerts: list[dict[str, Any]] | None = None,
) -> str:
    from imagewise.report.html import Section, render_page

    counts: dict[str, int] = {"PASS": 0, "FAIL": 0, "INCOMPLETE": 0, "pending": 0}
    for img in images:
        counts[img["status"]] = counts.get(img["status"], 0) + 1
    order = {"FAIL": 0, "INCOMPLETE": 1, "pending": 2, "PASS": 3}
    rows = "".join(
        f"<tr><td>{escape(i['repository'])}</td><td>{escape(i['tag'])}</td>"
        f'<td><a href="/ui/images/{escape(i["digest"])}"><code>{escape(i["digest"][:19])}</code></a></td>'
        f"<td>{escape(i['status'])}</td><td>{escape(format_size(i.get('size_bytes') or 0))}</td>"
        f"<td>{escape(format_size(i.get('reclaimable_bytes') or 0))}</td></tr>"
        for i in sorted(
            images, key=lambda i: (order.get(i["status"], 9), i["repository"], i["tag"])
        )
    )
    job_rows = "".join(
        f"<tr><td>{j['id']}</td><td>{escape(j['kind'])}</td><td>{escape(j['state'])}</td>"
        f"<td>{j['attempts']}</td><td>{escape(j.get('error') or '')}</td></tr>"
        for j in jobs
    )
    care = [
        [escape(name), escape(_when(b.get("last_snapshot"))), escape(str(b.get("store", "")))]
        for name, b in sorted((backups or {}).items())
    ]
    drill_rows = [
        [
            escape(name),
            "ok" if d.get("ok") else "FAILED",
            f"{float(d.get('rto_seconds') or 0):.1f} s",
            escape(_when(d.get("at"))),
        ]
        for name, d in sorted((drills or {}).items())
    ]
    alert_rows = [
        [escape(a["key"]), escape(a["state"]), escape(_when(a["last_sent"]))]
        for a in (alerts or [])[:10]
    ]
    return render_page(
        "imagewise",
        [
            Section("verdicts", "Verdicts", MENU + f'<div class="cards">{_cards(counts)}</div>'),
            Section(
                "storage",
                "Storage",
                _table(
                    ["space report", "repository", "logical", "unique"],
                    _storage_rows(storage or {}),
                )
                if storage
                else "<p>no space report yet (schedule a <code>space-report</code> job)</p>",
            ),
            Section(
                "backups",
                "Backups and drills",
                _table(["backup job", "newest snapshot", "store"], care)
                + _table(["drill", "last run", "RTO", "at"], drill_rows),
            ),
            Section(
                "alerts",
                "Recent alerts",
                _table(["alert", "state", "last sent"], alert_rows),
            ),
            Section(
                "images",
                "Images",
                "<table><thead><tr><th>repository</th><th>tag</th><th>digest</th><th>verdict</th>"
                f"<th>size</th><th>reclaimable</th></tr></thead><tbody>{rows}</tbody></table>",
            ),
            Section(
                "jobs",
                "Jobs",
                "<table><thead><tr><th>id</th><th>kind</th><th>state</th><th>attempts</th>"
                f"<th>error</th></tr></thead><tbody>{job_rows}</tbody></table>",
            ),
        ],
        subtitle="keeps container images checked",
    )


def _trend(points: list[tuple[float, float]], width: int = 640, height: int = 160) -> str:
    """An inline SVG line of ``points`` (time, value)."""
    if not points:
        return "<p>no data yet</p>"
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y1 = max(ys) or 1
    coords = " ".join(
        f"{(x - x0) / (x1 - x0) * (width - 20) + 10:.1f},{height - 10 - y / y1 * (height - 20):.1f}"
        for x, y in points
    )
    return (
        f'<svg class="trend" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">'
        f'<polyline fill="none" stroke="currentColor" stroke-width="2" points="{coords}"/></svg>'
    )


def repositories_page(images: list[dict[str, Any]], storage: dict[str, dict[str, Any]]) -> str:
    from imagewise.report.html import Section, render_page

    repos: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for img in images:
        repos.setdefault((img["registry"], img["repository"]), []).append(img)
    rows = []
    for (registry, repo), tags in sorted(repos.items()):
        failing = [t["tag"] for t in tags if t["status"] == "FAIL"]
        rows.append(
            [
                escape(registry),
                escape(repo),
                str(len(tags)),
                escape(", ".join(sorted(failing)) or "-"),
                escape(format_size(sum(int(t.get("size_bytes") or 0) for t in tags))),
            ]
        )
    return render_page(
        "imagewise repositories",
        [
            Section(
                "repositories",
                "Repositories",
                MENU
                + _table(["registry", "repository", "tags", "failing tags", "size of tags"], rows),
            ),
            Section(
                "storage",
                "Storage (space reports)",
                _table(["space report", "repository", "logical", "unique"], _storage_rows(storage)),
            ),
        ],
        subtitle="every repository the service has seen",
    )


def jobs_page(jobs: list[dict[str, Any]]) -> str:
    from imagewise.report.html import Section, render_page

    rows = []
    for j in jobs:
        retry = (
            f'<form method="post" action="/ui/jobs/{int(j["id"])}/retry">'
            '<button type="submit">retry</button></form>'
            if j["state"] in ("failed", "cancelled")
            else ""
        )
        rows.append(
            [
                str(int(j["id"])),
                escape(j["kind"]),
                f"<code>{escape(j['key'][:60])}</code>",
                escape(j["state"]),
                str(j["attempts"]),
                escape(_when(j.get("created"))),
                escape(_when(j.get("finished"))),
                f"<pre>{escape(j.get('error') or j.get('outcome') or '')}</pre>",
                retry,
            ]
        )
    states: dict[str, int] = {}
    for j in jobs:
        states[j["state"]] = states.get(j["state"], 0) + 1
    return render_page(
        "imagewise jobs",
        [
            Section("states", "Queue", MENU + f'<div class="cards">{_cards(states)}</div>'),
            Section(
                "jobs",
                "Jobs",
                _table(
                    ["id", "kind", "key", "state", "attempts", "queued", "finished", "log", ""],
                    rows,
                ),
            ),
        ],
        subtitle="the newest 200 jobs; this page reloads every 5 s",
        refresh=5,
    )


def alerts_page(alerts: list[dict[str, Any]], tickets: list[dict[str, Any]]) -> str:
    from imagewise.report.html import Section, render_page

    firing = sum(a["state"] == "firing" for a in alerts)
    rows = [[escape(a["key"]), escape(a["state"]), escape(_when(a["last_sent"]))] for a in alerts]
    ticket_rows = [
        [
            escape(t["channel"]),
            escape(t["key"]),
            f'<a href="{escape(t["url"])}">{escape(t["ticket"])}</a>'
            if t["url"]
            else escape(t["ticket"]),
            escape(t["state"]),
        ]
        for t in tickets
    ]
    return render_page(
        "imagewise alerts",
        [
            Section(
                "alerts",
                "Alerts",
                MENU
                + f'<div class="cards">{_cards({"firing": firing, "resolved": len(alerts) - firing})}</div>'
                + _table(["alert", "state", "last sent"], rows),
            ),
            Section(
                "tickets", "Tickets", _table(["channel", "alert", "ticket", "state"], ticket_rows)
            ),
        ],
        subtitle="every alert the rules have sent",
    )


def image_page(digest: str, history: list[dict[str, Any]]) -> str:
    import datetime as dt

    from imagewise.report.html import Section, render_page

    rows = "".join(
        f"<tr><td>{escape(dt.datetime.fromtimestamp(h['checked'], dt.timezone.utc).strftime('%Y-%m-%d %H:%M'))}</td>"
        f"<td>{escape(h['status'])}</td><td>{escape(format_size(h['size_bytes']))}</td>"
        f"<td>{h['layers']}</td><td>{h['efficiency'] * 100:.1f}%</td>"
        f"<td>{escape(format_size(h['reclaimable_bytes']))}</td>"
        f"<td>{escape(', '.join(h.get('violations') or []))}</td></tr>"
        for h in history
    )
    return render_page(
        f"imagewise {digest[:19]}",
        [
            Section(
                "size", "Size over time", _trend([(h["checked"], h["size_bytes"]) for h in history])
            ),
            Section(
                "wasted",
                "Wasted and reclaimable bytes over time",
                _trend([(h["checked"], h["wasted_bytes"]) for h in history])
                + _trend([(h["checked"], h["reclaimable_bytes"]) for h in history]),
            ),
            Section(
                "vulnerabilities",
                "Vulnerabilities (critical and high) over time",
                _trend(
                    [
                        (
                            h["checked"],
                            sum(
                                n
                                for sev, n in (h.get("vulnerabilities") or {}).items()
                                if sev.lower() in ("critical", "high")
                            ),
                        )
                        for h in history
                    ]
                ),
            ),
            Section(
                "findings",
                "Findings of the newest check, with their fixes",
                _table(
                    ["severity", "rule", "finding", "where", "fix"],
                    [
                        [
                            escape(f["severity"]),
                            f"<code>{escape(f['rule'])}</code>",
                            escape(f["title"]),
                            f"<code>{escape(f['path'] or '')}</code>",
                            escape(f["fix"] or ""),
                        ]
                        for f in (history[-1].get("findings") or [])
                    ],
                )
                if history and history[-1].get("findings") is not None
                else "<p>not recorded for this check</p>",
            ),
            Section(
                "layers",
                "Layers of the newest check",
                _table(
                    ["#", "size", "compressed", "created by"],
                    [
                        [
                            str(int(x["index"])),
                            escape(format_size(x["size_bytes"])),
                            escape(format_size(x["compressed_size"])),
                            f"<code>{escape(x['created_by'] or '')}</code>",
                        ]
                        for x in (history[-1].get("layer_list") or [])
                    ],
                )
                if history and history[-1].get("layer_list") is not None
                else "<p>not recorded for this check</p>",
            ),
            Section(
                "checks",
                "Checks",
                "<table><thead><tr><th>checked</th><th>verdict</th><th>size</th><th>layers</th>"
                "<th>efficiency</th><th>reclaimable</th><th>violations</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>",
            ),
        ],
        subtitle=digest,
    ).replace("<main>", "<main>" + MENU, 1)
