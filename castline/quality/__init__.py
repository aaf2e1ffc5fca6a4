"""Quality: four gates of deterministic checks and dual-evaluator judgements, and consensus."""
