"""The ``spikelab`` command line.

Subcommands live in their own modules, imported only when used, so ``spikelab --help`` is
fast. Each module defines ``add_arguments(parser)`` and ``run(args) -> int``. Errors that are
the user's to fix (:class:`spikelab.errors.SpikelabError`, ``ValueError``,
``FileNotFoundError``) are printed as one line, without a traceback; ``--debug`` shows it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from spikelab import __version__
from spikelab.errors import SpikelabError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("spikelab.info", "print versions, compute devices and thread counts"),
    "demo": ("spikelab.demo", "run the built-in demo (no downloads, a few minutes on CPU)"),
    "continual": ("spikelab.tasks.continual", "run a continual-learning experiment from a YAML config"),
    "place-recognition": ("spikelab.tasks.place_recognition", "train and evaluate a place-recognition ensemble"),
    "deploy": ("spikelab.hardware.deploy", "export a trained model to Loihi 2 (Lava), NIR or Brian2 and compare"),
    "sweep": ("spikelab.tasks.sweep", "run a grid of configs x seeds on Ray and summarise"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Parser with every subcommand listed; only ``command``'s arguments are loaded."""
    parser = argparse.ArgumentParser(
        prog="spikelab",
        description="Spiking neural networks: simulate, learn continually, recognise places, deploy.",
    )
    parser.add_argument("--version", action="version", version=f"spikelab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``spikelab`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        parser = build_parser(command if command in COMMANDS else None)
    except ImportError as exc:
        print(f"spikelab: the '{command}' command is not available: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("spikelab: interrupted; results saved so far are kept", file=sys.stderr)
        return 130
    except (SpikelabError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        if args.debug:
            raise
        print(f"spikelab {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
