"""A polite HTTP client for the sequence sources: timeouts, retries with exponential backoff and
jitter on 429/5xx (honouring ``Retry-After``), a per-source rate limit, an on-disk response cache
keyed by request, and a User-Agent naming genepheno and the user's contact e-mail.
"""

import email.utils
import hashlib
import json
import os
import random
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urljoin

import requests

from genepheno import __version__
from genepheno.log import logger

RETRY_STATUS = {429, 500, 502, 503, 504}
CACHEABLE_STATUS = {200, 400, 404}  # definitive answers; 400/404 are how services say "no such ID"
CACHE_FORMAT = 1


class SourceError(Exception):
    """A source could not answer (network, server error, malformed reply, offline cache miss)."""


def default_cache_dir():
    """$XDG_CACHE_HOME/genepheno/fetch, ~/.cache/genepheno/fetch, or %LOCALAPPDATA% on Windows."""
    base = os.environ.get("XDG_CACHE_HOME") or (os.environ.get("LOCALAPPDATA") if os.name == "nt" else None)
    return Path(base or Path.home() / ".cache") / "genepheno" / "fetch"


def user_agent(email=None):
    ua = f"genepheno/{__version__} (python-requests/{requests.__version__}"
    return ua + (f"; mailto:{email})" if email else ")")


@dataclass
class HttpSettings:
    """Network behaviour shared by all sources. ``backoff`` is the first retry delay in seconds
    (doubled each retry, with jitter); ``max_wait`` caps any single wait, Retry-After included."""

    timeout: float = 30.0
    retries: int = 4
    backoff: float = 1.0
    max_wait: float = 60.0
    cache_dir: Path | None = None  # None: no cache
    offline: bool = False
    refresh: bool = False
    email: str | None = None


@dataclass
class Response:
    status: int
    headers: dict  # lower-case names
    body: bytes
    url: str
    from_cache: bool = False

    def text(self):
        return self.body.decode("utf-8")

    def link_next(self):
        """The URL of a ``Link: <...>; rel="next"`` header (UniProt cursor pagination), or None."""
        for part in self.headers.get("link", "").split(","):
            if 'rel="next"' in part and "<" in part:
                return part[part.index("<") + 1:part.index(">")]
        return None


class RateLimiter:
    """At most ``rate`` request starts per second (a minimum interval between starts)."""

    def __init__(self, rate):
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, sleep=time.sleep):
        with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            sleep(delay)


class ResponseCache:
    """Responses on disk, one ``<key>.json`` (status, headers, URL) + ``<key>.body`` per request."""

    def __init__(self, root):
        self.root = Path(root)

    def _paths(self, key):
        d = self.root / key[:2]
        return d / f"{key}.json", d / f"{key}.body"

    def get(self, key):
        meta_path, body_path = self._paths(key)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            body = body_path.read_bytes()
        except (OSError, ValueError):
            return None
        if meta.get("format") != CACHE_FORMAT or meta.get("sha256") != hashlib.sha256(body).hexdigest():
            return None  # stale format or a torn write: treat as a miss
        return Response(meta["status"], meta["headers"], body, meta["url"], from_cache=True)

    def put(self, key, resp):
        meta_path, body_path = self._paths(key)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": CACHE_FORMAT, "status": resp.status, "url": resp.url, "headers": resp.headers,
                "sha256": hashlib.sha256(resp.body).hexdigest(), "stored": time.time()}
        for path, data in ((body_path, resp.body), (meta_path, json.dumps(meta).encode())):
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)


def request_key(method, url, params=None, data=None, json_body=None):
    """Cache key of a request: method, URL with sorted query parameters, and body."""
    query = urlencode(sorted((params or {}).items()), doseq=True)
    body = json.dumps(json_body, sort_keys=True) if json_body is not None else (
        urlencode(sorted(data.items()), doseq=True) if isinstance(data, dict) else (data or ""))
    raw = json.dumps([CACHE_FORMAT, method.upper(), url, query, body])
    return hashlib.sha256(raw.encode()).hexdigest()


