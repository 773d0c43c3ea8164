"""One module per resource; each exposes ``router`` with its role declared on every route."""
