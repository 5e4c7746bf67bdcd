"""``/v1/files``: upload a JSONL batch input, read a file's object and its content (OpenAI's shape, per tenant).

Files live in the ``files`` table (bytes in the row). Uploads are capped at ``ECOALIGN_MAX_FILE_BYTES`` (413,
checked while reading, never trusting a declared size); ``purpose`` must be ``batch``. The lines themselves are
checked when a batch runs: a bad line becomes that line's error, it does not refuse the file. A file of another
tenant is answered like a missing one (404).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.auth import CurrentPrincipal
from api.context import AppContext, get_ctx
from api.errors import ApiError, FieldError
from api.routes.jobs import _401, _422, _503
from api.schemas import ErrorOut
from ecoalign.batches.files import file_bytes, owned_file, save_upload
from ecoalign.store.batch_models import StoredFile
from ecoalign.store.db import run_in_transaction

router = APIRouter(prefix="/v1/files", tags=["files"])
Ctx = Annotated[AppContext, Depends(get_ctx)]
FileId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="the file's id")]
_404 = {404: {"model": ErrorOut, "description": "no such file for this tenant"}}
_CHUNK = 1 << 20
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")


class FileOut(BaseModel):
    """OpenAI's file object."""

    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int = Field(description="Unix seconds")
    filename: str
    purpose: str = Field(description="batch (uploads), batch_output (a batch's output and error files)")
    status: Literal["uploaded", "processed", "error"] = "processed"
    expires_at: int | None = None
    status_details: str | None = None


def file_view(f: StoredFile) -> dict[str, Any]:
    return {
        "id": f.id,
        "object": "file",
        "bytes": f.bytes,
        "created_at": int(f.created_at.timestamp()),
        "filename": f.filename,
        "purpose": "batch_output" if f.purpose in ("batch_output", "batch_error") else f.purpose,
        "status": "processed",
        "expires_at": int(f.expires_at.timestamp()) if f.expires_at else None,
        "status_details": None,
    }


def _filename(raw: str | None) -> str:
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("", name).strip()
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        name = name.encode("utf-8", "replace").decode("utf-8")
    return (name or "upload.jsonl")[:512]


@router.post(
    "",
    response_model=FileOut,
    summary="Upload a file (JSONL, purpose=batch) for the Batch API",
    operation_id="uploadFile",
    responses={
        200: {
            "description": "the stored file",
            "links": {  # for clients and for Schemathesis' stateful run: read the file, start a batch of it
                "GetFile": {"operationId": "getFile", "parameters": {"file_id": "$response.body#/id"}},
                "GetFileContent": {"operationId": "getFileContent", "parameters": {"file_id": "$response.body#/id"}},
                "CreateBatch": {"operationId": "createBatch", "requestBody": {"input_file_id": "$response.body#/id"}},
            },
        },
        **_401,
        413: {"model": ErrorOut, "description": "the file is over ECOALIGN_MAX_FILE_BYTES"},
        **_422,
        **_503,
    },
)
def upload_file(
    principal: CurrentPrincipal,
    ctx: Ctx,
    file: Annotated[UploadFile, File(description="the JSONL file: one request per line")],
    purpose: Annotated[Literal["batch"], Form(description="only batch")],
) -> dict[str, Any]:
    cap = ctx.settings.max_file_bytes
    data = bytearray()
    while chunk := file.file.read(_CHUNK):
        data.extend(chunk)
        if len(data) > cap:
            raise ApiError(413, "payload_too_large", f"the file is over the limit of {cap} bytes", loc=["body", "file"])
    if not data.strip():
        raise FieldError(["body", "file"], "the file is empty")
    filename = _filename(file.filename)
    return run_in_transaction(
        ctx.sessions,
        lambda s: file_view(save_upload(s, principal.tenant_id, purpose, filename, bytes(data))),
    )


@router.get(
    "/{file_id}",
    response_model=FileOut,
    summary="Get a file's object",
    operation_id="getFile",
    responses={**_401, **_404, **_422, **_503},
)
def get_file(file_id: FileId, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    return run_in_transaction(ctx.sessions, lambda s: file_view(owned_file(s, file_id, principal.tenant_id)))


@router.get(
    "/{file_id}/content",
    response_class=Response,
    summary="Get a file's content (a batch's output or error file, or an upload)",
    operation_id="getFileContent",
    responses={
        200: {"description": "the file's bytes", "content": {"application/jsonl": {"schema": {"type": "string"}}}},
        **_401,
        **_404,
        **_422,
        **_503,
    },
)
def get_file_content(file_id: FileId, principal: CurrentPrincipal, ctx: Ctx) -> Response:
    found = run_in_transaction(ctx.sessions, lambda s: owned_file(s, file_id, principal.tenant_id))
    # A download, never a page: an uploaded file may hold anything, and a browser must not sniff it into HTML.
    return Response(content=file_bytes(found), media_type="application/jsonl", headers={
        "X-Content-Type-Options": "nosniff", "Content-Disposition": f'attachment; filename="{found.id}.jsonl"'})
