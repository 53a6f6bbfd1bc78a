"""The live view's pages, rendered from the dictionaries of :mod:`nightlog.web.live_data`.

Pure: a dictionary in, a :class:`~nightlog.web.markup.Markup` page out. Every
value goes through :func:`~nightlog.web.markup.fill`, which escapes it, so a
header string is text wherever it lands. The pages load one style sheet and one
script from the server itself (``/static/``) and nothing else: no inline script
or style (the Content-Security-Policy forbids them), nothing from the internet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from nightlog.web.markup import Markup, escape, fill, join

__all__ = ["error_page", "frame_page", "night_page", "nights_page"]

_NONE = Markup('<span class="none">–</span>')


def _num(value: float | int | None, digits: int = 4) -> Markup:
    return _NONE if value is None else escape(f"{value:.{digits}g}")


def _clock(iso: str | None) -> Markup:
    """A UTC time as ``HH:MM:SS``, the full time in its title."""
    if iso is None:
        return _NONE
    when = dt.datetime.fromisoformat(iso).astimezone(dt.UTC)
    return fill('<time datetime="{iso}" title="{full}">{short}</time>', iso=iso,
                full=when.strftime("%Y-%m-%d %H:%M:%S UTC"), short=when.strftime("%H:%M:%S"))


def _ago(iso: str | None, now: str) -> Markup:
    """How long ago ``iso`` was, counted on by the page's script (``data-since``)."""
    if iso is None:
        return _NONE
    seconds = max(0, int((dt.datetime.fromisoformat(now)
                          - dt.datetime.fromisoformat(iso)).total_seconds()))
    text = (f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"
            if seconds < 7200 else f"{seconds // 3600} h ago")  # as live.js counts on
    return fill('<span class="ago" data-since="{iso}" title="{iso}">{t}</span>',
                iso=iso, t=text)


def _table(head: Sequence[str], rows: Iterable[Sequence[Markup]], *, ident: str = "",
           empty: str = "none") -> Markup:
    body = [join(fill("<td>{c}</td>", c=c) for c in row) for row in rows]
    if not body:
        return fill('<p class="none"{ident}>{empty}</p>', empty=empty,
                    ident=fill(' id="{i}"', i=ident) if ident else Markup(""))
    return fill("<table{ident}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>"
                "</table>", ident=fill(' id="{i}"', i=ident) if ident else Markup(""),
                head=join(fill("<th>{h}</th>", h=h) for h in head),
                rows=join(fill("<tr>{cells}</tr>", cells=r) for r in body))


def _page(title: str, body: Markup, *, mark: str = "", now: str = "", pulse: str = ""
          ) -> Markup:
    return fill(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<title>{title}</title><link rel="stylesheet" href="/static/live.css">'
        '<link rel="icon" href="/static/icon.svg">'
        '<script src="/static/live.js" defer></script></head>'
        '<body data-live="{live}" data-pulse="{pulse}" data-mark="{mark}" data-now="{now}">'
        '<nav><a href="/">tonight</a> <a href="/nights">nights</a>'
        '<span id="connection"></span></nav><main id="content">{body}</main></body></html>\n',
        title=f"nightlog: {title}", body=body, mark=mark, now=now, pulse=pulse,
        live="1" if pulse else "0")


def _thumb(src: str, alt: str, page: str | None = None) -> Markup:
    img = fill('<img class="thumb" src="{src}" alt="{alt}" loading="lazy">', src=src, alt=alt)
    return fill('<a href="{page}">{img}</a>', page=page, img=img) if page else img


def _masters_used(uses: Sequence[dict[str, Any]]) -> Markup:
    if not uses:
        return _NONE
    return join((fill('{role}: master {id} ({night} v{version}){flag}', role=u["role"],
                      id=u["id"], night=u["night"], version=u["version"],
                      flag=Markup("") if u["quality"] == "good" else
                      fill(' <span class="flag">{q}</span>', q=u["quality"]))
                 for u in uses), "<br>")


def _quality(q: dict[str, Any] | None, columns: Sequence[dict[str, Any]]) -> Markup:
    if not q:
        return Markup('<span class="none">not measured</span>')
    parts = []
    for c in columns:
        value = q.get(c["key"])
        text = _NONE if value is None else (escape(value) if isinstance(value, str | bool)
                                            else _num(value))
        parts.append(fill("{h}: {v} {u}", h=c["heading"], v=text, u=c["unit"]))
    return join(parts, "<br>")


