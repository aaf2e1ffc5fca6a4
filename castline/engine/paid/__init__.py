"""Paid calls: every model call, batch request and speech clip is reserved, attempted and
settled (or released) here, under the run's ledger."""
