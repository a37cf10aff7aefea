"""The ``d3`` command line: one module per command and one dispatch (`d3_core.cli.main.main`)."""
