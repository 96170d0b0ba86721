"""The mapping tests run on every target: they share the target tests' fixtures (the CLI runner, the
Mattermost validator, the FerretDB server)."""

from tests.targets.conftest import cli, ferretdb, mmvalidate

__all__ = ["cli", "ferretdb", "mmvalidate"]
