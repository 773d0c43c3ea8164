"""The dashboard's pages, one module per area; each builds an ``APIRouter`` with ``route_class=PageRoute``."""
