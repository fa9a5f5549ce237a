"""Packaged CLI plugins (``CLIPluginRegistry.default_plugins`` names modules
here).  None yet: upstream's ``shape`` needs an RFC 46 shape parser."""
