"""Validator plugin ``jobspec``: the V1 jobspec rules
(``flux.job.validate_jobspec``), then the ``validate`` hooks of the CLI
plugins (``flux.cli.plugin``, prog ``validate``)."""

from flux.cli.plugin import CLIPluginRegistry
from flux.job.Jobspec import validate_jobspec
from flux.job.validator import ValidatorPlugin


class Validator(ValidatorPlugin):
    def __init__(self, parser):
        super().__init__(parser)
        self.cli_plugins = None

    def configure(self, args):
        self.cli_plugins = CLIPluginRegistry("validate")

    def validate(self, args):
        validate_jobspec(args.jobspec, require_version=1)
        self.cli_plugins.validate(args.jobspec)
