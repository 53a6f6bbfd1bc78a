"""``nightlog quality``: the quality rules judged across the archive."""

from __future__ import annotations

from typing import Annotated

import typer

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.quality import check_quality
from nightlog.cli.options import parse_date
from nightlog.cli.output import OutputFormat, emit
from nightlog.cli.state import state_of
from nightlog.states import QualityVerdict

app = typer.Typer(help="Judge the science frames' quality records with the quality rules: "
                       "what a rule marks poor, before it is saved.",
                  no_args_is_help=True)



@app.callback()
def quality_group() -> None:
    """Judge the science frames' quality records with the quality rules: what a rule
    marks poor, before it is saved."""


_COLUMNS = ("frame_id", "product_id", "before", "after", "changed", "reasons", "path")


@app.command("check")
def check_cmd(
    ctx: typer.Context,
    rule: Annotated[list[str] | None, typer.Option(
        "--rule", help="Judge with this rule of [quality.rules] only (repeatable; default: "
        "every rule).")] = None,
    night: Annotated[str | None, typer.Option(
        help="Only the frames of this night (YYYY-MM-DD).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show what the rules would mark, and save nothing.")] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] =
        OutputFormat.table,
) -> None:
    """Judge every current science product's quality record with the quality rules and
    save the verdicts (poor, good, unjudged) and their reasons; --dry-run only shows
    them."""
    state = state_of(ctx)
    settings = state.settings.quality
    rules = None if not rule else [settings.rule(name) for name in rule]
    engine = state.engine(must_exist=True)
    with make_sessionmaker(engine)() as session, session.begin():
        changes = check_quality(session, settings, rules=rules, night=parse_date(night),
                                save=not dry_run)
    rows = [{"frame_id": c.frame_id, "product_id": c.product_id, "before": c.before,
             "after": c.after, "changed": c.changed, "reasons": "; ".join(c.reasons),
             "path": c.path} for c in changes]
    poor = sum(1 for c in changes if c.after == QualityVerdict.POOR)
    changed = sum(1 for c in changes if c.changed)
    verb = "would change" if dry_run else "changed"
    emit(rows, _COLUMNS, fmt, title=f"{len(rows)} frame(s): {poor} poor; {changed} {verb}"
         + (" (dry run: nothing saved)" if dry_run else ""))
