"""The CLI reference page, generated from dfer's own argparse parser (docs/hooks.py calls it when the
site is built), so a flag, its default or its help can never be documented wrong."""

from __future__ import annotations

import argparse

from dfer.cli import build_parser


def _flags(action: argparse.Action) -> str:
    names = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}`"
    if action.nargs == 0:
        return names
    metavar = action.metavar or (action.dest.upper() if action.option_strings else None)
    if action.choices is not None and not action.metavar:
        metavar = "{" + ",".join(str(c) for c in action.choices) + "}"
    return f"{names} {metavar}" if metavar and action.option_strings else names


def _default(action: argparse.Action) -> str:
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS) or action.required:
        return ""
    return f"`{action.default}`" if action.default != "" else '`""`'


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of every sub-command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return []


def command_markdown(name: str, summary: str, parser: argparse.ArgumentParser) -> str:
    """One command: what it does, its usage line and a table of its arguments."""
    usage = parser.format_usage().removeprefix("usage: ").strip()
    formatter = parser._get_formatter()
    out = [f"## {name}", "", _cell(parser.description or summary), "", "```text", usage, "```", "",
           "| argument | default | what it does |", "|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        help_text = formatter._expand_help(action) if action.help else ""
        out.append(f"| {_cell(_flags(action))} | {_cell(_default(action))} | {_cell(help_text)} |")
    return "\n".join(out) + "\n"


def cli_reference_markdown() -> str:
    """Every `dfer` command, in the order `dfer --help` lists them."""
    parser = build_parser()
    parts = ["Generated from the parser of the installed dfer when this site was built: every flag, "
             "default and help text below is the one `dfer <command> --help` prints.", ""]
    parts += [command_markdown(f"dfer {name}", summary, sub) for name, summary, sub in subcommands(parser)]
    return "\n".join(parts)
