"""A function that fails a given number of times, then succeeds: shared by the tests."""


class Flaky:
    """Fails with `error` the first `failures` calls, then returns `value`
    (with `echo`, the value with the call's arguments)."""

    def __init__(self, failures, error=None, value="ok", echo=False):
        self.failures, self.value, self.echo, self.calls = failures, value, echo, 0
        self.error = error if error is not None else ConnectionError("connection reset")

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return (self.value, args, kwargs) if self.echo else self.value
