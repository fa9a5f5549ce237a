"""Helpers of the submission commands (``flux.cli``): jobspec CLI plugins
(``flux.cli.plugin``) and ``FluxArgumentParser`` (``flux.cli.argparse``).
The commands themselves live in ``fluxrm.cli``."""
