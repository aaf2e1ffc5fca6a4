"""Per-provider concurrency and request-rate limits that hold across every process sharing the
run store (workers on one machine or many), not per process.

A request holds a slot: a row of `provider_slots`, taken under the database's write lock only
while fewer than `concurrency` of the provider's slots are held and fewer than
`requests_per_minute` were taken in the last 60 seconds; released when the request ends. The
slots of a process that died are released when its death is noticed (recovery), and a slot held
longer than `LEASE_S` is void in any case, so a crash never shrinks a provider's limit for good.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

from castline.config import ProviderSettings
from castline.engine.executors import Executors
from castline.store import Store, provider_slots

POLL_S = 0.02  # how soon a request waiting for a slot first looks again
MAX_POLL_S = 0.25
LEASE_S = 900.0  # longer than any request's timeout: a slot this old belongs to a dead process
WINDOW_S = 60.0


@dataclass(frozen=True)
class Limits:
    provider: str
    concurrency: int
    per_minute: int | None

    @classmethod
    def of(cls, provider: str, settings: ProviderSettings) -> Limits:
        return cls(provider, settings.concurrency, settings.requests_per_minute)


@contextmanager
def slot(store: Store, limits: Limits, holder: str | None = None) -> Iterator[None]:
    """Hold one of the provider's slots for the duration of a request. A request that has to
    wait looks again less and less often (up to every `MAX_POLL_S`): each look is a locked
    transaction, and many waiting requests would otherwise spend a worker's CPU on looking."""
    poll = POLL_S
    while True:
        taken, wait, holders = take(store, limits, holder)
        if taken is not None:
            break
        gone = [h for h in holders if h != holder and not Executors(store).alive(h)]
        if release_held_by(store, gone):
            continue  # a dead process held them: taken back at once, not after LEASE_S
        time.sleep(min(max(wait, poll), 1.0))
        poll = min(poll * 2, MAX_POLL_S)
    try:
        yield
    finally:
        with store.engine.begin() as connection:
            connection.execute(
                provider_slots.update()
                .where(provider_slots.c.id == taken)
                .values(released_at=time.time())
            )


def take(
    store: Store, limits: Limits, holder: str | None = None, now: float | None = None
) -> tuple[int | None, float, list[str]]:
    """Take a slot if the limits allow: its id; or None, how long to wait before trying again,
    and who holds the slots when all are taken."""
    table = provider_slots
    mine = table.c.provider == limits.provider
    with store.exclusive() as connection:
        if connection.dialect.name == "postgresql":
            key = zlib.crc32(f"castline-slots-{limits.provider}".encode())
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        looked = time.time() if now is None else now
        held = (
            connection.execute(
                sa.select(table.c.holder).where(
                    mine, table.c.released_at.is_(None), table.c.acquired_at > looked - LEASE_S
                )
            )
            .scalars()
            .all()
        )
        # Read the clock after the look: a release is stamped before it commits (outside this
        # lock), so a release this look saw is stamped earlier than the slot taken here.
        moment = time.time() if now is None else now
        if len(held) >= limits.concurrency:
            return None, POLL_S, sorted({h for h in held if h is not None})
        if limits.per_minute is not None:
            recent = (
                connection.execute(
                    sa.select(table.c.acquired_at)
                    .where(mine, table.c.acquired_at > moment - WINDOW_S)
                    .order_by(table.c.acquired_at)
                )
                .scalars()
                .all()
            )
            if len(recent) >= limits.per_minute:
                return None, recent[len(recent) - limits.per_minute] + WINDOW_S - moment, []
        connection.execute(
            table.delete().where(
                mine, table.c.released_at.is_not(None), table.c.acquired_at < moment - WINDOW_S
            )
        )
        taken = connection.execute(
            table.insert().values(provider=limits.provider, holder=holder, acquired_at=moment)
        ).inserted_primary_key
    assert taken is not None
    return int(taken[0]), 0.0, []


def release_held_by(store: Store, holders: list[str]) -> int:
    """Release the slots of processes that are gone; return how many."""
    if not holders:
        return 0
    with store.engine.begin() as connection:
        released = connection.execute(
            provider_slots.update()
            .where(provider_slots.c.holder.in_(holders), provider_slots.c.released_at.is_(None))
            .values(released_at=time.time())
        )
    return released.rowcount
