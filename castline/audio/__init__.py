"""Audio: one clip per turn from a TTS engine, mastered into one episode with chapters."""
