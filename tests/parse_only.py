"""Parse a ``python cli.py ...`` command line as click would, without running the command.

tests/test_docs_commands.py runs the documented commands that need an exchange (``data fetch``,
``online --source ccxt:...``) through this: every option must exist and every value convert,
or it exits 2 with click's message. Usage: ``python tests/parse_only.py python cli.py ARGS``.
"""

from __future__ import annotations

import os
import sys
import warnings

import click


def _remaining(ctx: click.Context) -> list[str]:
    """The tokens a group left for its subcommand (click < 9 keeps the first apart)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return [*getattr(ctx, "protected_args", []), *ctx.args]


def main(argv: list[str]) -> int:
    if argv[:2] != ["python", "cli.py"]:
        print(f"expected 'python cli.py ...', got {argv[:2]}", file=sys.stderr)
        return 2
    sys.path.insert(0, os.getcwd())
    from cli import cli

    cmd: click.Command = cli
    name, rest, ctx = "cli.py", argv[2:], None
    try:
        while isinstance(cmd, click.Group):
            ctx = cmd.make_context(name, rest, parent=ctx)
            name, cmd, rest = cmd.resolve_command(ctx, _remaining(ctx))
        cmd.make_context(name, rest, parent=ctx)
    except click.ClickException as e:
        e.show()
        return 2
    print(f"parsed (not run): {' '.join(argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
