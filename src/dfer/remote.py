"""Checkpoints from anywhere: a local file, an http(s) URL, or a Hugging Face Hub file.

    best.pt                                           a local file, used as it is
    https://host/path/best.pt#sha256=HEX              downloaded once into dfer's cache, then verified
    hf://owner/repo/path/best.pt[@revision][#sha256=HEX]   through huggingface_hub and its cache

A download goes to `<cache>/checkpoints/<sha256 or url digest>/<name>` (the cache is
`$DFER_CACHE_DIR`, default `~/.cache/dfer`) through a `.part` file that a broken transfer resumes
with an HTTP range request; only a file whose SHA-256 matches `#sha256=` is renamed into place
(a mismatch removes it and loads nothing). Without `#sha256=` the file is used unchecked, and dfer
says so once per process. The checkpoint is then read as any other: weights only.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

from dfer.errors import CheckpointError
from dfer.files import cache_root, file_digest, text_digest
from dfer.progress import progress_bar

SCHEMES = ("http", "https", "hf")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_RETRIES = 3  # a broken transfer is resumed this many times within one call
_warned: set[str] = set()


def is_remote(ref: str | Path) -> bool:
    return isinstance(ref, str) and "://" in ref


def check_reference(ref: str) -> None:
    """A clear error for a URL dfer cannot fetch (the CLI calls this when it parses arguments)."""
    if not is_remote(ref):
        return
    scheme = ref.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise CheckpointError(f"{ref}: checkpoint URLs must be http(s):// or hf://, not {scheme}://")
    _, digest = _split_digest(ref)
    if scheme == "hf" and len(ref.split("://", 1)[1].split("#")[0].split("@")[0].strip("/").split("/")) < 3:
        raise CheckpointError(f"{ref}: expected hf://owner/repo/path/to/best.pt[@revision]")
    if scheme != "hf" and not urlsplit(ref).hostname:
        raise CheckpointError(f"{ref}: the URL names no host")


def _split_digest(ref: str) -> tuple[str, str | None]:
    """(the URL without its fragment, the expected SHA-256 or None)."""
    url, _, fragment = ref.partition("#")
    if not fragment:
        return url, None
    key, _, value = fragment.partition("=")
    value = value.strip().lower()
    if key != "sha256" or not _SHA.match(value):
        raise CheckpointError(f"{ref}: the fragment must be #sha256=<64 hex digits>, got #{fragment[:80]}")
    return url, value


def resolve_checkpoint(ref: str | Path, *, progress: bool = True) -> Path:
    """A local path for `ref`: the file itself, or the verified download of a URL."""
    if not is_remote(ref):
        return Path(ref)
    check_reference(str(ref))
    url, expected = _split_digest(str(ref))
    if expected is None and url not in _warned:
        _warned.add(url)
        print(f"dfer: warning: {url} has no #sha256=...; the downloaded file is not checked", file=sys.stderr)
    path = _hub_download(url) if url.startswith("hf://") else _http_download(url, expected, progress)
    _verify(path, expected, url)  # again for a cached file: a damaged cache is caught, not loaded
    return path


def _verify(path: Path, expected: str | None, url: str) -> None:
    if expected is None:
        return
    got = file_digest(path)
    if got != expected:
        path.unlink(missing_ok=True)
        raise CheckpointError(f"{url}: SHA-256 mismatch: expected {expected}, got {got}; the file was removed "
                              f"and nothing was loaded")


# -- http(s) ---------------------------------------------------------------------------------
def _target(url: str, expected: str | None) -> Path:
    name = Path(urlsplit(url).path).name or "checkpoint.pt"
    key = expected or f"url-{text_digest(url)[:16]}"
    return cache_root() / "checkpoints" / key / name


def _http_download(url: str, expected: str | None, progress: bool) -> Path:
    import httpx

    path = _target(url, expected)
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create the download folder {path.parent} ({exc.strerror}); "
                              f"set DFER_CACHE_DIR to a writable folder") from None
    part = path.with_name(path.name + ".part")
    for attempt in range(_RETRIES + 1):
        try:
            _fetch(httpx, url, part, progress)
            break
        except httpx.ConnectError as exc:
            raise CheckpointError(f"{url}: cannot reach {urlsplit(url).hostname} ({exc})") from None
        except (httpx.TransportError, _Incomplete) as exc:
            if attempt == _RETRIES:
                raise CheckpointError(f"{url}: the transfer broke {_RETRIES + 1} times ({exc.__class__.__name__}: "
                                      f"{exc}); run again to resume from {part.stat().st_size} bytes") from None
    _verify(part, expected, url)  # only a verified file gets the final name
    os.replace(part, path)
    return path


class _Incomplete(Exception):
    """The server closed the body before Content-Length bytes: resumed from the .part file."""


def _fetch(httpx, url: str, part: Path, progress: bool) -> None:
    have = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with httpx.stream("GET", url, headers=headers, follow_redirects=True, timeout=30.0) as r:
        if r.status_code == 416 and have:  # the .part is already whole
            return
        if r.status_code >= 400:
            raise CheckpointError(f"{url}: HTTP {r.status_code} {r.reason_phrase}")
        if r.status_code != 206:
            have = 0  # the server ignored the range: start over
        length = r.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        bar = progress_bar(total, f"download {Path(urlsplit(url).path).name}", unit="byte", enabled=progress,
                           initial=have)
        got = have
        try:
            with open(part, "ab" if have else "wb") as f:
                for chunk in r.iter_bytes(1 << 20):
                    f.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
        finally:
            bar.close()
    if total is not None and got < total:
        raise _Incomplete(f"{got} of {total} bytes")


# -- Hugging Face Hub ----------------------------------------------------------------------------
def _hub_download(url: str) -> Path:
    """hf://owner/repo/path/best.pt[@revision] through huggingface_hub (its cache, its auth, HF_ENDPOINT)."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise CheckpointError(f'{url}: hf:// needs huggingface_hub: pip install "dfer[hub]"') from None
    spec, _, revision = url[len("hf://"):].partition("@")
    owner, repo, *rest = spec.strip("/").split("/")
    try:
        local = hf_hub_download(f"{owner}/{repo}", "/".join(rest), revision=revision or None,
                                endpoint=os.environ.get("HF_ENDPOINT") or None)
    except Exception as exc:  # HTTP errors (also when wrapped as "not in the local cache"), connection, offline
        status = _http_status(exc)
        what = f"the hub answered HTTP {status}" if status else f"download failed ({exc.__class__.__name__})"
        raise CheckpointError(f"{url}: {what}: {str(exc).splitlines()[0][:160]}") from None
    return Path(local)



def _http_status(exc: BaseException | None) -> int | None:
    """The HTTP status behind a huggingface_hub error, following its chain of causes."""
    while exc is not None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(status, int):
            return status
        exc = exc.__cause__ or exc.__context__
    return None
