"""Management commands whose bad input is one line and exit status 2 (the brief's contract)."""

from __future__ import annotations

from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser

USAGE_ERROR = 2


class OneLineErrorCommand(BaseCommand):
    """argparse prints the usage block before an error and exits 2 from the command line, or
    raises from `call_command`; here both give one line (`prog: error: …`, or a CommandError
    with returncode 2)."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def error(message: str) -> NoReturn:
            line = " ".join(str(message).split())
            if parser.called_from_command_line:
                parser.exit(USAGE_ERROR, f"{parser.prog}: error: {line}\n")
            raise CommandError(f"Error: {line}", returncode=USAGE_ERROR)

        parser.error = error
        return parser
