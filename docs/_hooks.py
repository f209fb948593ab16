"""mkdocs hook: links written for GitHub (../README.md, ../examples/...) made to work on the site."""

from __future__ import annotations

import re
from pathlib import Path

# README.md and CHANGELOG.md are pages of the site too (included by project.md, changelog.md).
_PAGES = {"README.md": "project.md", "CHANGELOG.md": "changelog.md"}
_LINK = re.compile(r"\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")


def _rewrite(markdown: str, prefix: str) -> str:
    """Point links at repository files (``prefix`` + path) to pages, or drop the link."""

    def fix(match: re.Match[str]) -> str:
        text, target = match.group("text"), match.group("target")
        if not target.startswith(prefix) or "://" in target:
            return match.group(0)
        path, _, anchor = target[len(prefix) :].partition("#")
        if path in _PAGES:
            return f"[{text}]({_PAGES[path]}{'#' + anchor if anchor else ''})"
        if path.startswith("docs/"):
            return f"[{text}]({path[len('docs/'):]}{'#' + anchor if anchor else ''})"
        return text  # a source file of the repository: not a page of the site

    return _LINK.sub(fix, markdown)


def on_page_markdown(markdown: str, page, config, **kwargs) -> str:
    for source, site_page in _PAGES.items():
        if page.file.src_uri == site_page:
            # The page is the repository's file itself, whose links start at the root.
            root = Path(config["config_file_path"]).parent
            return _rewrite((root / source).read_text(encoding="utf-8"), "")
    return _rewrite(markdown, "../")
