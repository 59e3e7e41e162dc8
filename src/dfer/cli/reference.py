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


def synopsis(name: str, parser: argparse.ArgumentParser) -> str:
    """`dfer predict INPUTS --checkpoint CHECKPOINT [options]`: what must be given, on one short line."""
    words = [name]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if not action.option_strings:
            words.append(action.metavar or action.dest.upper())
        elif action.required:
            words.append(_flags(action).replace("`", ""))
    return " ".join(words) + " [options]"


def command_markdown(name: str, summary: str, parser: argparse.ArgumentParser) -> str:
    """One command: what it does, what must be given, then each argument as a list item (a line for its
    name and default, its help under it: readable at any width, unlike a table of three columns)."""
    formatter = parser._get_formatter()
    out = [f"## {name}", "", _cell(parser.description or summary), "", f"`{synopsis(name, parser)}`", ""]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        help_text = _cell(formatter._expand_help(action)) if action.help else ""
        default = _default(action)
        head = f"**{_flags(action)}**" + (f" (default {default})" if default and "default" not in help_text else "")
        out.append(f"- {head}" + (f"<br>{help_text}" if help_text else ""))
    return "\n".join(out) + "\n"


def cli_reference_markdown() -> str:
    """Every `dfer` command, in the order `dfer --help` lists them."""
    parser = build_parser()
    parts = ["Generated from the parser of the installed dfer when this site was built: every flag, "
             "default and help text below is the one `dfer <command> --help` prints.", ""]
    parts += [command_markdown(f"dfer {name}", summary, sub) for name, summary, sub in subcommands(parser)]
    return "\n".join(parts)
