"""authscale's twin servers: one aiohttp application, authentication pluggable.

`servers.app.create_app(settings)` builds it; `python -m servers` serves it. Nothing is
imported here, so that light users of `servers.settings` (the load generator) do not pay
for aiohttp, redis-py and PyJWT at start-up.
"""
