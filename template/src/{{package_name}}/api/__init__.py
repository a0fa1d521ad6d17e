"""The HTTP API.

Each module registers its routes on the application itself (``add_*_routes``)
instead of through ``include_router``: FastAPI 0.137 and later keep an included
router as one lazy route object, which costs about 8 µs more per request to
match and reports the route's un-prefixed path in ``scope["route"]``, the
template that metrics and access logs use.
"""
