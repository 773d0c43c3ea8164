"""The ``iotsphere`` command: one CLI over the cloud, the gateway and the simulator, sub-commands loaded only when
used so ``--help`` is fast and a gateway never imports the cloud to run ``iotsphere edge``."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from shared.log_setup import configure_logging

#: the extra of iotsphere-mlops (pyproject.toml) that brings what each package's commands import; a gateway
#: installs only ``[edge]``, and the cloud's commands then say what to install instead of a traceback
EXTRAS = {"cloud": "cloud", "edge_agent": "edge", "firmware_sim": "sim", "iotsphere": "demo"}


class LazyGroup(click.Group):
    """A click group whose sub-commands live in other modules, named as ``"module:attribute"``."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        #: name → (import path "module:attribute", one-line help shown in the parent's --help)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module_name, attribute = self.lazy[cmd_name][0].split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if (exc.name or "").split(".")[0] in EXTRAS:  # one of ours missing is a bug, not an install choice
                    raise
                extra = EXTRAS[module_name.split(".")[0]]
                raise click.ClickException(
                    f"'{ctx.command_path} {cmd_name}' needs {exc.name}, which this installation lacks: "
                    f"pip install 'iotsphere-mlops[{extra}]'"
                ) from exc
            return getattr(module, attribute)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        """Answer the cloud's error hierarchy (``cloud.errors``) in one place: its message and exit code 1."""
        try:
            return super().invoke(ctx)
        except Exception as exc:
            errors = sys.modules.get("cloud.errors")  # never imported here: a gateway install has no cloud
            if errors is not None and isinstance(exc, errors.IoTSphereError):
                raise click.ClickException(str(exc)) from exc
            settings = sys.modules.get("shared.settings")  # an environment variable that does not fit, named
            if settings is not None and isinstance(exc, settings.SettingsError):
                raise click.ClickException(str(exc)) from exc
            raise

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.lazy[name][1]) for name in sorted(self.lazy)]
        rows += [
            (name, cmd.get_short_help_str()) for name, cmd in sorted(self.commands.items()) if name not in self.lazy
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def lazy_group(name: str, help_text: str, commands: dict[str, tuple[str, str]]) -> LazyGroup:
    return LazyGroup(name=name, help=help_text, lazy=commands)


# The ``cloud`` and ``admin`` groups; each sub-command lives beside the code it drives.
cloud = lazy_group(
    "cloud",
    "Run the cloud: initialise keys, train, release, serve.",
    {
        "init": ("cloud.releases.cli:init_command", "Create the TUF repository and the encrypted signing keys."),
        "release": ("cloud.releases.cli:release_command", "Sign a trained model into TUF and direct gateways to it."),
        "train": ("cloud.training.cli:train_command", "Train a model from simulated history (cold start)."),
        "ingest": ("cloud.ingest.cli:ingest_command", "Run only the MQTT ingest worker."),
        "serve": ("cloud.api.cli:serve_command", "Run the API, the ingest worker and the publisher."),
        "health": ("cloud.observability.cli:health_command", "Ready or not: database, migrations, broker (exit 0/1)."),
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
        "export-root": ("cloud.releases.provisioning:export_root_command", "Write the TUF root gateways start from."),
        "retention": ("cloud.retention_cli:retention_command", "Remove features and predictions older than N days."),
    },
)


@click.group(
    cls=LazyGroup,
    lazy={
        "sim": ("firmware_sim.cli:sim", "Simulate water heaters: training history, live telemetry."),
        "cloud": ("iotsphere.cli:cloud", "Run the cloud: initialise keys, train, release, serve."),
        "edge": ("edge_agent.cli:edge", "Run a gateway's edge agent: telemetry in, predictions out, signed updates."),
        "admin": ("iotsphere.cli:admin", "Administer API keys and signing keys."),
        "features": ("cloud.feature_cli:features", "Read heaters' features; build recorded training datasets."),
        "feedback": ("cloud.feedback_cli:feedback", "Record outcomes and ratings of predictions."),
        "predictions": ("cloud.predictions_cli:predictions", "Predictions gateways made: list, show one."),
        "alerts": ("cloud.alerts.cli:alerts", "The alert inbox: list, acknowledge, resolve, scan now."),
        "demo": ("iotsphere.demo.cli:demo_command", "The whole loop on this machine in about two minutes."),
        "models": ("cloud.registry_cli:models", "Model versions: list, show, promote, roll back, history."),
        "retraining": ("cloud.retraining.cli:retraining", "Automated retraining: policies, checks, decisions."),
        "train": ("cloud.pipeline.cli:train", "Training runs, schedules and evaluations (champion/challenger gate)."),
        "drift": ("cloud.monitoring.drift_cli:drift", "Drift checks of model versions: check now, history."),
        "deployments": ("cloud.deployments_cli:deployments", "Per-gateway deployment state: list, show, overdue."),
        "dead-letters": ("cloud.dead_letters_cli:dead_letters_command", "What ingest could not store, and why."),
        "monitor": ("cloud.monitoring.cli:monitor", "Model performance from outcomes, and reports (JSON or HTML)."),
        "experiments": ("cloud.experiments.cli:experiments", "A/B tests: create, start, status, stop, conclude, list."),
        "rollouts": ("cloud.rollouts.cli:rollouts", "Staged rollouts: canary, then the rest; halt and roll back."),
        "security": ("cloud.security_cli:security", "Forged or foreign director documents seen on gateways."),
    },
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def main(verbose: bool) -> None:
    """IoTSphere MLOps: signed ONNX models for water-heater gateways, and their whole lifecycle."""
    configure_logging(verbose)
