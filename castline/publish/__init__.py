"""Publishing: transcripts, chapters, show notes and the RSS feed of a finished episode."""
