"""The published TUF repository over HTTP, for gateways' python-tuf ngclient.

Files come only from ``config.tuf_dir/metadata`` and ``config.tuf_dir/targets``: a requested path
is refused (404, like a missing file, so probing learns nothing) if any segment is empty, ``.``,
``..``, hidden or holds a backslash, and again if it resolves outside its folder (a symlink).
TUF verifies what it downloads, so serving is only about not leaking other files.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import FileResponse

from cloud.api.deps import Config, require_role
from cloud.api.errors import error_responses
from cloud.api.roles import Role
from cloud.errors import NotFound

router = APIRouter(
    prefix="/tuf",
    tags=["tuf"],
    dependencies=[Depends(require_role(Role.GATEWAY))],
    responses=error_responses(401, 403, 404, 503),
)

_TARGET_EXAMPLE = (
    "models/component_failure/3/9f2c0e5d7a1b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5.model.onnx"
)
_METADATA_RESPONSE = {200: {"content": {"application/json": {}}, "description": "The signed metadata file."}}
_TARGET_RESPONSE = {200: {"content": {"application/octet-stream": {}}, "description": "The target file's bytes."}}


def _inside(folder: FsPath, relative: str) -> FsPath:
    """The file ``relative`` names under ``folder``, or 404."""
    missing = NotFound(f"no such TUF file {relative!r}")
    segments = relative.split("/")
    if any(not s or s.startswith(".") or "\\" in s or "\x00" in s for s in segments):
        raise missing  # before the file system sees it: a NUL byte makes every os call raise ValueError
    try:
        path = (folder / relative).resolve()
        found = path.is_relative_to(folder.resolve()) and path.is_file()
    except OSError:  # a name too long for the file system, say
        found = False
    if not found:
        raise missing
    return path


@router.get("/metadata/{filename}", response_class=FileResponse, responses=_METADATA_RESPONSE)
def tuf_metadata(
    filename: Annotated[str, Path(description="A TUF metadata file.", examples=["timestamp.json", "2.root.json"])],
    config: Config,
) -> FileResponse:
    """TUF role metadata (root, timestamp, snapshot, targets); never cached, as freshness is TUF's point."""
    path = _inside(config.tuf_dir / "metadata", filename)
    return FileResponse(path, media_type="application/json", headers={"Cache-Control": "no-cache"})


@router.get("/targets/{path:path}", response_class=FileResponse, responses=_TARGET_RESPONSE)
def tuf_target(
    path: Annotated[str, Path(description="A TUF target path, hash-prefixed.", examples=[_TARGET_EXAMPLE])],
    config: Config,
) -> FileResponse:
    """A TUF target: an ONNX model, a release file, or the director keys."""
    return FileResponse(_inside(config.tuf_dir / "targets", path), media_type="application/octet-stream")
