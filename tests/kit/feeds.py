"""A feed served on 127.0.0.1 (by pytest-httpserver) for polling and daemon tests.

Give it a document (``body``), or add items and it renders them as RSS on every request; it answers
with an ETag and 304 to a matching If-None-Match. Set ``status`` (and ``headers``) to make it fail;
``requests`` records what arrived. (The reliability tests use their own raw-socket server in
``tests.kit.reliability``, which can trickle bytes and cut connections.)
"""

from __future__ import annotations

import hashlib
from xml.sax.saxutils import escape

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


class FeedServer:
    def __init__(self, httpserver: HTTPServer, path: str = "/feed", body: bytes = b"", *, etags: bool = True) -> None:
        self._body = body
        self.items: list[tuple[str, str]] = []  # (guid, title), rendered by render() when any are added
        self.status = 200
        self.headers: dict[str, str] = {}
        self.etags = etags
        self.requests: list[Request] = []
        httpserver.expect_request(path).respond_with_handler(self._handle)
        self.url = httpserver.url_for(path)

    @property
    def body(self) -> bytes:
        return self.render().encode() if self.items else self._body

    @body.setter
    def body(self, value: bytes) -> None:
        self._body = value

    def add(self, guid: str, title: str) -> None:
        """One more item (newest last); the document changes with it."""
        self.items.append((guid, title))

    def render(self) -> str:
        entries = "".join(
            f'<item><guid isPermaLink="false">{escape(guid)}</guid><title>{escape(title)}</title>'
            f"<link>https://news.feedwatch.invalid/{escape(guid)}</link>"
            f"<description>{escape(title)}.</description>"
            "<pubDate>Mon, 28 Sep 2020 06:10:00 GMT</pubDate></item>"
            for guid, title in self.items
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>wire</title>'
            f"<link>https://news.feedwatch.invalid/</link><description>test wire</description>{entries}"
            "</channel></rss>"
        )

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'

    def _handle(self, request: Request) -> Response:
        self.requests.append(request)
        if self.status != 200:
            return Response(f"status {self.status}", status=self.status, headers=self.headers)
        headers = {"Content-Type": "application/rss+xml", **self.headers}
        body = self.body
        if self.etags:
            headers["ETag"] = self.etag
            if request.headers.get("If-None-Match") == self.etag:
                return Response(status=304, headers=headers)
        return Response(body, headers=headers)
