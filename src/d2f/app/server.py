"""The app's web server: Python's own ``http.server`` on 127.0.0.1, one static page and a small JSON API.

Routes (every error is JSON ``{"error": "<one line>"}`` with status 4xx, and the server keeps going):

- ``GET /``, ``GET /static/<file>``: the page.
- ``GET /api/config``: the render options (from :func:`d2f.options.option_specs`) and which the model takes.
- ``POST /api/photo?name=<file name>`` (the file's bytes as the body), ``POST /api/sample``: load a photo;
  answers ``{"id", "name", "width", "height"}``.
- ``GET /api/photo/<id>/before``: the photo at preview size, as a JPEG.
- ``POST /api/preview`` ``{"photo", "options", "view": "result"|"defocus"}``: a preview, as a JPEG.
- ``POST /api/render`` ``{"photo", "options"}``: start a full-resolution render; answers ``{"job"}``.
- ``GET /api/job/<id>``: its ``{"progress", "stage", "done", "error", "filename"}``;
  ``GET /api/job/<id>/download``: the file, once done.

Nothing is written to disk: photos, renders and downloads live in memory.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from PIL import Image

from d2f.app.studio import Download, Studio
from d2f.errors import D2FError
from d2f.io import colorize_defocus, encode_image

#: The sample photo inside the package.
SAMPLE_PHOTO = Path(__file__).resolve().parents[1] / "samples" / "coffee.jpg"
#: Files the page is made of, with their media types.
_STATIC = {"index.html": "text/html", "app.js": "text/javascript", "app.css": "text/css"}
#: The largest upload read (a 50-megapixel 16-bit TIFF is about 300 MB).
MAX_UPLOAD_BYTES = 512 * 2**20
_PREVIEW_QUALITY = 92
_JOBS_KEPT = 2


@dataclass
class Job:
    """A full-resolution render running in its own thread."""

    progress: float = 0.0
    stage: str = "waiting for the previous render"
    download: Download | None = None
    error: str | None = None

    def state(self) -> dict[str, Any]:
        done = self.download is not None or self.error is not None
        filename = self.download.filename if self.download is not None else None
        return {"progress": self.progress, "stage": self.stage, "done": done, "error": self.error,
                "filename": filename}


class AppServer(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 serving :class:`Studio`'s photos and renders."""

    daemon_threads = True

    def __init__(self, studio: Studio, port: int = 0):
        self.studio = studio
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.jobs_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start_job(self, photo_id: str, options_values: object) -> str:
        options = self.studio.options(options_values)
        self.studio.photo(photo_id)  # fail now, not in the thread, for a photo no longer in memory
        job_id, job = secrets.token_hex(8), Job()
        with self.jobs_lock:
            self.jobs[job_id] = job
            while len(self.jobs) > _JOBS_KEPT:
                self.jobs.popitem(last=False)

        def report(fraction: float, stage: str) -> None:
            job.progress, job.stage = fraction, stage

        def work() -> None:
            try:
                job.download = self.studio.render_full(photo_id, options, report)
            except D2FError as error:
                job.error = str(error)
            except Exception as error:
                traceback.print_exc(file=sys.stderr)
                job.error = f"the render failed: {type(error).__name__}: {error}"

        threading.Thread(target=work, name=f"d2f-render-{job_id}", daemon=True).start()
        return job_id

    def job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise _NotFoundError(f"no render {job_id!r} (only the last {_JOBS_KEPT} are kept)")
        return job


class _NotFoundError(Exception):
    pass


