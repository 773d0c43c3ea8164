"""The cloud side: ingest, storage, training, signed releases, deployments and the API."""
