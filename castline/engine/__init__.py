"""The run engine: what an episode run is, in one place.

- `runtime`: DBOS launched once per process, the run store, each run's fixed inputs.
- `workflows`: the only DBOS code; the episode workflow and its durable steps.
- `runner`: the stages in order, against a `Steps` interface the workflows make durable.
- `paid`: the one way money is spent (reserve, attempt, settle or release).
- `runs`: the public API for producing, resuming and inspecting runs.
"""