class _BadRequestError(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    server: AppServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the terminal shows the address and errors only."""

    def do_GET(self) -> None:
        self._answer(self._get)

    def do_POST(self) -> None:
        self._answer(self._post)

    # ---------------------------------------------------------------------------------------- routes

    def _get(self, path: list[str], query: dict[str, list[str]]) -> None:
        studio = self.server.studio
        if path in ([], ["index.html"]):
            self._send_static("index.html")
        elif len(path) == 2 and path[0] == "static" and path[1] in _STATIC:
            self._send_static(path[1])
        elif path == ["api", "config"]:
            self._send_json(studio.describe())
        elif len(path) == 4 and path[:2] == ["api", "photo"] and path[3] == "before":
            photo = studio.photo(path[2])
            self._send(encode_image(photo.preview, "JPEG", quality=_PREVIEW_QUALITY), "image/jpeg")
        elif len(path) == 3 and path[:2] == ["api", "job"]:
            self._send_json(self.server.job(path[2]).state())
        elif len(path) == 4 and path[:2] == ["api", "job"] and path[3] == "download":
            download = self.server.job(path[2]).download
            if download is None:
                raise _BadRequestError("the render has not finished")
            disposition = f'attachment; filename="{download.filename}"'
            self._send(download.data, download.media_type, {"Content-Disposition": disposition})
        else:
            raise _NotFoundError(f"no such page: /{'/'.join(path)}")

    def _post(self, path: list[str], query: dict[str, list[str]]) -> None:
        studio = self.server.studio
        if path == ["api", "photo"]:
            name = query.get("name", ["upload"])[0]
            self._send_photo(studio.load(self._body(), name))
        elif path == ["api", "sample"]:
            self._body()
            if not SAMPLE_PHOTO.is_file():
                raise _NotFoundError("the sample photo is missing from this installation of d2f")
            self._send_photo(studio.load(SAMPLE_PHOTO.read_bytes(), SAMPLE_PHOTO.name))
        elif path == ["api", "preview"]:
            request = self._json()
            started = time.perf_counter()
            preview = studio.preview(str(request.get("photo")), studio.options(request.get("options", {})))
            if request.get("view") == "defocus":
                image = Image.fromarray(colorize_defocus(preview.defocus), mode="RGB")
                data = encode_image(image, "JPEG", quality=_PREVIEW_QUALITY)
            else:
                data = encode_image(preview.bokeh, "JPEG", quality=_PREVIEW_QUALITY)
            seconds = f"{time.perf_counter() - started:.3f}"
            self._send(data, "image/jpeg", {"X-Render-Seconds": seconds})
        elif path == ["api", "render"]:
            request = self._json()
            job = self.server.start_job(str(request.get("photo")), request.get("options", {}))
            self._send_json({"job": job})
        else:
            raise _NotFoundError(f"no such page: /{'/'.join(path)}")

    # ------------------------------------------------------------------------------------- plumbing

    def _answer(self, route) -> None:
        try:
            self._check_host()
            parts = urlsplit(self.path)
            path = [unquote(part) for part in parts.path.split("/") if part]
            route(path, parse_qs(parts.query))
        except D2FError as error:
            self._send_error(HTTPStatus.BAD_REQUEST, str(error))
        except _BadRequestError as error:
            self._send_error(HTTPStatus.BAD_REQUEST, str(error))
        except _NotFoundError as error:
            self._send_error(HTTPStatus.NOT_FOUND, str(error))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            message = f"internal error: {type(error).__name__}: {error}"
            self._send_error(HTTPStatus.INTERNAL_SERVER_ERROR, message)

    def _check_host(self) -> None:
        """Only requests addressed to this machine (a web page elsewhere cannot rebind a name to it)."""
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        if host not in ("127.0.0.1", "localhost"):
            self.close_connection = True
            raise _BadRequestError(f"requests must be addressed to 127.0.0.1 or localhost, not {host!r}")

    def _body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _BadRequestError("Content-Length: not a number") from None
        if length > MAX_UPLOAD_BYTES:
            self.close_connection = True  # the body stays unread
            raise _BadRequestError(
                f"the file is {length / 2**20:.0f} MB, larger than the app reads "
                f"({MAX_UPLOAD_BYTES / 2**20:.0f} MB)"
            )
        return self.rfile.read(length) if length > 0 else b""

    def _json(self) -> dict[str, Any]:
        try:
            request = json.loads(self._body() or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise _BadRequestError(f"the request is not valid JSON ({error})") from None
        if not isinstance(request, dict):
            raise _BadRequestError("the request must be a JSON object")
        return request

    def _send_photo(self, photo) -> None:
        width, height = photo.size
        self._send_json({"id": photo.id, "name": photo.name, "width": width, "height": height})

    def _send_static(self, name: str) -> None:
        data = resources.files("d2f.app").joinpath("static", name).read_bytes()
        self._send(data, f"{_STATIC[name]}; charset=utf-8")

    def _send_json(self, value: object, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(json.dumps(value).encode(), "application/json", status=status)

    def _send_error(self, status: HTTPStatus, message: str) -> None:
        self._send_json({"error": message.splitlines()[0] if message else status.phrase}, status)

    def _send(
        self,
        data: bytes,
        media_type: str,
        headers: dict[str, str] | None = None,
        status: HTTPStatus = HTTPStatus.OK,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