def _daemons(rows: Sequence[dict[str, Any]], now: str) -> Markup:
    if not rows:
        return Markup('<p class="none" id="daemons">no watch daemon has run on this '
                      "catalogue</p>")
    return _table(["host", "pid", "state", "heartbeat", "backlog", "last action", "folders"],
                  ([escape(d["host"]), escape(d["pid"]),
                    fill('<span class="{cls}">{s}</span>',
                         cls="ok" if d["running"] else "flag", s=d["state"]),
                    _ago(d["heartbeat_at"], now), escape(d["backlog"]),
                    fill("{a} ({w})", a=d["last_action"], w=_ago(d["last_action_at"], now)),
                    join(d["directories"], "<br>")] for d in rows), ident="daemons")


def _frames(doc: dict[str, Any]) -> Markup:
    rows = ([fill('<a href="{page}">{id}</a>', page=f["page"], id=f["id"]),
             _clock(f["obs_time"]), escape(f["kind"]), escape(f["filter"] or "–"),
             _num(f["exptime"]), fill('<span class="object">{o}</span>', o=f["object"] or "–"),
             fill('<span class="{cls}">{r}</span>',
                  cls="flag" if f["status"] != "ok" or "failed" in f["reduction"] else "",
                  r=f["reduction"]),
             _quality(f["quality"], doc["quality_columns"]), _masters_used(f["masters"]),
             _thumb(f["thumbnail"], f"frame {f['id']}", f["page"])]
            for f in doc["frames"])
    return _table(["frame", "time (UTC)", "kind", "filter", "exptime (s)", "object", "status",
                   "quality", "masters used", "thumbnail"], rows, ident="frames",
                  empty="no frame yet this night")


def _masters(rows: Sequence[dict[str, Any]]) -> Markup:
    return _table(["master", "kind", "filter", "frames", "statistics", "quality", "picture"],
                  ([fill("{id} v{v}", id=m["id"], v=m["version"]), escape(m["kind"]),
                    escape(m["filter"] or "–"), escape(m["n_frames"]),
                    join((fill("{lab}: {v} {u}", lab=x["label"], v=_num(x["value"]), u=x["unit"])
                          for x in m["figures"]), "<br>") or _NONE,
                    escape(m["quality"]) if m["quality"] == "good" else
                    fill('<span class="flag">{q}: {r}</span>', q=m["quality"],
                         r=m["quality_reason"] or ""),
                    _thumb(m["thumbnail"], f"{m['kind']} master {m['id']}")]
                   for m in rows), ident="masters", empty="no master built for this night")


def night_page(doc: dict[str, Any], *, tonight: bool) -> Markup:
    """The page of a night: daemons, frames, masters, problems, quarantine (live)."""
    night = doc["night"]
    title = "no frames yet" if night is None else (
        f"tonight ({night})" if tonight else f"the night of {night}")
    problems = _table(["what", "file", "reason", "when"],
                      ([escape(p["what"]), fill('<span class="path" title="{p}">{f}</span>',
                                                p=p["path"], f=p["file"]),
                        escape(p["reason"]), _clock(p["when"])] for p in doc["problems"]),
                      ident="problems", empty="no reduction problem")
    quarantine = _table(["file", "error", "reason", "last seen", "times"],
                        ([fill('<span class="path" title="{p}">{f}</span>', p=q["path"],
                               f=q["file"]), escape(q["error"]), escape(q["reason"]),
                          _clock(q["last_seen"]), escape(q["times_seen"])]
                         for q in doc["quarantine"]),
                        ident="quarantine", empty="no file in quarantine")
    kinds: dict[str, int] = {}
    for f in doc["frames"]:
        kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
    summary = join((fill("<div><b>{n}</b>{k}</div>", n=n, k=k)
                    for k, n in sorted(kinds.items())), "")
    body = fill(
        "<h1>{title}</h1>"
        '<p class="meta">as of {now}; the page follows the catalogue by itself</p>'
        "<h2>Watch daemon</h2>{daemons}"
        '<div class="summary" id="summary">{summary}</div>'
        "<h2>Frames, newest first</h2>{frames}"
        "<h2>Masters of the night</h2>{masters}"
        "<h2>Reduction problems</h2>{problems}"
        "<h2>Files in quarantine</h2>{quarantine}",
        title=title, now=_clock(doc["now"]), daemons=_daemons(doc["daemons"], doc["now"]),
        summary=summary, frames=_frames(doc), masters=_masters(doc["masters"]),
        problems=problems, quarantine=quarantine)
    pulse = "/api/pulse" if tonight or night is None else f"/api/pulse?night={night}"
    return _page(title, body, mark=doc["mark"], now=doc["now"], pulse=pulse)


