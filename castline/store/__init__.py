"""The run store: runs, their sources, every model call, the audit trail and the artifacts.

SQLAlchemy Core on SQLite (WAL) by default or Postgres by URL. The schema is built by named,
append-only migrations recorded in `schema_migrations`, from the first version on. Money is stored
as integer nano-dollars so that sums in SQL are exact; the API speaks `Decimal`.

`schema` holds the tables and migrations, `records` the frozen records and the money conversions,
`engine` the shared engines, and `store` the `Store` that reads and writes through them.
"""

from castline.store.engine import IMMEDIATE
from castline.store.records import (
    NANOS,
    UNRECONCILED,
    ArtifactRecord,
    CallRecord,
    EventRecord,
    NumberedRun,
    RunRecord,
    from_nanos,
    to_nanos,
)
from castline.store.schema import (
    MIGRATIONS,
    V2_COLUMNS,
    artifacts,
    batches,
    calls,
    events,
    executors,
    groups,
    metadata,
    provider_slots,
    reviews,
    runs,
    schema_migrations,
    scripts,
    sources,
)
from castline.store.store import NUMBERING_LOCK, Store

__all__ = [
    "IMMEDIATE",
    "MIGRATIONS",
    "NANOS",
    "NUMBERING_LOCK",
    "UNRECONCILED",
    "V2_COLUMNS",
    "ArtifactRecord",
    "CallRecord",
    "EventRecord",
    "NumberedRun",
    "RunRecord",
    "Store",
    "artifacts",
    "batches",
    "calls",
    "events",
    "executors",
    "from_nanos",
    "groups",
    "metadata",
    "provider_slots",
    "reviews",
    "runs",
    "schema_migrations",
    "scripts",
    "sources",
    "to_nanos",
]
