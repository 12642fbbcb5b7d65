"""``d2f app``: a local web app to set the focus by clicking and the render options by sliders.

:class:`Studio` does the work (photos in memory, network outputs reused, previews, full renders);
:class:`AppServer` serves it and the page in ``static/`` on 127.0.0.1. See docs/app.md.
"""

from d2f.app.server import AppServer
from d2f.app.studio import Download, Photo, Preview, Studio

__all__ = ["AppServer", "Download", "Photo", "Preview", "Studio"]