def nights_page(rows: Sequence[dict[str, Any]]) -> Markup:
    """The list of nights, newest first."""
    table = _table(["night", "frames", "per kind"],
                   ([fill('<a href="{page}">{n}</a>', page=r["page"], n=r["night"]),
                     escape(r["frames"]),
                     join((fill("{k} {n}", k=k, n=n) for k, n in r["kinds"].items()), ", ")]
                    for r in rows), ident="nights", empty="the catalogue holds no frame")
    return _page("nights", fill("<h1>Nights</h1>{t}", t=table))


def _provenance(tree: dict[str, Any]) -> Markup:
    raw = tree["raw"]
    masters = _table(["role", "master", "night", "quality", "file", "sha256", "inputs"],
                     ([escape(m["role"]), fill("{k} {id} v{v}", k=m["kind"], id=m["id"],
                                               v=m["version"]),
                       escape(m["night"]), escape(m["quality"]),
                       fill('<span class="path">{p}</span>', p=m["path"]),
                       fill('<span class="sha">{s}</span>', s=m["sha256"]),
                       fill("{u} used, {r} left out",
                            u=sum(1 for i in m["inputs"] if i["used"]),
                            r=sum(1 for i in m["inputs"] if not i["used"]))]
                      for m in tree["masters"]), empty="no master used")
    missing = fill("without {s}", s=", ".join(tree["missing_steps"])) if tree[
        "missing_steps"] else Markup("every calibration step applied")
    steps = _table(["step", "what it did"], ([escape(s["name"]), escape(s["summary"])]
                                             for s in tree.get("steps", ())),
                   empty="no step recorded")
    inputs = join(fill("<details><summary>inputs of {k} master {id}</summary>{t}</details>",
                       k=m["kind"], id=m["id"], t=_table(
                           ["frame", "used", "reason left out", "file"],
                           ([fill('<a href="/frame/{i}">{i}</a>', i=i["frame_id"]),
                             escape("yes" if i["used"] else "no"), escape(i["reason"] or ""),
                             fill('<span class="path">{p}</span>', p=i["path"])]
                            for i in m["inputs"]), empty="no input recorded"))
                  for m in tree["masters"])
    return fill(
        '<section class="product"><h3>{kind} product {id} ({status})</h3>'
        '<div class="body">{thumb}<div><p>made {made} by nightlog {ver}; {missing}</p>'
        '<p class="path">{path}</p><p>from raw frame {raw} <span class="sha">{rawsha}</span>'
        "</p><h4>Masters</h4>{masters}{inputs}<h4>Steps</h4>{steps}</div></div></section>",
        kind=tree["kind"], id=tree["id"], status=tree["status"],
        thumb=_thumb(tree["thumbnail"], f"product {tree['id']}"),
        made=_clock(tree["created_at"]), ver=tree["software_version"], missing=missing,
        steps=steps, inputs=inputs,
        path=tree["path"], raw=raw["frame_id"], rawsha=raw["sha256"], masters=masters)


def frame_page(doc: dict[str, Any]) -> Markup:
    """A frame's page: its catalogued values, its picture, each product's provenance."""
    f = doc["frame"]
    keys = ("kind", "night", "obs_time", "exptime", "filter", "object", "instrument",
            "detector", "binning", "readout_mode", "profile", "naxis1", "naxis2", "gain",
            "read_noise", "ccd_temp", "set_temp", "status", "status_reason", "path",
            "path_version", "is_latest", "sha256", "size", "ingested_at")
    facts = _table(["field", "value"], ([escape(k), escape("–" if f[k] is None else f[k])]
                                   for k in keys), ident="facts")
    products = join(_provenance(t) for t in doc["products"]) or Markup(
        '<p class="none">no product: this frame has not been reduced</p>')
    body = fill(
        '<h1>Frame {id}</h1><p class="meta"><a href="{night_page}">the night of {night}</a>'
        '</p><div class="body">{thumb}{facts}</div><h2>Quality</h2><p>{quality}</p>'
        "<h2>Products and their provenance</h2>{products}",
        id=f["id"], night_page=doc["night_page"], night=f["night"],
        thumb=_thumb(doc["thumbnail"], f"frame {f['id']}"), facts=facts,
        quality=_quality(doc["quality"], doc["quality_columns"]), products=products)
    return _page(f"frame {f['id']}", body)


def error_page(status: int, message: str) -> Markup:
    """A page that says what went wrong."""
    return _page(f"{status}", fill("<h1>{s}</h1><p>{m}</p>", s=status, m=message))
