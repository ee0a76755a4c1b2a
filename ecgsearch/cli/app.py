"""The ``ecgsearch`` command line: the top-level options, the verb families, and how errors end.

User errors print one sentence and exit 2; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, Sequence

from ecgsearch.cli import analysis, data, jobs, latency, search
from ecgsearch.errors import UserError, shown
from ecgsearch.plugins import check_named_modules

# The verb families, in the order ``--help`` lists them; each adds its subcommands.
FAMILIES = (search, data, analysis, latency, jobs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecgsearch", description="AutoML search for ECG neural networks.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-p", "--plugin", action="append", default=[], metavar="MODULE",
                        help="also load this plugin module (repeatable; same as ECGSEARCH_PLUGINS)")
    sub = parser.add_subparsers(dest="command", required=True)
    for family in FAMILIES:
        family.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        if args.plugin:  # explicitly named modules must import; they reach the workers through the environment
            check_named_modules(args.plugin)
            os.environ["ECGSEARCH_PLUGINS"] = ",".join(filter(None, [os.environ.get("ECGSEARCH_PLUGINS", ""),
                                                                     *args.plugin]))
        return func(args)
    except UserError as error:
        if args.debug:
            raise
        print(shown(error), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted; finished trials are in the results table (continue with --resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader stopped early (`ecgsearch plugins | head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exiting flushes into nothing
        return 141  # as a shell reports a command ended by SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
