"""The demo MCP server: list, read, write and delete files inside one sandbox folder.

Run it as ``python -m approver.demo.server --root DIR`` (stdio). Every path is relative to the
root and written in one canonical spelling: ``/`` between folders, no ``.``, ``..`` or empty
parts, no backslashes, and no symbolic links anywhere on the way. A policy can then match paths
as text (``keep/...``) without another spelling reaching the same file.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Final

import mcp.types as types
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from approver import __version__

SERVER_NAME: Final = "approver-demo-files"
"""The name the server announces to clients."""

MAX_READ_BYTES: Final = 1_000_000
"""Files larger than this are not read: the demo is about small text files."""

MAX_WRITE_CHARS: Final = 1_000_000
"""Longest content ``write_file`` accepts."""

INSTRUCTIONS: Final = (
    "Files in a sandbox folder. Paths are relative to the sandbox and use '/' between folders, "
    "like keep/contract.txt."
)

_DESCRIPTIONS: Final = {
    "list_files": (
        "List the files in the sandbox folder, or in one folder inside it, with their sizes in bytes. "
        "Read-only. The folder is a path relative to the sandbox; leave it empty for the whole sandbox."
    ),
    "read_file": "Read a text file from the sandbox and return its content. Read-only.",
    "write_file": (
        "Write text to a file in the sandbox, creating the file (and its folders) or replacing "
        "its whole content if it exists."
    ),
    "delete_file": (
        "Delete one file from the sandbox permanently. Folders are not deleted. "
        "The file does not go to a trash folder."
    ),
}


def _bytes(count: int) -> str:
    return "1 byte" if count == 1 else f"{count} bytes"


class Sandbox:
    """The sandbox root, and the check that turns a tool's path argument into a file inside it."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve(strict=True)

    def resolve(self, path: str, *, allow_root: bool = False) -> Path:
        """The file ``path`` names inside the root; ToolError saying why when it may not be used."""
        if path == "" and allow_root:
            return self.root
        if path == "":
            raise ToolError("the path is empty: give a path relative to the sandbox, like notes.txt")
        if "\0" in path or "\\" in path:
            raise ToolError(f"{path!r}: use '/' between folders; backslashes and NUL are not allowed")
        if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
            raise ToolError(f"{path!r}: absolute paths are not allowed; give a path relative to the sandbox")
        parts = path.split("/")
        if ".." in parts:
            raise ToolError(f"{path!r}: '..' is not allowed; paths must stay inside the sandbox")
        if any(part in ("", ".") for part in parts):
            raise ToolError(f"{path!r}: write the path without '.' or empty parts, like keep/contract.txt")
        target = self.root
        for part in parts:
            target = target / part
            # Links are refused even when they point inside the sandbox: a link to keep/ would
            # let a call reach a protected file under a name the policy does not know.
            if target.is_symlink():
                shown = target.relative_to(self.root).as_posix()
                raise ToolError(
                    f"{path!r}: {shown} is a symbolic link, and this server does not follow links"
                )
        return target

    def relative(self, target: Path) -> str:
        """``target`` as a path relative to the root, with ``/`` between folders."""
        return target.relative_to(self.root).as_posix()

    # -- the tools ------------------------------------------------------------------------------

    def list_files(self, folder: str = "") -> str:
        """Every file under ``folder``, one ``path (N bytes)`` per line, sorted."""
        start = self.resolve(folder, allow_root=True)
        if not start.is_dir():
            raise ToolError(f"{folder!r} is not a folder in the sandbox")
        lines = []
        for directory, subdirs, files in os.walk(start):
            here = Path(directory)
            links = [name for name in subdirs if (here / name).is_symlink()]
            subdirs[:] = [name for name in subdirs if name not in links]
            for name in [*files, *links]:
                item = here / name
                if item.is_symlink():
                    lines.append(f"{self.relative(item)} (symbolic link, not followed)")
                else:
                    lines.append(f"{self.relative(item)} ({_bytes(item.stat().st_size)})")
        if not lines:
            return f"no files in {folder or 'the sandbox'}"
        return "\n".join(sorted(lines))

    def read_file(self, path: str) -> str:
        """The text of one file (invalid UTF-8 shows as U+FFFD)."""
        target = self.resolve(path)
        if target.is_dir():
            raise ToolError(f"{path!r} is a folder; use list_files to see what is in it")
        if not target.exists():
            raise ToolError(f"{path!r} does not exist; use list_files to see the files")
        size = target.stat().st_size
        if size > MAX_READ_BYTES:
            raise ToolError(f"{path!r} has {size} bytes; this demo server reads at most {MAX_READ_BYTES}")
        return target.read_bytes().decode("utf-8", errors="replace")

    def write_file(self, path: str, content: str) -> str:
        """Create or replace one file, creating missing folders."""
        target = self.resolve(path)
        if len(content) > MAX_WRITE_CHARS:
            raise ToolError(
                f"the content has {len(content)} characters; at most {MAX_WRITE_CHARS} are allowed"
            )
        if target.is_dir():
            raise ToolError(f"{path!r} is a folder; give a file name")
        existed = target.exists()
        target.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8")
        target.write_bytes(data)
        return f"{'replaced' if existed else 'created'} {path} ({_bytes(len(data))})"

    def delete_file(self, path: str) -> str:
        """Delete one file (never a folder)."""
        target = self.resolve(path)
        if target.is_dir():
            raise ToolError(f"{path!r} is a folder; this server deletes only files")
        if not target.exists():
            raise ToolError(f"{path!r} does not exist; use list_files to see the files")
        target.unlink()
        return f"deleted {path}"


