"""authscale's twin servers: one aiohttp application, authentication pluggable."""

from servers.app import create_app
from servers.settings import VARIANTS, Settings

__all__ = ["VARIANTS", "Settings", "create_app"]
