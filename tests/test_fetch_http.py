"""The fetch HTTP client against a real local server: retries, backoff, Retry-After, timeouts,
malformed and truncated replies, rate limit, cache, User-Agent."""

import json
import time

import pytest

from genepheno.sequences.fake_services import FakeServices
from genepheno.sequences.http import HttpClient, HttpSettings, SourceError, _retry_after

QUERY = {"query": "accession:P04637", "format": "json", "fields": "accession,sequence"}


@pytest.fixture
def fake(fixtures):
    with FakeServices.from_dir(fixtures / "fetch") as f:
        yield f


class Sleeps(list):
    """Records requested sleeps instead of sleeping (backoff checks stay instant)."""

    def __call__(self, seconds):
        self.append(seconds)


def client(fake, tmp_path=None, sleep=None, **settings):
    s = HttpSettings(**{"timeout": 5.0, "retries": 3, "backoff": 0.001, "email": "lab@example.org",
                        "cache_dir": tmp_path, **settings})
    return HttpClient("uniprot", fake.url("uniprot"), s, rate=1000, sleep=time.sleep if sleep is None else sleep)


def results(resp):
    return [e["primaryAccession"] for e in json.loads(resp.body)["results"]]


def test_plain_request_and_user_agent(fake):
    c = client(fake)
    resp, accs = c.get("uniprotkb/search", params=QUERY, parse=results)
    assert (resp.status, accs, resp.headers["x-total-results"]) == (200, ["P04637"], "1")
    ua = fake.log[-1]["headers"]["User-Agent"]
    assert ua.startswith("genepheno/") and "mailto:lab@example.org" in ua


def test_429_waits_for_retry_after(fake):
    sleeps = Sleeps()
    fake.fail_next("uniprot", ("status", 429, {"Retry-After": "7"}))
    c = client(fake, sleep=sleeps)
    _, accs = c.get("uniprotkb/search", params=QUERY, parse=results)
    assert accs == ["P04637"] and c.requests_made == 2 and fake.count("uniprot") == 2
    assert sleeps == [7.0]  # the server's wait wins over the (tiny) backoff


def test_429_retry_after_really_sleeps(fake):
    fake.fail_next("uniprot", ("status", 429, {"Retry-After": "1"}))
    t0 = time.monotonic()
    _, accs = client(fake).get("uniprotkb/search", params=QUERY, parse=results)
    assert accs == ["P04637"] and time.monotonic() - t0 >= 1.0


def test_retry_after_beyond_max_wait_gives_up(fake):
    fake.fail_next("uniprot", ("status", 429, {"Retry-After": "3600"}))
    with pytest.raises(SourceError, match="asked to wait 3600 s"):
        client(fake, max_wait=60).get("uniprotkb/search", params=QUERY)
    assert fake.count("uniprot") == 1


def test_retry_after_http_date():
    assert _retry_after("120") == 120.0
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 28 <= _retry_after(later) <= 31
    assert _retry_after("soon") is None


def test_500_then_success(fake):
    fake.fail_next("uniprot", ("status", 500), ("status", 503))
    c = client(fake)
    _, accs = c.get("uniprotkb/search", params=QUERY, parse=results)
    assert accs == ["P04637"] and c.requests_made == 3


def test_backoff_doubles_with_jitter(fake):
    sleeps = Sleeps()
    fake.fail_next("uniprot", *[("status", 502)] * 3)
    client(fake, sleep=sleeps, backoff=1.0).get("uniprotkb/search", params=QUERY)
    assert len(sleeps) == 3
    for i, s in enumerate(sleeps):  # equal jitter: between half and all of backoff * 2^i
        assert 0.5 * 2 ** i <= s <= 2 ** i


def test_persistent_5xx_raises_after_all_attempts(fake):
    fake.fail_next("uniprot", *[("status", 500)] * 10)
    with pytest.raises(SourceError, match=r"uniprot: HTTP 500 after 4 attempt\(s\)"):
        client(fake).get("uniprotkb/search", params=QUERY)
    assert fake.count("uniprot") == 4


def test_timeout_then_success(fake):
    fake.fail_next("uniprot", ("sleep", 1.0))
    c = client(fake, timeout=0.25)
    _, accs = c.get("uniprotkb/search", params=QUERY, parse=results)
    assert accs == ["P04637"] and c.requests_made == 2


def test_timeout_every_time(fake):
    fake.fail_next("uniprot", ("sleep", 0.6), ("sleep", 0.6))
    with pytest.raises(SourceError, match=r"timed out after 0.2 s after 2 attempt"):
        client(fake, timeout=0.2, retries=1).get("uniprotkb/search", params=QUERY)


