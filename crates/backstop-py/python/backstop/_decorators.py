"""``with_retry`` and ``retry_call``, which two of the specification's
documents define differently; one function accepts both call forms.

- Document 003 (``RetryConfig``): ``with_retry()``, ``with_retry(config=...,
  logger=...)``, ``create_retry_decorator(config, logger)``, and
  ``retry_call(func, config, logger, *args, **kwargs)`` with the config and
  logger as the second and third positional arguments.
- Document 004 (``RetryPolicy``): ``@with_retry`` (no parentheses),
  ``with_retry(policy=...)`` or with ``RetryPolicy``'s parameters
  (``max_retries=5, initial_delay=0.5``), and ``retry_call(func, args=(...),
  kwargs={...}, policy=..., **params)``.

How they are told apart: ``config=``/``logger=`` or a ``RetryConfig`` say 003;
``policy=``, ``RetryPolicy``'s parameters, ``args=``/``kwargs=`` say 004.
With nothing at all (``@with_retry``, ``@with_retry()``, ``retry_call(f)``)
the default is ``DEFAULT_RETRY_CONFIG`` (3 attempts, waits of 2 to 30 s).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Mapping, Optional, Tuple, TypeVar, overload

from ._breaker import CircuitBreaker
from ._callables import is_async
from ._config import DEFAULT_RETRY_CONFIG, RetryConfig
from ._guards import Pacer, RetryBudget, clock_rule, run_guards
from ._policy import RetryPolicy
from ._run import retrying, run

__all__ = ["create_retry_decorator", "retry_call", "with_retry"]

#: A decorated function's type: every decorator returns the type it was
#: given, so type checkers keep its signature (what ``ParamSpec`` would
#: give, back to Python 3.9 without typing_extensions).
F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")

_POLICY_PARAMS = frozenset(
    ("max_retries", "initial_delay", "max_delay", "exponential_base", "jitter", "retry_on_exceptions", "on_retry")
)


def _logged(func: Callable[..., Any], logger: logging.Logger, max_attempts: int) -> Callable[..., Any]:
    """``func`` logging to ``logger`` (INFO) before and after each attempt,
    as tenacity's ``before_log`` and ``after_log`` did; one per call (it
    counts that call's attempts). Async for an async ``func``."""
    name = getattr(func, "__name__", "operation")
    attempt = 0

    def before() -> float:
        nonlocal attempt
        attempt += 1
        logger.info("Starting call to %s, attempt %d of %d", name, attempt, max_attempts)
        return time.monotonic()

    def after(started: float, exc: Optional[BaseException]) -> None:
        outcome = "succeeded" if exc is None else f"{type(exc).__name__}: {exc}"
        logger.info("Finished call to %s after %.3f seconds, attempt %d of %d: %s",
                    name, time.monotonic() - started, attempt, max_attempts, outcome)

    if is_async(func):

        async def attempt_once_async(*args: Any, **kwargs: Any) -> Any:
            started = before()
            try:
                result = await func(*args, **kwargs)
            except BaseException as exc:
                after(started, exc)
                raise
            after(started, None)
            return result

        attempt_once_async.__name__ = name
        return attempt_once_async

    def attempt_once(*args: Any, **kwargs: Any) -> Any:
        started = before()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            after(started, exc)
            raise
        after(started, None)
        return result

    attempt_once.__name__ = name
    return attempt_once


def _call_with_config(
    config: RetryConfig, logger: Optional[logging.Logger], func: Callable[..., Any], args: Tuple[Any, ...],
    kwargs: Optional[Mapping[str, Any]],
) -> Any:
    if not isinstance(config, RetryConfig):
        raise TypeError(f"config must be a RetryConfig, not {type(config).__name__}")
    target = _logged(func, logger, config.max_attempts) if logger is not None else func
    name = getattr(func, "__name__", "operation")
    return run(config._schedule, config.retry_exceptions, None, target, args, kwargs, name)


def _policy_of(policy: Optional[RetryPolicy], params: Mapping[str, Any]) -> RetryPolicy:
    if policy is not None and params:
        raise TypeError(f"give either policy= or its parameters ({', '.join(params)}), not both")
    if policy is not None and not isinstance(policy, RetryPolicy):
        raise TypeError(f"policy must be a RetryPolicy, not {type(policy).__name__}")
    return policy if policy is not None else RetryPolicy(**params)


@overload
def with_retry(func: F) -> F: ...


