"""The `selfcritic` command: one parser that every part (server, trainer, evaluation,
bench) hangs its subcommands on. Nothing else lives here."""
