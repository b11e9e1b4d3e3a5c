"""The API service (`doraflow api`, port 8080): REST under `/api/v1`, the dashboard at `/`.

Wire it with `doraflow.api.app.create_app(settings, session_factory, cache, bus)`.
"""

from doraflow.api.app import create_app

__all__ = ["create_app"]
