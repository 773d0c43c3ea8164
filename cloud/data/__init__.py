"""The data layer: the cloud's schema as SQLAlchemy Core tables, one module per owner, migrated by Alembic.

Each owner module (``predictions``, ``features``, ``models``, …) holds the tables that owner alone reads and writes;
``schema`` gathers them; ``migrations`` is the Alembic history; ``legacy`` the frozen steps of older files;
``engine`` makes engines for either dialect. docs/data-layer.md says who owns what and how to change the schema.
This package's ``__init__`` imports nothing, so ``cloud.config`` can use ``cloud.data.urls`` cheaply.
"""
