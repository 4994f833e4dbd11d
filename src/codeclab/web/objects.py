"""Serving the local store's signed links: ``GET|HEAD /objects/{key}?expires=&signature=``.

The dashboard mounts :func:`objects_router`; the store's ``public_base_url`` must then point
at where the router is mounted (``http://host:port`` with no prefix, or with the prefix).
The answer is a ``FileResponse``, which serves ``Range`` requests (206, as ``<video>``
seeking needs).  Refusals are short plain text: 400 for a key the store would refuse, 403
for a malformed, altered or expired link, 404 for a well-signed link to a missing object.
The signature is checked before the object is looked up, so an unsigned request cannot learn
which keys exist.
"""

from __future__ import annotations

import time
from pathlib import PurePosixPath

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from starlette.responses import FileResponse, Response

from codeclab.storage.objects import InvalidKey, LocalStore, ObjectNotFound, check_key
from codeclab.storage.signing import LinkRefused, verify

# Objects are untrusted bytes (a codec's source, say): never let a browser sniff them into
# something else, nor run script in one opened as a page.
_SAFETY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox",
}


def objects_router(store: LocalStore, secret: bytes) -> APIRouter:
    """Routes serving `store`'s objects to holders of links signed with `secret`."""
    router = APIRouter()

    @router.api_route("/objects/{key:path}", methods=["GET", "HEAD"], response_model=None)
    def get_object(key: str, expires: str = "", signature: str = "") -> Response:
        try:
            check_key(key)
        except InvalidKey as exc:
            return _refuse(400, f"bad object key: {exc.rule}")
        try:
            verify(key, expires, signature, secret, now=time.time())
        except LinkRefused as exc:
            return _refuse(403, exc.reason)
        stored = store.stat(key)
        if stored is None:
            return _refuse(404, "no such object")
        try:
            path = store.local_path(key)
        except ObjectNotFound:  # deleted since the stat
            return _refuse(404, "no such object")
        return FileResponse(
            path,
            media_type=stored.content_type,
            filename=PurePosixPath(key).name,
            content_disposition_type="inline",
            headers={"Cache-Control": "private", **_SAFETY_HEADERS},
        )

    return router


def _refuse(status: int, reason: str) -> Response:
    return PlainTextResponse(reason + "\n", status_code=status, headers=_SAFETY_HEADERS)
