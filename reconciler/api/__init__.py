"""The HTTP API (SPEC §8), served by the daemon: ``app.create_app`` assembles ``middleware``,
``access`` (tokens and scopes) and ``routes/``; ``errors.ApiError`` is its error answer."""