def _guard(name: str, run: Callable[[], str]) -> str:
    """Run one tool; an OSError becomes a tool error the model can read, without a traceback."""
    try:
        return run()
    except OSError as error:
        raise ToolError(f"{name}: {error.strerror or error}") from None


def _annotations(title: str, *, read_only: bool, destructive: bool = False) -> types.ToolAnnotations:
    if read_only:
        return types.ToolAnnotations(title=title, read_only_hint=True, open_world_hint=False)
    return types.ToolAnnotations(
        title=title,
        read_only_hint=False,
        destructive_hint=destructive,
        idempotent_hint=True,
        open_world_hint=False,
    )


TOOL_ANNOTATIONS: Final = {
    "list_files": _annotations("List files", read_only=True),
    "read_file": _annotations("Read a file", read_only=True),
    # Replacing a file's content destroys the old content, so write_file is honestly destructive.
    "write_file": _annotations("Write a file", read_only=False, destructive=True),
    "delete_file": _annotations("Delete a file", read_only=False, destructive=True),
}
"""The MCP annotations of each tool."""

_Path = Annotated[str, Field(description="A path relative to the sandbox, like keep/contract.txt.")]


def build_server(root: Path) -> MCPServer[Any]:
    """The demo server for the sandbox folder ``root``; FileNotFoundError when it does not exist."""
    sandbox = Sandbox(root)
    server: MCPServer[Any] = MCPServer(
        SERVER_NAME, version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )

    def register(name: str) -> Callable[[Callable[..., str]], Callable[..., str]]:
        return server.tool(
            name=name,
            description=_DESCRIPTIONS[name],
            annotations=TOOL_ANNOTATIONS[name],
            structured_output=False,
        )

    @register("list_files")
    def list_files(
        folder: Annotated[str, Field(description="A folder relative to the sandbox; empty for all.")] = "",
    ) -> str:
        return _guard("list_files", lambda: sandbox.list_files(folder))

    @register("read_file")
    def read_file(path: _Path) -> str:
        return _guard("read_file", lambda: sandbox.read_file(path))

    @register("write_file")
    def write_file(path: _Path, content: Annotated[str, Field(description="The file's new text.")]) -> str:
        return _guard("write_file", lambda: sandbox.write_file(path, content))

    @register("delete_file")
    def delete_file(path: _Path) -> str:
        return _guard("delete_file", lambda: sandbox.delete_file(path))

    return server


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: serve the sandbox over stdio until the client goes away."""
    parser = argparse.ArgumentParser(
        prog="python -m approver.demo.server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--root", type=Path, required=True, help="the sandbox folder (must exist)")
    options = parser.parse_args(argv)
    if not options.root.is_dir():
        parser.error(f"--root: {options.root} is not a folder")
    build_server(options.root).run("stdio")


if __name__ == "__main__":
    main()
