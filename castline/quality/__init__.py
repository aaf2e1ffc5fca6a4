"""Quality: four gates of deterministic checks and dual-evaluator judgements, and consensus."""

# The gates in the order they run; here, light to import, for the command line's choices.
GATES = ("compliance", "style", "content", "integration")
