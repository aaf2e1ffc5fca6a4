"""castline studio: a web app and JSON API over the run store, the queue, the forecast, the
review queue and the published episodes (`castline serve`). Needs the `studio` extra."""

from castline.studio.app import create_app

__all__ = ["create_app"]
