"""`castline init`: a new show directory with a commented show bible and an example source."""

from __future__ import annotations

from pathlib import Path

from castline.errors import ConfigError
from castline.fileio import write_atomic

SHOW_TEMPLATE = """\
# castline show bible. Unknown keys are errors; docs/show-bible.md documents every key.

show:
  title: {title}
  description: >-
    One or two sentences a podcast directory shows under the title.
  author: Your name or team
  language: en          # ISO 639 code
  # artwork: artwork.png  # square image, 1400-3000 px, used in the feed
  explicit: false

# One to four hosts. `voices` maps a TTS engine to that host's voice.
hosts:
  - name: Alex
    persona: >-
      The curious one: asks what a listener would ask, and keeps things concrete.
    voices:
      espeak: en-us+f3
  - name: Sam
    persona: >-
      The explainer: brings the numbers and where they come from.
    voices:
      espeak: en-us+m3

brand_voice:
  style_guide: >-
    Friendly, precise, no hype. Every number comes with its source.
  sample_lines:
    - "Let's see what the evidence actually says."
    - "Thanks for listening, and stay curious."

rules:
  forbidden_phrases:       # matched case-insensitively, in any simple inflection
    - game changer
  required_disclaimers:    # must be spoken somewhere in the episode (the outro, usually)
    - "This episode is for general information only."

episode:
  target_minutes: 10      # the script aims for target_minutes * words_per_minute words
  words_per_minute: 150
  length_tolerance: 0.15

budget:
  per_episode: 33.25      # dollars; a run never spends more
  orchestration_share: 0.085

# routing:                # role -> ordered fallback chain of "provider:model"
#   writer: ["anthropic:claude-opus-4-6", "anthropic:claude-sonnet-4-6"]

quality:
  consensus_threshold: 0.85
  max_revision_rounds: 2

output_dir: episodes      # relative to this file
"""

EXAMPLE_SOURCE = """\
# Why Your Show Needs Sources

## What a source is

A source is any document the episode should draw on: notes, articles, reports or transcripts.
castline reads plain text, Markdown, HTML and PDF files and keeps every claim tied to its source.
Each claim the hosts make in the script cites the research note it came from.

## How sources are used

The research stage asks questions about the topic and answers each one from the sources only.
The script writer then turns those notes into a conversation between the show's hosts.
Show notes list every source that the finished episode cites.
"""


def create(directory: Path) -> list[Path]:
    directory = Path(directory)
    show_file = directory / "show.yaml"
    if show_file.exists():
        raise ConfigError(f"{show_file} already exists; choose another directory or edit it")
    title = directory.resolve().name.replace("-", " ").replace("_", " ").title() or "My Show"
    source = directory / "sources" / "example.md"
    write_atomic(show_file, SHOW_TEMPLATE.format(title=title))
    write_atomic(source, EXAMPLE_SOURCE)
    return [show_file, source]
