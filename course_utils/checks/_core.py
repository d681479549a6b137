"""The machinery behind every exercise check.

A check runs a learner's function and the reference on the same seeded inputs (float32 and float64,
on the course device), compares the results with tolerances and, on a mismatch, tries to say *why*:

1. structural problems first: an exception, a wrong type, shape, dtype or device, NaNs, inputs
   modified in place;
2. then the chapter's catalogue of known mistakes (:class:`Mistake`): each is a plausible wrong
   implementation; if the learner's output matches one of them, its diagnosis is the message;
3. then generic patterns: transposed, negated, off by a constant factor (summed instead of averaged).

A learner's ``NotImplementedError`` (an untouched stub) passes through unchanged so that the grading
command can report the exercise as *not attempted* rather than *failed*.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch


class CheckFailed(AssertionError):
    """Raised by a check when the learner's answer is wrong; the message is the diagnosis."""


@dataclass(frozen=True)
class Mistake:
    """A plausible wrong implementation and the diagnosis to show when a learner's output matches it.

    ``fn`` takes the same arguments as the exercise function and returns what the mistaken version
    would return.
    """

    message: str
    fn: Callable[..., Any]


@dataclass(frozen=True)
class Case:
    """One set of keyword arguments to call the exercise function with, and a label for messages."""

    kwargs: Mapping[str, Any]
    label: str = ""


def _describe(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"tensor of shape {list(x.shape)} ({str(x.dtype).replace('torch.', '')}, {x.device.type})"
    if isinstance(x, (tuple, list)):
        return f"{type(x).__name__} of {len(x)} items"
    return type(x).__name__


def _describe_inputs(kwargs: Mapping[str, Any]) -> str:
    parts = []
    for k, v in kwargs.items():
        if isinstance(v, torch.Tensor):
            parts.append(f"{k}: {list(v.shape)}")
        elif isinstance(v, (int, float, bool, str)):
            parts.append(f"{k}={v!r}")
        else:
            parts.append(f"{k}: {type(v).__name__}")
    return ", ".join(parts)


def _clone(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, tuple):
        return tuple(_clone(v) for v in x)
    if isinstance(x, list):
        return [_clone(v) for v in x]
    if isinstance(x, dict):
        return {k: _clone(v) for k, v in x.items()}
    return x


def _clone_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _clone(v) for k, v in kwargs.items()}


def _close(a: Any, b: Any, atol: float, rtol: float) -> bool:
    """True when ``a`` and ``b`` have the same structure and numerically close values."""
    if isinstance(b, torch.Tensor):
        if not isinstance(a, torch.Tensor) or a.shape != b.shape:
            return False
        a2, b2 = a.detach().to("cpu", torch.float64), b.detach().to("cpu", torch.float64)
        return bool(torch.allclose(a2, b2, atol=atol, rtol=rtol, equal_nan=False))
    if isinstance(b, (tuple, list)):
        return isinstance(a, (tuple, list)) and len(a) == len(b) and all(
            _close(x, y, atol, rtol) for x, y in zip(a, b)
        )
    if isinstance(b, (int, float)) and not isinstance(b, bool):
        if isinstance(a, torch.Tensor) and a.numel() == 1:
            a = a.item()
        return isinstance(a, (int, float)) and math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=atol)
    return a == b


def _generic_value_diagnosis(actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float) -> str:
    a = actual.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    hints: list[str] = []
    if a.ndim == 2 and a.shape[0] == a.shape[1] and torch.allclose(a, e.T, atol=atol, rtol=rtol):
        hints.append("your result is the transpose of the expected one: check the order of the indices")
    elif torch.allclose(a, -e, atol=atol, rtol=rtol):
        hints.append("your result has the wrong sign")
    else:
        mask = e.abs() > 1e-6
        if mask.sum() >= 2:
            ratio = a[mask] / e[mask]
            r0 = ratio.median().item()
            if abs(r0) > 1e-9 and not math.isclose(r0, 1.0, rel_tol=1e-3) and torch.allclose(
                ratio, torch.full_like(ratio, r0), rtol=1e-3, atol=1e-6
            ):
                hints.append(
                    f"every entry is {r0:.4g} times the expected value: a normalisation is off "
                    "(summed instead of averaged, or divided by the wrong count?)"
                )
    diff = (a - e).abs()
    bad = ~torch.isclose(a, e, atol=atol, rtol=rtol)
    idx = tuple(int(i) for i in torch.nonzero(bad)[0]) if bad.any() else ()
    where = (
        f"e.g. at index {list(idx)} you returned {a[idx].item():.6g}, expected {e[idx].item():.6g}"
        if idx
        else ""
    )
    summary = f"{int(bad.sum())} of {bad.numel()} entries differ (largest error {diff.max().item():.3g}); {where}"
    return ("; ".join(hints) + ". " if hints else "") + summary