@overload
def with_retry(
    func: None = None,
    *,
    config: Optional[RetryConfig] = None,
    logger: Optional[logging.Logger] = None,
    policy: Optional[RetryPolicy] = None,
    breaker: Optional[CircuitBreaker] = None,
    budget: Optional[RetryBudget] = None,
    pacer: Optional[Pacer] = None,
    **params: Any,
) -> Callable[[F], F]: ...


def with_retry(
    func: Optional[F] = None,
    *,
    config: Optional[RetryConfig] = None,
    logger: Optional[logging.Logger] = None,
    policy: Optional[RetryPolicy] = None,
    breaker: Optional[CircuitBreaker] = None,
    budget: Optional[RetryBudget] = None,
    pacer: Optional[Pacer] = None,
    **params: Any,
) -> Any:
    """Retries the decorated function; see the module docs for both forms::

        @with_retry()                                  # DEFAULT_RETRY_CONFIG
        @with_retry(config=config, logger=my_logger)   # document 003
        @with_retry(policy=policy)                     # document 004
        @with_retry(max_retries=5, initial_delay=0.5)  # document 004, inline

    An exception that is not retried is raised as itself; when attempts run
    out, ``RetryExhaustedError`` is raised from the last exception. With
    ``breaker=``, ``budget=`` or ``pacer=`` (either form), every attempt asks
    them: an open circuit raises ``CircuitOpenException``, a spent budget
    ends the retries (``RetryExhaustedError``)."""
    unknown = set(params) - _POLICY_PARAMS
    if unknown:
        raise TypeError(f"with_retry() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    if (config is not None or logger is not None) and (policy is not None or params):
        raise TypeError("give config=/logger= (a RetryConfig) or policy=/RetryPolicy parameters, not both")
    guards = run_guards(breaker, budget, pacer)
    rule = clock_rule(breaker, budget, pacer)
    if policy is not None or params:
        chosen = _policy_of(policy, params)

        def decorate(f: F) -> F:
            return retrying(
                f, chosen._schedule, chosen.retry_on_exceptions, chosen.on_retry, guards=guards, clock_rule=rule
            )
    else:
        cfg = config if config is not None else DEFAULT_RETRY_CONFIG
        if not isinstance(cfg, RetryConfig):
            raise TypeError(f"config must be a RetryConfig, not {type(cfg).__name__}")

        def decorate(f: F) -> F:
            make = None if logger is None else (lambda: _logged(f, logger, cfg.max_attempts))
            return retrying(f, cfg._schedule, cfg.retry_exceptions, make_attempt=make, guards=guards, clock_rule=rule)

    return decorate(func) if func is not None else decorate


def create_retry_decorator(
    config: Optional[RetryConfig] = None, logger: Optional[logging.Logger] = None
) -> Callable[[F], F]:
    """The decorator ``with_retry(config=config, logger=logger)`` makes."""
    return with_retry(config=config, logger=logger)


def retry_call(func: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """Calls ``func`` with retries, without a decorator; both forms::

        retry_call(fetch, config, logger, "a", key=1)     # document 003: fetch("a", key=1)
        retry_call(fetch, args=("a",), kwargs={"key": 1}, max_retries=3)   # document 004

    Document 004's form is taken when ``args=``, ``kwargs=``, ``policy=`` or
    a ``RetryPolicy`` parameter is given by keyword (those keywords are then
    not passed to ``func``); otherwise the second and third positional
    arguments are the ``RetryConfig`` (``None``: the default) and the logger,
    and the rest go to ``func``."""
    if not callable(func):
        raise TypeError(f"retry_call needs a function to call, not {type(func).__name__}")
    policy_form = bool({"args", "kwargs", "policy"} & set(kwargs)) or bool(_POLICY_PARAMS & set(kwargs))
    if policy_form:
        call_args = kwargs.pop("args", ())
        call_kwargs = kwargs.pop("kwargs", None)
        policy = kwargs.pop("policy", None)
        if args:
            raise TypeError("retry_call(func, args=..., kwargs=..., policy=...) takes the function's arguments in args=")
        return _policy_of(policy, kwargs)._call(func, tuple(call_args), call_kwargs)
    config = args[0] if len(args) > 0 else None
    logger = args[1] if len(args) > 1 else None
    if config is not None and not isinstance(config, RetryConfig):
        raise TypeError(
            f"retry_call's second argument is the RetryConfig (or None), not {type(config).__name__}; "
            "pass the function's arguments after the config and logger, or as args=(...)"
        )
    return _call_with_config(config or DEFAULT_RETRY_CONFIG, logger, func, tuple(args[2:]), kwargs)
