"""The web page at /ui: static files from the package (no build step, nothing from a CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

UI_DIRECTORY = Path(__file__).with_name("ui")
# Only the page's own script and styles run; the API's answers are data, never markup.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; "
    "style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(prefix="/ui", tags=["web page"])


@router.get("/config.json")
def config(request: Request) -> dict[str, bool]:
    """What the page needs before its first call: whether it must ask for an API key."""
    return {"keys_required": request.app.state.keys.enabled}


class UiFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def ui_files() -> UiFiles:
    return UiFiles(directory=UI_DIRECTORY, html=True)