def test_malformed_body_is_retried_and_not_cached(fake, tmp_path):
    fake.fail_next("uniprot", ("malformed",))
    c = client(fake, tmp_path)
    _, accs = c.get("uniprotkb/search", params=QUERY, parse=results)
    assert accs == ["P04637"] and c.requests_made == 2
    fake.fail_next("uniprot", *[("malformed",)] * 4)
    with pytest.raises(SourceError, match="malformed response"):
        client(fake, tmp_path, refresh=True).get("uniprotkb/search", params=QUERY, parse=results)
    # the good answer stayed in the cache; the malformed ones never replaced it
    c2 = client(fake, tmp_path)
    assert c2.get("uniprotkb/search", params=QUERY, parse=results)[1] == ["P04637"] and c2.requests_made == 0


def test_truncated_stream_is_retried(fake):
    fake.fail_next("uniprot", ("truncate",))
    c = client(fake)
    _, accs = c.get("uniprotkb/search", params=QUERY, parse=results)
    assert accs == ["P04637"] and c.requests_made == 2
    fake.fail_next("uniprot", *[("truncate",)] * 4)
    with pytest.raises(SourceError, match="connection failed"):
        client(fake).get("uniprotkb/search", params=QUERY, parse=results)


def test_connection_refused_is_a_source_error():
    c = HttpClient("uniprot", "http://127.0.0.1:9", HttpSettings(retries=1, backoff=0.001, timeout=1))
    with pytest.raises(SourceError, match="connection failed"):
        c.get("uniprotkb/search", params=QUERY)


def test_rate_limit_spaces_requests(fake):
    c = HttpClient("uniprot", fake.url("uniprot"), HttpSettings(), rate=20)
    t0 = time.monotonic()
    for _ in range(5):
        c.get("uniprotkb/search", params=QUERY)
    assert time.monotonic() - t0 >= 0.19  # 4 intervals of 50 ms


def test_cache_offline_and_refresh(fake, tmp_path):
    c = client(fake, tmp_path)
    c.get("uniprotkb/search", params=QUERY, parse=results)
    assert fake.count() == 1
    again = client(fake, tmp_path)
    resp, accs = again.get("uniprotkb/search", params=QUERY, parse=results)
    assert accs == ["P04637"] and resp.from_cache and again.requests_made == 0 and fake.count() == 1
    off = client(fake, tmp_path, offline=True)
    assert off.get("uniprotkb/search", params=QUERY, parse=results)[1] == ["P04637"]
    with pytest.raises(SourceError, match="not in the cache and --offline is set"):
        off.get("uniprotkb/search", params={**QUERY, "query": "accession:P02340"})
    client(fake, tmp_path, refresh=True).get("uniprotkb/search", params=QUERY, parse=results)
    assert fake.count() == 2


def test_definitive_4xx_is_cached_but_5xx_is_not(fake, tmp_path):
    bad = {**QUERY, "query": "nosuchfield:1"}
    resp, parsed = client(fake, tmp_path).get("uniprotkb/search", params=bad, parse=results)
    assert resp.status == 400 and parsed is None and "not a valid search field" in resp.text()
    assert client(fake, tmp_path).get("uniprotkb/search", params=bad)[0].from_cache
    fake.fail_next("uniprot", *[("status", 500)] * 4)
    with pytest.raises(SourceError):
        client(fake, tmp_path).get("uniprotkb/search", params={**QUERY, "size": 3})
    assert len(list(tmp_path.rglob("*.body"))) == 1  # only the 400 is stored


def test_secret_params_stay_out_of_the_cache(fake, tmp_path):
    s = HttpSettings(cache_dir=tmp_path, backoff=0.001)
    c = HttpClient("ncbi", fake.url("ncbi"), s, rate=1000, secret_params=("api_key", "email"))
    params = {"db": "gene", "term": '"TP53"[sym] AND 9606[taxid]', "api_key": "SECRET123", "email": "a@b.c"}
    c.get("esearch.fcgi", params=params)
    assert fake.log[-1]["params"]["api_key"] == "SECRET123"
    stored = "".join(p.read_text() for p in tmp_path.rglob("*.json"))
    assert "SECRET123" not in stored and "a@b.c" not in stored
    # another key, same question: answered from the cache
    c2 = HttpClient("ncbi", fake.url("ncbi"), s, rate=1000, secret_params=("api_key", "email"))
    assert c2.get("esearch.fcgi", params={**params, "api_key": "OTHER"})[0].from_cache
