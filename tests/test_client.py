"""dfer.client: what it makes of answers that are not dfer's."""

import http.server
import threading
import warnings

import pytest

from dfer.client import Client, ClientError


class _Odd(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path.startswith("/v1/model"):
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.end_headers()
        else:
            body = b"<html>a proxy's page</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def odd():
    """A server that answers as a misconfigured proxy would."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Odd)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_a_redirect_is_a_client_error_naming_its_target(odd):
    with Client(odd, token="t") as c, pytest.raises(ClientError, match="redirects to http://127.0.0.1:1/elsewhere"):
        c.model()


def test_a_page_that_is_not_json_is_a_client_error(odd):
    with Client(odd, token="t") as c, pytest.raises(ClientError, match="not JSON"):
        c.jobs()


def test_the_client_warns_before_sending_a_token_over_plain_http():
    with pytest.warns(UserWarning, match="over plain http"):
        Client("http://dfer.example.org:8000", token="t").close()


def test_the_client_sends_a_token_quietly_to_loopback_or_over_https():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Client("http://127.0.0.1:8000", token="t").close()
        Client("https://dfer.example.org", token="t").close()
