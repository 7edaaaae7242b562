"""The service's dashboard: server-rendered pages (no front-end toolchain), one self-contained
style with the HTML reports. ``/ui/login?token=...`` turns an API token into an HttpOnly
cookie; every page needs a token of at least the ``read`` scope.

* ``/ui/``: verdicts at a glance, every tag the service knows with its digest's newest result
  (worst first), and the latest jobs;
* ``/ui/images/{digest}``: every check of the digest over time: size and reclaimable bytes as a
  trend chart (inline SVG), verdicts, violations.
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


def overview(images: list[dict[str, Any]], jobs: list[dict[str, Any]]) -> str:
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
    return render_page(
        "imagewise",
        [
            Section("verdicts", "Verdicts", f'<div class="cards">{_cards(counts)}</div>'),
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
                "reclaimable",
                "Reclaimable bytes over time",
                _trend([(h["checked"], h["reclaimable_bytes"]) for h in history]),
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
    )
