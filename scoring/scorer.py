"""Scoring one account: a batch of one through the engine (:func:`scoring.engine.score_batch`).

Pure: no clock, no database, no file reading; the same inputs give the same score and digest.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime

from extractors.models import Account, HealthScore, Signal, UsageRow
from scoring.columns import UsageColumns, columns_from_usage
from scoring.engine import AccountScore, BatchInputs, compile_model, score_batch, signal_batch, signal_day
from scoring.facts import Fact
from scoring.model import ScoringModel


def score_account(
    signals: Iterable[Signal],
    usage: Iterable[UsageRow] | UsageColumns,
    account: Account,
    model: ScoringModel,
    as_of: date | datetime,
    *,
    facts: Mapping[str, Fact] | None = None,
    expected_metrics: Collection[str] | None = None,
    digest: bool = True,
) -> AccountScore:
    """One account's explained score as of a date (see :func:`score`)."""
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    seg_model = model.for_segment(account.segment)
    cm = compile_model(seg_model)
    aid = account.account_id
    cols = usage if isinstance(usage, UsageColumns) else columns_from_usage(usage, [aid])
    sb, notes = signal_batch([list(signals)], cm, as_of)
    res = score_batch(BatchInputs([account], cols, sb, [facts] if facts else None,
                                  frozenset(expected_metrics or ()), notes), cm, as_of, explain=True, digest=digest)
    assert res.accounts is not None
    out = res.accounts[0]
    if seg_model is not model:  # the score names the model file (its hash); the note names the profile
        out.model_hash = model.content_hash
        out.notes.append(f"segment profile {account.segment!r} of model {model.id} applied")
    return out


def score(
    signals: Iterable[Signal],
    usage: Iterable[UsageRow] | UsageColumns,
    account: Account,
    model: ScoringModel,
    as_of: date | datetime,
    *,
    facts: Mapping[str, Fact] | None = None,
    expected_metrics: Collection[str] | None = None,
) -> HealthScore:
    """Score one account as of a date. Pure: same inputs, same score, same digest.

    ``usage`` is the account's rows (rows of other accounts are ignored); ``facts`` adds document-derived facts
    (see :mod:`scoring.facts`); ``expected_metrics`` are the metrics the tenant reports as of this date, so a
    metric the account never had reads as "no activity since start" instead of "no data".
    """
    return score_account(signals, usage, account, model, as_of, facts=facts,
                         expected_metrics=expected_metrics).to_health_score()


__all__ = ["score", "score_account", "signal_day"]
