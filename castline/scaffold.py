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
  language: en          # a BCP 47 tag: en, en-GB, pt-BR, ...
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
  target_minutes: 3       # the script aims for target_minutes * words_per_minute words
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
# Making a Podcast Episode from Sources

## What a source is

A source is any document an episode should draw on, such as research notes, articles, reports or
interview transcripts. castline reads plain text, Markdown, HTML and PDF files. Each source gets a
short id taken from its file name, and that id follows every claim drawn from the source. A source
that cannot be read stops the run before any money is spent, with a message naming the file.

## How research works

The research stage first proposes questions about the topic, one for each theme the sources cover.
The orchestrator then decides which questions are worth pursuing within the budget. Each question
is researched on its own, and the research steps run at the same time to save waiting. Every
research note holds one claim, the id of its source and the exact passage that supports it.
Notes that repeat each other are merged before planning starts.

## How the script is written

The planner splits the episode into an intro, a few body segments and an outro. Each segment has
a goal and a target length in spoken words, and the targets add up to the episode's length. The
writer turns each segment into a conversation between the show's hosts. Every turn that states a
fact cites the research note it came from. Spoken English runs at about 150 words a minute, so a
ten minute episode needs roughly fifteen hundred words.

## How the script is checked

Before anything is published, castline checks the script against the show's rules. Forbidden
phrases are caught in any common inflection, so a plural or a past tense does not slip through.
Required disclaimers must be spoken somewhere in the episode, usually in the outro. The length
must land within the tolerance set in the show bible. A segment that fails a check is revised on
its own, and the rest of the script is left exactly as it was.

## What gets published

The finished episode has a script in Markdown, a plain transcript and show notes. The show notes
list every source that the episode cites, with how often each was used. Every run keeps a record
of each model call with its prompt, its reply, its token usage and its cost. A run that crashes can
be resumed, and the steps that had already finished are not paid for twice.
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
