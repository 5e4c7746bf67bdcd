"""``/ui/jobs/{id}``: the trace viewer page, and ``/ui/assets/...``: its scripts.

The page is a static shell (the same bytes for every id: no job data, no tenant data); everything it shows comes
from ``GET /v1/jobs/{id}`` and ``/graph`` with the caller's Bearer key, so it is exactly as protected as the API
(docs/audit.md says how a browser gives the key). The third-party scripts are served from the
installed Python packages that ship them (vis-network in ``pyvis``, plotly.js in ``plotly``), never copied into
this repository; a missing package is a 404 naming it.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse, HTMLResponse

from api.errors import ApiError

router = APIRouter(prefix="/ui", include_in_schema=False)

# asset name -> (package, path inside it, media type)
ASSETS: dict[str, tuple[str, str, str]] = {
    "vis-network.min.js": ("pyvis", "lib/vis-9.1.2/vis-network.min.js", "text/javascript"),
    "plotly.min.js": ("plotly", "package_data/plotly.min.js", "text/javascript"),
    "viewer.js": ("api", "ui/viewer.js", "text/javascript"),
    "viewer.css": ("api", "ui/viewer.css", "text/css"),
}
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "script-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def viewer_page(
    job_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
) -> HTMLResponse:
    page = resources.files("api").joinpath("ui/viewer.html").read_text(encoding="utf-8")
    return HTMLResponse(page, headers=_PAGE_HEADERS)


@router.get("/reviews", response_class=HTMLResponse)
def reviewer_page() -> HTMLResponse:
    """The reviewer's page (``ecoalign.reviews``): a static shell whose script calls ``/v1/reviews`` with the key
    the reviewer types in."""
    page = resources.files("ecoalign.reviews").joinpath("page.html").read_text(encoding="utf-8")
    return HTMLResponse(page, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})


@router.get("/assets/{name}")
def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise ApiError(404, "not_found", f"no asset {name}")
    package, inner, media_type = ASSETS[name]
    try:
        path = resources.files(package).joinpath(inner)
    except ModuleNotFoundError:
        raise ApiError(404, "not_found", f"{name} comes from the Python package {package!r}, not installed") from None
    if not path.is_file():
        raise ApiError(404, "not_found", f"{name} is missing from the installed package {package!r}")
    return FileResponse(str(path), media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})
