"""Public-deployment guards: which URLs a visitor may point the app at, and secrets in logs."""

from __future__ import annotations

import logging

import pytest

from runtime.gate import UnsafeURL, check_public_url
from serve.safety import RedactSecrets, install_redaction, redact, secrets_from_env

PUBLIC = "93.184.215.14"


def resolver(table: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("Name or service not known")
        return table[host]

    return resolve


DNS = resolver(
    {
        "api.example.com": [PUBLIC],
        "gpu.example.com": [PUBLIC, "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        "sneaky.example.com": [PUBLIC, "10.0.0.5"],  # one public, one internal: refused
        "localhost": ["127.0.0.1", "::1"],
        "metadata.google.internal": ["169.254.169.254"],
        "127.1": ["127.0.0.1"],
        "0x7f000001": ["127.0.0.1"],
        "mapped.example.com": ["::ffff:192.168.1.10"],
        "cgnat.example.com": ["100.64.3.4"],
        "ula.example.com": ["fd00::1"],
        "zero.example.com": ["0.0.0.0"],
    }
)


@pytest.mark.parametrize(
    "url",
    ["https://api.example.com/v1", "http://gpu.example.com:8000/v1", "  https://api.example.com/v1  "],
)
def test_public_addresses_pass(url: str) -> None:
    assert check_public_url(url, resolve=DNS) == url.strip()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://localhost:11434", "loopback"),
        ("http://127.1:8000/v1", "loopback"),
        ("http://0x7f000001/v1", "loopback"),
        ("http://metadata.google.internal/computeMetadata/v1", "link-local"),
        ("http://sneaky.example.com/v1", "10.0.0.5 (private)"),
        ("http://mapped.example.com/v1", "private"),
        ("http://cgnat.example.com/v1", "100.64.3.4"),
        ("http://ula.example.com/v1", "private"),
        ("http://zero.example.com/v1", "0.0.0.0"),
        ("http://[::1]:8000/v1", "loopback"),
        ("http://10.1.2.3/v1", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://api.example.com/", "only http and https"),
        ("https://user:pw@api.example.com/v1", "credentials"),
        ("https:///v1", "no host"),
        ("https://nowhere.invalid/v1", "cannot resolve"),
        ("https://api.example.com:99999/v1", "port"),
    ],
)
def test_internal_or_odd_urls_are_refused(url: str, reason: str) -> None:
    def resolve(host: str, port: int) -> list[str]:
        if host in ("::1", "10.1.2.3", "169.254.169.254"):
            return [host]
        return DNS(host, port)

    with pytest.raises(UnsafeURL) as caught:
        check_public_url(url, resolve=resolve)
    assert reason in str(caught.value)


def test_allowlist_narrows_even_public_hosts() -> None:
    allow = ["api.example.com", "*.inference.example.org"]
    table = resolver(
        {"api.example.com": [PUBLIC], "gpu.example.com": [PUBLIC], "a.inference.example.org": [PUBLIC]}
    )
    assert check_public_url("https://api.example.com/v1", allow_hosts=allow, resolve=table)
    assert check_public_url("https://a.inference.example.org/v1", allow_hosts=allow, resolve=table)
    with pytest.raises(UnsafeURL, match="not on this deployment's allowlist"):
        check_public_url("https://gpu.example.com/v1", allow_hosts=allow, resolve=table)
    with pytest.raises(UnsafeURL, match="allowlist"):
        check_public_url("https://inference.example.org.evil.com/v1", allow_hosts=allow, resolve=table)


def test_allowlisted_name_pointing_inside_is_still_refused() -> None:
    table = resolver({"api.example.com": ["192.168.0.7"]})
    with pytest.raises(UnsafeURL, match="private"):
        check_public_url("https://api.example.com/v1", allow_hosts=["api.example.com"], resolve=table)


def test_the_real_resolver_refuses_localhost() -> None:
    with pytest.raises(UnsafeURL, match="loopback"):
        check_public_url("http://localhost:8000/v1")


HF = "hf_" + "a1B2c3D4e5F6g7H8i9J0kLmN"
KEY = "sk-proj-" + "Zz9Yy8Xx7Ww6Vv5Uu4"


def test_redact_masks_known_values_and_shapes() -> None:
    env = {"HF_TOKEN": HF, "OPENAI_API_KEY": "plain-secret-value", "HOME": "/root", "VLLM_API_KEY": ""}
    secrets = secrets_from_env(env)
    assert secrets == ["plain-secret-value", HF] or set(secrets) == {HF, "plain-secret-value"}
    line = f"token {HF} key plain-secret-value header Authorization: Bearer abcdefghijk home /root"
    cleaned = redact(line, secrets)
    assert HF not in cleaned
    assert "plain-secret-value" not in cleaned
    assert "abcdefghijk" not in cleaned
    assert "/root" in cleaned
    assert KEY not in redact(f"using {KEY}")  # shape alone is enough
    assert "hunter22" not in redact('{"api_key": "hunter22"}')
    assert "s3cr3t!" not in redact("https://x/v1?token=s3cr3t!&a=1")


def test_logging_filter_redacts_messages_args_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("slm_playground.test_redaction")
    flt = RedactSecrets([HF])
    caplog.handler.addFilter(flt)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("connecting with %s to %s", HF, "https://api.example.com")
            try:
                raise RuntimeError(f"401 for key {KEY}")
            except RuntimeError:
                logger.exception("request failed")
    finally:
        caplog.handler.removeFilter(flt)
    text = caplog.text
    assert "connecting with [REDACTED] to https://api.example.com" in text
    assert "RuntimeError: 401 for key [REDACTED]" in text
    assert HF not in text
    assert KEY not in text


def test_install_redaction_attaches_to_handlers_once() -> None:
    logger = logging.getLogger("slm_playground.test_install")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    try:
        install_redaction([logger.name], secrets=[HF])
        install_redaction([logger.name], secrets=[HF])
        assert sum(isinstance(f, RedactSecrets) for f in handler.filters) == 1
    finally:
        logger.removeHandler(handler)