def _retry_after(value):
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class HttpClient:
    """One per source. ``get``/``post`` return a Response whose status is 2xx or a definitive 4xx;
    transient failures are retried and finally raised as SourceError. ``parse`` (if given) runs on
    the body inside the retry loop, so a malformed reply is retried and never cached."""

    source: str
    base_url: str
    settings: HttpSettings = field(default_factory=HttpSettings)
    rate: float = 10.0  # requests per second
    headers: dict = field(default_factory=dict)
    sleep: object = time.sleep  # injectable for tests
    secret_params: tuple = ()  # left out of cache keys and of the URLs stored in the cache
    requests_made: int = 0  # network requests, retries included
    cache_hits: int = 0

    def __post_init__(self):
        self.base_url = self.base_url.rstrip("/") + "/"
        self._session = requests.Session()
        self._session.headers["User-Agent"] = user_agent(self.settings.email)
        self._session.headers.update(self.headers)
        self._limiter = RateLimiter(self.rate)
        self._cache = ResponseCache(Path(self.settings.cache_dir) / self.source) if self.settings.cache_dir else None

    def url(self, path):
        return path if path.startswith(("http://", "https://")) else urljoin(self.base_url, path.lstrip("/"))

    def get(self, path, params=None, headers=None, parse=None):
        return self.request("GET", path, params=params, headers=headers, parse=parse)

    def post(self, path, params=None, data=None, json_body=None, headers=None, parse=None):
        return self.request("POST", path, params=params, data=data, json_body=json_body, headers=headers,
                            parse=parse)

    def request(self, method, path, params=None, data=None, json_body=None, headers=None, parse=None):
        """Returns ``(response, parsed)`` where parsed is ``parse(response)`` for 2xx, else None."""
        url = self.url(path)
        key = request_key(method, url, self._public(params), self._public(data), json_body)
        s = self.settings
        if self._cache and not s.refresh:
            cached = self._cache.get(key)
            if cached is not None:
                try:
                    parsed = parse(cached) if parse and cached.status < 300 else None
                except Exception:  # noqa: BLE001 - a cached body that no longer parses is a miss
                    parsed, cached = None, None
                if cached is not None:
                    self.cache_hits += 1
                    return cached, parsed
        if s.offline:
            raise SourceError(f"not in the cache and --offline is set ({method} {url})")
        problem = None
        for attempt in range(s.retries + 1):
            if attempt:
                self._backoff(attempt, problem)
            self._limiter.wait(self.sleep)
            self.requests_made += 1
            try:
                r = self._session.request(method, url, params=params, data=data, json=json_body,
                                          headers=headers, timeout=s.timeout)
                body = r.content  # reads the whole body; a truncated stream raises here
            except requests.Timeout:
                problem = (f"timed out after {s.timeout:g} s", None)
                continue
            except requests.RequestException as e:  # connection refused/reset, truncated body, ...
                problem = (f"connection failed ({type(e).__name__})", None)
                continue
            resp = Response(r.status_code, {k.lower(): v for k, v in r.headers.items()}, body, self._redact(r.url))
            if r.status_code in RETRY_STATUS or r.status_code >= 500:
                problem = (f"HTTP {r.status_code}", _retry_after(r.headers.get("Retry-After")))
                if problem[1] is not None and problem[1] > s.max_wait:
                    raise SourceError(f"{self.source} asked to wait {problem[1]:.0f} s (Retry-After), more "
                                      f"than the {s.max_wait:g} s allowed; try again later")
                continue
            parsed = None
            if parse and r.status_code < 300:
                try:
                    parsed = parse(resp)
                except Exception as e:  # noqa: BLE001 - any parse failure is a malformed reply
                    problem = (f"malformed response ({type(e).__name__}: {str(e)[:80]})", None)
                    continue
            if self._cache and r.status_code in CACHEABLE_STATUS:
                try:
                    self._cache.put(key, resp)
                except OSError as e:  # a full or read-only cache must not lose the answer
                    logger.warning(f"{self.source}: cannot write the cache {self._cache.root} ({e}); continuing")
                    self._cache = None
            return resp, parsed
        raise SourceError(f"{self.source}: {problem[0]} after {s.retries + 1} attempt(s) ({method} {url})")

    def _public(self, params):
        if not isinstance(params, dict) or not self.secret_params:
            return params
        return {k: v for k, v in params.items() if k not in self.secret_params}

    def _redact(self, url):
        if not self.secret_params or "?" not in url:
            return url
        base, _, query = url.partition("?")
        kept = [p for p in query.split("&") if p.split("=", 1)[0] not in self.secret_params]
        return base + ("?" + "&".join(kept) if kept else "")

    def _backoff(self, attempt, problem):
        s = self.settings
        delay = min(s.max_wait, s.backoff * 2 ** (attempt - 1))
        delay = delay / 2 + random.uniform(0, delay / 2)  # "equal jitter"
        if problem and problem[1] is not None:
            delay = max(delay, problem[1])  # the server said how long to wait
        logger.debug(f"{self.source}: {problem[0] if problem else 'error'}; retry {attempt} in {delay:.2f} s")
        self.sleep(delay)
