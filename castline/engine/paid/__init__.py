"""Paid calls: every model call, batch item and speech clip is reserved, attempted and settled
(or released) through this package, under the run's ledger: `spend` holds one reservation,
`attempts` is the one retry and breaker policy, `calls` and `batches` are the model paths (speech
is `castline.stages.voice`, on the same two), `limits` the provider slots they all take."""
