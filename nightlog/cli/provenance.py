"""``nightlog provenance``: what a product was made from, down to the raw frames."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.provenance import ProvenanceTree, find_product, provenance_tree
from nightlog.cli.output import OutputFormat, emit, printable
from nightlog.cli.state import state_of
from nightlog.coordinator.provenance_check import ProvenanceCheck, verify_provenance

app = typer.Typer()


def _mark(checks: ProvenanceCheck | None, path: str, sha256: str) -> str:
    check = None if checks is None else checks.of(path, sha256)
    if check is None:
        return ""
    return "  [ok]" if check.ok else f"  [{check.status.upper()}]"


def _render(tree: ProvenanceTree, checks: ProvenanceCheck | None) -> Tree:
    def line(text: str, path: str, sha256: str) -> Text:
        return Text(printable(f"{text}  sha256 {sha256[:16]}…{_mark(checks, path, sha256)}"))

    root = Tree(line(f"product {tree.id} ({tree.kind}, {tree.status}) {tree.path}",
                     tree.path, tree.sha256))
    root.add(Text(printable(f"made {tree.created_at.isoformat()} by nightlog "
                            f"{tree.software_version}; parameters "
                            f"{(tree.parameters_digest or 'unrecorded')[:16]}")))
    ccd = f" (CCD {tree.raw.ccd})" if tree.raw.ccd else ""
    root.add(line(f"raw frame {tree.raw.frame_id}{ccd} {tree.raw.path}", tree.raw.path,
                  tree.raw.sha256))
    for m in tree.masters:
        branch = root.add(line(f"{m.role} master {m.id} ({m.kind}, night {m.night}, "
                               f"v{m.version}, {m.quality}) {m.path}", m.path, m.sha256))
        for i in m.inputs:
            state = "used" if i.used else f"rejected: {i.reason or 'no reason recorded'}"
            branch.add(line(f"frame {i.frame_id} {i.path} ({state})", i.path, i.sha256))
    for role in tree.missing_steps:
        root.add(Text(printable(f"{role}: no master (step skipped)")))
    return root


@app.command("provenance")
def provenance_cmd(
    ctx: typer.Context,
    product: Annotated[str, typer.Argument(
        metavar="PRODUCT", help="Product id, or the path of a product file.")],
    verify: Annotated[bool, typer.Option(
        "--verify", help="Hash every file of the tree again (product, raw frame, masters, "
        "their input frames) and report each that changed or is missing; exit status 5 "
        "when any did.")] = False,
    fmt: Annotated[OutputFormat, typer.Option(
        "--format", help="'table' for people (a tree), 'json' for scripts (one nested "
        "object), 'csv' (one row per file of the tree, with its check).")] =
        OutputFormat.table,
) -> None:
    """Show what a product was made from: raw frame, each master, each master's frames.

    Every node carries the path and the SHA-256 the catalogue recorded when it was
    used.
    """
    engine = state_of(ctx).engine(must_exist=True)
    with make_sessionmaker(engine)() as session:
        tree = provenance_tree(session, find_product(session, product))
    check = verify_provenance(tree) if verify else None
    if fmt is OutputFormat.json:
        out = tree.as_dict()
        if check is not None:
            out["verification"] = check.as_dict()
        typer.echo(json.dumps(out, ensure_ascii=False, indent=1))
    elif fmt is OutputFormat.csv:
        rows = []
        for tracked in tree.files():
            found = None if check is None else check.of(tracked.path, tracked.sha256)
            rows.append({"what": tracked.what, "path": tracked.path, "sha256": tracked.sha256,
                         "check": "" if found is None else found.status})
        emit(rows, ("what", "path", "sha256", "check"), fmt)
    else:
        console = Console()
        console.print(_render(tree, check))
        if check is not None:
            problems = check.problems
            console.print(Text(f"verified {len(check.checked)} file(s): "
                               + (f"{len(problems)} changed or missing" if problems
                                  else "all unchanged")))
            for what, c in problems:
                console.print(Text(printable(f"{c.status}: {what} {c.path}"
                                             + (f" ({c.detail})" if c.detail else ""))))
    error = None if check is None else check.error()
    if error is not None:
        raise error
