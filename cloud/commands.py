"""The ``cloud`` and ``admin`` command groups; each sub-command lives beside the code it drives."""

from __future__ import annotations

from cloud.cli import lazy_group

cloud = lazy_group(
    "cloud",
    "Run the cloud: initialise keys, train, release, serve.",
    {
        "init": ("cloud.releases.cli:init_command", "Create the TUF repository and the encrypted signing keys."),
        "release": ("cloud.releases.cli:release_command", "Sign a trained model into TUF and direct gateways to it."),
        "train": ("cloud.training.cli:train_command", "Train a model from simulated history (cold start)."),
        "ingest": ("cloud.ingest.cli:ingest_command", "Run only the MQTT ingest worker."),
        "serve": ("cloud.api.cli:serve_command", "Run the API, the ingest worker and the publisher."),
    },
)

admin = lazy_group(
    "admin",
    "Administer API keys and signing keys.",
    {
        "audit": ("cloud.audit_cli:audit", "The audit log: list entries, sign checkpoints, verify them."),
        "create-key": ("cloud.api.cli:create_key_command", "Create an API key for a role (shown once)."),
        "list-keys": ("cloud.api.cli:list_keys_command", "List API keys (never their secrets)."),
        "revoke-key": ("cloud.api.cli:revoke_key_command", "Revoke an API key by its id."),
        "rotate-key": ("cloud.releases.cli:rotate_key_command", "Replace a signing key; gateways follow through TUF."),
    },
)
