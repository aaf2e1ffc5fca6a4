"""The run engine: what an episode run is, in one place.

- `runtime`: DBOS launched once per process, the run store, each run's fixed inputs.
- `executors`, `recovery`: which processes are alive, and taking over the work of those that
  are not.
- `workflows`: the only DBOS workflows and steps; `payloads` what crosses that boundary.
- `runner`: the stages in order, against a `Steps` interface the workflows make durable.
- `paid`: the one way money is spent (reserve, attempt, settle or release).
- `queue`, `seasons`: queued episodes, workers and batches.
- `preflight`, `episodes`, `inspection`, `reviews`, `revoice`: the public API for checking,
  producing, resuming, inspecting, deciding on and re-voicing runs.
"""
