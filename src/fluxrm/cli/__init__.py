"""The ``flux`` command line: one module per subcommand, each with main(argv)."""
