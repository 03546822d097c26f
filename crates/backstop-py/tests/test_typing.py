"""For type checkers, decorated functions keep their signatures: mypy on
code using every decorator (the package ships ``py.typed`` and stubs)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SNIPPET = textwrap.dedent(
    """
    from backstop import CircuitBreaker, RetryConfig, retry_call, with_api_retry, with_retry, with_s3_retry

    @with_retry
    def bare(x: int) -> str:
        return str(x)

    @with_retry(config=RetryConfig(max_attempts=3))
    def configured(key: str, *, body: bytes) -> int:
        return len(body)

    @with_s3_retry(max_attempts=3)
    def upload(key: str) -> bytes:
        return b""

    @with_api_retry()
    async def fetch(url: str) -> dict:
        return {}

    breaker = CircuitBreaker("api")

    @breaker
    def guarded(n: int) -> float:
        return 1.0

    reveal_type(bare)
    reveal_type(configured)
    reveal_type(upload)
    reveal_type(fetch)
    reveal_type(guarded)
    reveal_type(retry_call(bare, args=(1,)))
    bare("not an int")
    configured("k", body="not bytes")
    """
)


def test_decorated_functions_keep_their_signatures_for_mypy(tmp_path):
    source = tmp_path / "uses_backstop.py"
    source.write_text(SNIPPET)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--cache-dir", str(tmp_path / "cache"), str(source)],
        capture_output=True,
        text=True,
    )
    out = result.stdout.replace("builtins.", "")  # older mypy prints builtins.int
    assert 'Revealed type is "def (x: int) -> str"' in out, out
    assert 'Revealed type is "def (key: str, *, body: bytes) -> int"' in out, out
    assert 'Revealed type is "def (key: str) -> bytes"' in out, out
    assert "def (url: str) -> typing.Coroutine[Any, Any, dict[Any, Any]]" in out, out
    assert 'Revealed type is "def (n: int) -> float"' in out, out
    assert 'Revealed type is "str"' in out, out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 2, out
    assert 'Argument 1 to "bare" has incompatible type "str"; expected "int"' in errors[0]
    assert 'Argument "body" to "configured" has incompatible type "str"; expected "bytes"' in errors[1]
