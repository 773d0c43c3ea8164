"""The cloud's REST API: FastAPI app, API keys with roles, and the ``cloud serve`` command."""
