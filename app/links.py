"""Over-long links get a page that says so, instead of the 500 Gradio's URL handling gives.

Gradio rebuilds the request URL with httpx, which refuses URLs over 65,536 characters and turns
the page into "Internal Server Error". Share links hold a prompt of at most 8,000 characters
(``compare.share.MAX_PROMPT_IN_LINK``), well under :data:`MAX_QUERY_CHARS` even fully escaped.
"""

from __future__ import annotations

import html
from typing import Any

MAX_QUERY_CHARS = 32_000

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Link too long</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 3em auto; padding: 0 1em">
<h1>This link is too long to open</h1>
<p>Its query has {length:,} characters; this app opens links of up to {limit:,}. Links made with the
<b>Share link</b> button stay well under that: a shared prompt holds at most 8,000 characters.</p>
<p>Ask whoever sent it for a shorter prompt, or <a href="{home}">open the playground</a> and paste it.</p>
</body></html>"""


class LongLinkGuard:
    """ASGI middleware: a GET whose query string passes ``limit`` gets 414 and :data:`PAGE`."""

    def __init__(self, app: Any, limit: int = MAX_QUERY_CHARS) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        query = scope.get("query_string", b"") if scope.get("type") == "http" else b""
        if len(query) <= self.limit:
            await self.app(scope, receive, send)
            return
        home = html.escape((scope.get("root_path") or "") + "/")
        body = PAGE.format(length=len(query), limit=self.limit, home=home).encode()
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 414, "headers": headers})
        await send({"type": "http.response.body", "body": body})
