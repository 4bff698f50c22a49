"""``healthtrace signal confirm|reject|list|reviews``: a CSM's verdict on a stored signal, with a reason.

A rejected signal stops counting at once: every reader of the memory (scores, why, recaps) leaves it out. The
verdicts are training examples for the extractor's refit (``healthtrace extractor fit``).
"""

import json
from collections.abc import Callable
from typing import Annotated

import typer

signal_app = typer.Typer(help="Confirm or reject stored signals (a rejected signal stops counting at once).",
                         no_args_is_help=True)


def _review(verdict: str, signal_id: str, reason: str, author: str | None, tenant: str) -> None:
    from api.container import build_services

    with build_services().ledger as ledger:
        row = ledger.review_signal(signal_id, verdict, reason, author=author, tenant=tenant)
    done = "confirmed" if verdict == "confirm" else "rejected (no longer counts in scores)"
    print(f"signal {signal_id} of {row['account_id']} {done}: {row['reason']}")


def _verdict_command(verdict: str, reason_help: str, doc: str) -> Callable[..., None]:
    """confirm and reject take the same arguments; only the verdict and the words differ. (No postponed
    annotations in this module: typer must see this closure's ``reason_help`` in the signature.)"""

    def command(
        signal_id: Annotated[str, typer.Argument(help="Signal id (healthtrace signal list ACCOUNT shows them).")],
        reason: Annotated[str, typer.Option(help=reason_help)],
        author: Annotated[str | None, typer.Option(help="Who made the call.")] = None,
        tenant: Annotated[str, typer.Option(help="Tenant.")] = "default",
    ) -> None:
        _review(verdict, signal_id, reason, author, tenant)

    command.__doc__ = doc
    return command


signal_app.command("confirm")(_verdict_command(
    "confirm", "Why the signal is right.",
    "Confirm a signal (it keeps counting; the verdict is kept as a training example)."))
signal_app.command("reject")(_verdict_command(
    "reject", "Why the signal is wrong (wrong type, not about the account, ...).",
    "Reject a signal: it stops counting in scores at once (confirming it later restores it)."))


@signal_app.command("list")
def list_signals(
    account: Annotated[str, typer.Argument(help="Account id (in the stored memory).")],
    tenant: Annotated[str, typer.Option(help="Tenant.")] = "default",
) -> None:
    """Stored signals of an account (JSON lines): id, type, verified, the CSM's verdict, the first quote."""
    from api.container import build_services

    with build_services().ledger as ledger:
        ledger.get_account(account, tenant)
        verdicts = {r["signal_id"]: r["verdict"] for r in ledger.signal_reviews(account_id=account, tenant=tenant)}
        signals = ledger.signals_for(account, verified_only=False, include_rejected=True, tenant=tenant)
    for s in signals:
        quote = s.evidence[0].quote if s.evidence else (s.unverified_quotes or [""])[0]
        print(json.dumps({"id": s.id, "type": s.type, "verified": s.verified, "review": verdicts.get(s.id),
                          "occurred_at": s.occurred_at.isoformat() if s.occurred_at else None,
                          "quote": " ".join(quote.split())[:200]}, ensure_ascii=False))


@signal_app.command("reviews")
def reviews(
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
    tenant: Annotated[str, typer.Option(help="Tenant.")] = "default",
) -> None:
    """Every verdict recorded (JSON lines)."""
    from api.container import build_services

    with build_services().ledger as ledger:
        rows = ledger.signal_reviews(account_id=account, tenant=tenant)
    for r in rows:
        print(json.dumps({**r, "created_at": r["created_at"].isoformat()}, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    app.add_typer(signal_app, name="signal")
