"""MkDocs hook: the CLI reference page is filled from dfer's own parser at build time."""

MARKER = "<!-- cli-reference -->"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    from dfer.cli.reference import cli_reference_markdown

    return markdown.replace(MARKER, cli_reference_markdown())
