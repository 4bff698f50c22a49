"""Which email domains are ours, for a stored memory: configured, else inferred once across all accounts.

The inference (:func:`extractors.metadata.vendor_domains_from_addresses`) reads every account's addresses, so
it is cached per ledger and tenant until a document is added; a per-account reader (the API, ``why``) gets
the workspace-wide answer, never a guess from one account's mail.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memory.ledger import Ledger

_CACHE: dict[tuple[str, str], tuple[tuple[int, str], tuple[str, ...]]] = {}
_LOCK = threading.Lock()


def inferred_vendor_domains(ledger: Ledger, tenant: str = "default") -> tuple[str, ...]:
    """The domains taking part in many accounts' conversations (see the metadata extractor's docs)."""
    from extractors.metadata import vendor_domains_from_addresses

    key = (str(ledger.url), tenant)
    stamp = ledger.documents_stamp(tenant)
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    found = vendor_domains_from_addresses(ledger.addresses_by_account(tenant))
    with _LOCK:
        _CACHE[key] = (stamp, found)
    return found


def vendor_domains(ledger: Ledger, configured: Sequence[str], tenant: str = "default") -> tuple[tuple[str, ...], bool]:
    """(domains, inferred): the configured ones when given, else the inferred ones."""
    if configured:
        return tuple(configured), False
    found = inferred_vendor_domains(ledger, tenant)
    return found, bool(found)
