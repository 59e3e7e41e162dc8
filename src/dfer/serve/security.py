"""What keeps `dfer serve` safe by default, in one place.

- Host check (DNS rebinding): a request whose Host header is not a loopback name, the server's own
  name or address, or a name given with --allowed-host is refused (400).
- Cross-site writes: a POST or DELETE whose Origin is not the server's own, or that a browser marks
  `Sec-Fetch-Site: cross-site` / `same-site`, is refused (403): a web page the user visits cannot
  submit or delete jobs (a multipart POST needs no CORS preflight). Clients without those headers
  (curl, the Python client) are not browsers and pass.
- Token: with one, every route but the page, /healthz and signed artifact links needs
  `Authorization: Bearer <token>` (compared in constant time); 401s carry WWW-Authenticate. A token
  is accepted nowhere in a URL: the page gets artifact links signed with HMAC-SHA256 over the job
  id, the artifact name and an expiry (a key made at start-up, so links die with the process).
- Signed links are checked here and nowhere else: a GET/HEAD that carries `sig` or `expires` at all
  must be of an artifact, with a valid, unexpired signature for that job and artifact
  (refused otherwise, token or not: 401 on a server with a token, 403 without); an empty or missing
  signature is never a pass. Other methods ignore a signature: they need the token.
- Response headers: a Content-Security-Policy that allows only this origin and the page's own
  inline script and style by their SHA-256, nosniff, no framing, no referrer.
- Errors: JSON, 500s included (logged with a request id, which the answer gives).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import JSONResponse

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
PUBLIC_PATHS = {"/", "/healthz", "/favicon.ico"}
LINK_TTL_S = 1800  # signed artifact links live this long
_ARTIFACT = re.compile(r"^/v1/jobs/(?P<job>[0-9a-fA-F-]{36})/(?P<name>[A-Za-z0-9_.-]+)$")


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def own_host_names(bind_host: str, extra: Iterable[str] = ()) -> set[str]:
    """The names a request to this server may carry in its Host header."""
    names = set(LOOPBACK_NAMES) | {h.lower() for h in extra}
    if bind_host not in ("0.0.0.0", "::", ""):
        names.add(bind_host.lower().strip("[]"))
    else:  # every interface: this machine's own names and addresses
        hostname = socket.gethostname()
        names |= {hostname.lower(), socket.getfqdn().lower()}
        try:
            names |= set(socket.gethostbyname_ex(hostname)[2])
        except OSError:
            pass
    return names


def host_of(header: str) -> str:
    """'example.org:8000' -> 'example.org'; '[::1]:8000' -> '::1'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


@dataclass
class Policy:
    token: str | None
    allowed_hosts: set[str]
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    csp: str = "default-src 'self'"

    # -- signed links ------------------------------------------------------------------------
    def _mac(self, job_id: str, name: str, expires: int) -> str:
        msg = f"{job_id}/{name}/{expires}".encode()
        return base64.urlsafe_b64encode(hmac.new(self.key, msg, hashlib.sha256).digest()).decode().rstrip("=")

    def signed_url(self, job_id: str, name: str, ttl: int = LINK_TTL_S) -> str:
        expires = int(time.time()) + ttl
        return f"/v1/jobs/{job_id}/{name}?expires={expires}&sig={self._mac(job_id, name, expires)}"

    def link_valid(self, job_id: str, name: str, expires: str, sig: str) -> bool:
        try:
            when = int(expires)
        except ValueError:
            return False
        return bool(sig) and when >= time.time() and hmac.compare_digest(self._mac(job_id, name, when).encode(),
                                                                          sig.encode())

    def link_refusal(self, request: Request) -> str | None:
        """Why a request carrying a link signature is refused (None: it is a valid signed link)."""
        match = _ARTIFACT.match(request.url.path)
        query = request.query_params
        if match is None:
            return "a signed link is only for GET of a job's artifact"
        if len(query.getlist("sig")) != 1 or len(query.getlist("expires")) != 1:
            return "a signed link carries exactly one sig and one expires"
        if not self.link_valid(match["job"], match["name"], query["expires"], query["sig"]):
            return ("this link has expired or was made for another artifact; get a fresh one from "
                    "GET /v1/jobs/{id} (artifact_urls)")
        return None

    # -- checks ------------------------------------------------------------------------------
    def bearer_ok(self, request: Request) -> bool:
        if not self.token:
            return True
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else ""
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    def refusal(self, request: Request) -> tuple[int, str] | None:
        """(status, message) when the request must be refused before it reaches a route."""
        host = host_of(request.headers.get("host", ""))
        if host not in self.allowed_hosts:
            return 400, (f"Host {host!r} is not a name of this server; add it with --allowed-host if it is "
                         "(refused to protect against DNS rebinding)")
        if request.method in ("POST", "DELETE", "PUT", "PATCH"):
            origin = request.headers.get("origin")
            site = request.headers.get("sec-fetch-site")
            if origin and (urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower()):
                return 403, f"cross-site request refused (Origin {origin})"
            if site and site not in ("same-origin", "none"):
                return 403, f"cross-site request refused (Sec-Fetch-Site: {site})"
        if "token" in request.query_params:
            return 400, "tokens are not accepted in URLs; send 'Authorization: Bearer <token>'"
        path = request.url.path
        # A signature is a credential only for reading an artifact: any other method must carry the token
        # (and a TRACE or PUT then gets its 405 from the router, as for any path).
        signed_link = request.method in ("GET", "HEAD") and ("sig" in request.query_params
                                                             or "expires" in request.query_params)
        if signed_link:  # the one place a signature is checked: valid for this job and artifact, or refused
            why = self.link_refusal(request)
            if why is not None:  # a bad credential where there are credentials (401), else a bad link (403)
                return (401 if self.token else 403), why
        if path not in PUBLIC_PATHS and not signed_link and not self.bearer_ok(request):
            return 401, "missing or wrong token: send 'Authorization: Bearer <token>'"
        return None


HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def page_csp(html: str) -> str:
    """CSP for the page: this origin only, plus its inline <script> and <style> by SHA-256."""
    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.S)
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks)

    return (f"default-src 'self'; script-src 'self' {hashes('script')}; style-src 'self' {hashes('style')}; "
            "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def install(app, policy: Policy, log: Callable[[str], None],
            observe: Callable[[str, str, int, float, str], None] | None = None) -> None:
    """The checks above on every request, the headers on every answer, JSON for every unexpected error;
    `observe(method, route, status, seconds, request id)` is told about every answer."""

    @app.middleware("http")
    async def guard(request: Request, call_next):
        rid = uuid.uuid4().hex[:12]
        t0 = time.perf_counter()
        refused = policy.refusal(request)
        if refused is not None:
            status, message = refused
            response = JSONResponse({"error": message}, status_code=status)
            if status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="dfer"'
        else:
            try:
                response = await call_next(request)
            except Exception:  # noqa: BLE001 - anything a route did not handle: logged, answered in JSON
                log(f"request {rid} {request.method} {request.url.path} failed:\n{traceback.format_exc()}")
                response = JSONResponse({"error": f"internal error (request id {rid}); the server log has the details"},
                                        status_code=500)
        for key, value in HEADERS.items():
            response.headers.setdefault(key, value)
        response.headers.setdefault("Content-Security-Policy", policy.csp)
        response.headers["X-Request-ID"] = rid
        if observe is not None:
            route = getattr(request.scope.get("route"), "path", "unmatched")
            observe(request.method, route, response.status_code, time.perf_counter() - t0, rid)
        return response
