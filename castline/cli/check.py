"""`castline check`: the quality gates, claim by claim, on any script."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from castline import cli as app
from castline.cli import cli, options
from castline.cli.render import money
from castline.quality import GATES

_STYLE = {
    "passed": "green",
    "failed": "red",
    "skipped": "dim",
    "supported": "green",
    "to-verify": "yellow",
    "contradicted": "red",
    "not-found": "red",
}


@cli.command()
@click.argument("script", type=click.Path(path_type=Path))
@options.sources(
    required=True,
    help="A source the script draws on: a file (txt, md, html, pdf) or an http(s) URL; `[1]` "
    "in the script cites the first. Repeat for several.",
)
@options.allow_private_urls
@click.option(
    "--show",
    "show_path",
    type=click.Path(path_type=Path),
    help="The show bible, for the checks that need one (disclaimers, voice, length, hosts).",
)
@click.option(
    "--gate",
    "only",
    multiple=True,
    type=click.Choice(GATES),
    help="Run only this gate. Repeat for several.",
)
@click.option(
    "--judge",
    is_flag=True,
    help="Also run the judged criteria (accuracy claim by claim, tone, coherence, legal risk) "
    "with the show's two evaluators. Needs --show; their calls are reserved against the show's "
    "budget, recorded and priced like a run's (offline evaluators cost nothing).",
)
@click.option("--provider", help="Answer the evaluators with this provider (e.g. 'offline').")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check(
    script: Path,
    sources: Sequence[Path | str],
    allow_private_urls: bool,
    show_path: Path | None,
    only: Sequence[str],
    judge: bool,
    provider: str | None,
    as_json: bool,
) -> None:
    """Check a script against its sources: every claim with its verdict and evidence, and the
    quality gates' checks. Spends nothing unless --judge asks the show's evaluators.

    The script is castline's own script.md or one you wrote: a turn per line as
    `**Name:** text` or `NAME: text`, `## Segment` headings, `[1]` citing the first --source.
    Exit code 0 when every check run passes, 1 when one fails, 2 on bad input.

    \b
    Example:
      castline check draft.md --source notes.md --source paper.pdf --show show.yaml
    """
    from castline.checking import check_script, parse_script
    from castline.config import load_show
    from castline.errors import ConfigError
    from castline.sources import read_sources

    try:
        text = script.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"script {script}: file not found; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else f"not UTF-8 text, byte {exc.start}"
        raise ConfigError(
            f"script {script}: cannot be read ({reason}); give a UTF-8 text or Markdown file"
        ) from None
    if (judge or provider) and show_path is None:
        raise ConfigError(
            "--judge runs the show's evaluators: give the show bible with --show show.yaml"
        )
    if provider and not judge:
        raise ConfigError("--provider picks who judges: add --judge")
    parsed = parse_script(text, script)
    show = load_show(show_path) if show_path is not None else None
    private = allow_private_urls or bool(show and show.research.allow_private_urls)
    read = read_sources(list(sources), allow_private_urls=private)
    report = check_script(parsed, read, show=show, only=only)
    if judge and show_path is not None:
        from castline.engine import checks

        report = checks.judged(show_path, report, read, provider=provider, only=only)
    if as_json:
        click.echo(json.dumps(_as_json(report), indent=2))
    else:
        _print(report)
    sys.exit(0 if report.passed else 1)


def _as_json(report: Any) -> dict[str, Any]:
    return {
        "passed": report.passed,
        "similarity": report.similarity,
        "judged_by": report.judged_by,
        "run_id": report.run_id,
        "cost": str(report.cost),
        "shadow_cost": report.shadow,
        "criteria": [
            {
                "gate": r.gate,
                "criterion": r.criterion,
                "status": r.status,
                "score": r.score,
                "reason": r.reason,
                "findings": [f.model_dump(mode="json") for f in r.verdict.findings]
                if r.verdict
                else [],
            }
            for r in report.criteria
        ],
        "claims": [
            {
                "id": c.claim.id,
                "turn": c.claim.turn,
                "segment": c.claim.segment,
                "speaker": report.script.turns[c.claim.turn].speaker,
                "text": c.claim.text,
                "citations": list(c.claim.citations),
                "verdict": c.verdict,
                "blocking": c.blocking,
                "score": round(c.score, 4),
                "note": c.note_id,
                "evidence": c.evidence,
                "reason": c.reason,
                "missing": list(c.missing),
            }
            for c in report.claims
        ],
    }


def _print(report: Any) -> None:
    if report.claims:
        claims = Table(title="claims", title_justify="left")
        for column in ("#", "turn", "verdict", "claim", "evidence"):
            claims.add_column(column, overflow="fold")
        for c in report.claims:
            style = _STYLE[c.verdict]
            evidence = c.reason if c.verdict != "supported" else f"{c.note_id}: {c.evidence}"
            claims.add_row(
                c.claim.id,
                str(c.claim.turn),
                f"[{style}]{c.verdict}[/]",
                c.claim.text,
                evidence,
            )
        app.console.print(claims)
    table = Table(title="quality gates", title_justify="left")
    for column in ("gate", "criterion", "result", "score", "reason"):
        table.add_column(column, overflow="fold")
    for r in report.criteria:
        score = f"{r.score:.2f}" if r.score is not None else ""
        table.add_row(r.gate, r.criterion, f"[{_STYLE[r.status]}]{r.status}[/]", score, r.reason)
    app.console.print(table)
    failed = [r for r in report.criteria if r.status == "failed"]
    verdicts = [c.verdict for c in report.claims]
    summary = ", ".join(f"{verdicts.count(v)} {v}" for v in dict.fromkeys(verdicts))
    if report.run_id is not None:
        app.console.print(
            f"judged by {report.judged_by}; cost {money(report.cost, report.shadow)} "
            f"(`castline runs show {report.run_id}` for its calls)"
        )
    app.console.print(
        f"{len(report.claims)} claims ({summary or 'none'}); similarity measured "
        f"{report.similarity}; "
        + (f"[red]{len(failed)} check(s) failed[/]" if failed else "[green]every check passed[/]")
    )
