"""Authentication variants, one small module each, behind the AuthVariant interface (base).

`registry` holds every variant's facts and builds the one a server runs. Nothing is imported
here, so that the load generator can read the registry without aiohttp or PyJWT.
"""