def compare(
    actual: Any,
    expected: Any,
    *,
    what: str,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    mistakes: Sequence[tuple[str, Any]] = (),
    context: str = "",
) -> None:
    """Raise :class:`CheckFailed` with a diagnosis unless ``actual`` matches ``expected``.

    ``mistakes`` holds ``(diagnosis, mistaken_output)`` pairs computed on the same inputs; the first
    one the learner's output matches gives the message.
    """
    where = f" (inputs: {context})" if context else ""
    if isinstance(expected, (tuple, list)):
        if not isinstance(actual, (tuple, list)):
            raise CheckFailed(f"{what} should return a {type(expected).__name__} of {len(expected)} items, "
                              f"got {_describe(actual)}{where}")
        if len(actual) != len(expected):
            raise CheckFailed(f"{what} should return {len(expected)} items, got {len(actual)}{where}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            sub_mistakes = [(m, o[i]) for m, o in mistakes if isinstance(o, (tuple, list)) and len(o) > i]
            compare(a, e, what=f"{what}[{i}]", atol=atol, rtol=rtol, mistakes=sub_mistakes, context=context)
        return
    if isinstance(expected, torch.Tensor):
        if not isinstance(actual, torch.Tensor):
            raise CheckFailed(f"{what} should return a torch.Tensor, got {_describe(actual)}{where}")
        if actual.shape != expected.shape:
            msg = f"{what} has shape {list(actual.shape)}, expected {list(expected.shape)}{where}"
            if actual.ndim == expected.ndim and list(actual.shape) == list(expected.shape)[::-1]:
                msg += ": it looks transposed"
            elif actual.ndim < expected.ndim:
                msg += ": you reduced over a dimension that should be kept (check dim= and keepdim=)"
            elif actual.ndim > expected.ndim:
                msg += ": a dimension that should be reduced (or squeezed) is still there"
            for m, out in mistakes:
                if isinstance(out, torch.Tensor) and out.shape == actual.shape and _close(actual, out, atol, rtol):
                    msg += f". Likely mistake: {m}"
                    break
            raise CheckFailed(msg)
        if expected.is_floating_point() and actual.dtype != expected.dtype:
            raise CheckFailed(
                f"{what} has dtype {actual.dtype}, expected {expected.dtype}{where}: keep the input's dtype "
                "(avoid hard-coded dtypes; use x.dtype, torch.zeros_like, ...)"
            )
        if actual.device.type != expected.device.type:
            raise CheckFailed(
                f"{what} is on {actual.device.type}, expected {expected.device.type}{where}: create new tensors "
                "on the input's device (device=x.device)"
            )
        if actual.is_floating_point() and torch.isnan(actual).any() and not torch.isnan(expected).any():
            raise CheckFailed(f"{what} contains NaN{where}: a division by zero or a log of zero?")
        if _close(actual, expected, atol, rtol):
            return
        for m, out in mistakes:
            if _close(actual, out, atol, rtol):
                raise CheckFailed(f"{what} is wrong{where}. Likely mistake: {m}")
        raise CheckFailed(f"{what} is wrong{where}: " + _generic_value_diagnosis(actual, expected, atol, rtol))
    if _close(actual, expected, atol, rtol):
        return
    for m, out in mistakes:
        if _close(actual, out, atol, rtol):
            raise CheckFailed(f"{what} is wrong{where}. Likely mistake: {m}")
    raise CheckFailed(f"{what} returned {actual!r}, expected {expected!r}{where}")


def call_learner(fn: Callable[..., Any], kwargs: Mapping[str, Any], name: str) -> Any:
    """Call the learner's function; turn its exceptions (other than NotImplementedError) into a diagnosis."""
    if not callable(fn):
        raise TypeError(f"expected your function {name}, got {type(fn).__name__}: pass the function itself")
    try:
        return fn(**kwargs)
    except NotImplementedError:
        raise
    except CheckFailed:
        raise
    except Exception as err:  # noqa: BLE001 - any learner error becomes a diagnosis
        raise CheckFailed(
            f"{name} raised {type(err).__name__}: {err} (inputs: {_describe_inputs(kwargs)})"
        ) from err


def check_function(
    name: str,
    learner_fn: Callable[..., Any],
    reference_fn: Callable[..., Any],
    cases: Iterable[Case],
    mistakes: Sequence[Mistake] = (),
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> int:
    """Check ``learner_fn`` against ``reference_fn`` on every case; return the number of cases run.

    Raises :class:`CheckFailed` with a diagnosis on the first case that differs.
    """
    n = 0
    for case in cases:
        kwargs = case.kwargs
        pristine = _clone_kwargs(kwargs)
        expected = reference_fn(**_clone_kwargs(kwargs))
        actual = call_learner(learner_fn, kwargs, name)
        for k, v in kwargs.items():
            if isinstance(v, torch.Tensor) and not torch.equal(v, pristine[k]):
                raise CheckFailed(f"{name} modified its input {k!r} in place; work on a copy or use "
                                  "out-of-place operations")
        mistake_outputs: list[tuple[str, Any]] = []
        if not _close(actual, expected, atol, rtol):
            for mistake in mistakes:
                try:
                    mistake_outputs.append((mistake.message, mistake.fn(**_clone_kwargs(pristine))))
                except Exception:  # noqa: BLE001 - a mistake that cannot run on this case is skipped
                    continue
        context = _describe_inputs(kwargs) + (f"; {case.label}" if case.label else "")
        compare(actual, expected, what=f"{name}(...)", atol=atol, rtol=rtol, mistakes=mistake_outputs,
                context=context)
        n += 1
    return n


def passed(name: str, detail: str = "") -> None:
    """Print the one-line confirmation every check prints on success."""
    print(f"\u2714 {name}: correct" + (f" ({detail})" if detail else ""))


def dtypes_and_devices(device: torch.device | None = None) -> list[tuple[torch.dtype, torch.device]]:
    """The (dtype, device) combinations a check runs on: float32 and float64 on the CPU, plus the
    course device (CUDA / MPS) in float32 when one is present or passed in."""
    combos = [(torch.float32, torch.device("cpu")), (torch.float64, torch.device("cpu"))]
    if device is None:
        from course_utils.device import get_device

        device = get_device()
    device = torch.device(device)
    if device.type != "cpu":
        combos.append((torch.float32, device))
    return combos
