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

Float64 cases are held to float64 tolerances (a float32 computation inside fails them), integer
results must keep an integer dtype, and ``check_function(..., grad=("W", "b"))`` also compares the
gradients with respect to the named inputs (an output computed under ``no_grad`` or ``.detach()``ed
fails). In IPython a :class:`CheckFailed` shows its diagnosis, not the checker's frames (see
:meth:`CheckFailed._render_traceback_`).
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

_CHECKS_DIR = str(Path(__file__).resolve().parent)
ATOL64, RTOL64 = 1e-10, 1e-9  # float64 cases: a float32 computation inside is off by ~1e-7 and fails


class CheckFailed(AssertionError):
    """Raised by a check when the learner's answer is wrong; the message is the diagnosis."""

    def _render_traceback_(self) -> list[str]:
        """What IPython (and so a notebook) shows instead of the traceback: the diagnosis first, then,
        when the learner's own code raised, that error's frames without the checker's.

        The error output keeps ename ``CheckFailed`` and evalue = the message (the grader reads them).
        """
        lines = [f"CheckFailed: {self}"]
        cause = self.__cause__
        if cause is not None and cause.__traceback__ is not None:
            frames = [f for f in traceback.extract_tb(cause.__traceback__)
                      if not str(Path(f.filename).resolve()).startswith(_CHECKS_DIR)]
            if frames:
                lines += ["", "The error was raised in your code:"]
                lines += "".join(traceback.format_list(frames)).rstrip("\n").splitlines()
                lines += "".join(traceback.format_exception_only(type(cause), cause)).rstrip("\n").splitlines()
        return lines


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


def _kind(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return "float" if x.is_floating_point() else ("bool" if x.dtype == torch.bool else "integer")
    return type(x).__name__


def _order_diagnosis(actual: Sequence[Any], expected: Sequence[Any], what: str, names: Sequence[str]) -> str | None:
    """A message when the items have the right kinds but in another order (e.g. (indices, values))."""
    exp_kinds, act_kinds = [_kind(e) for e in expected], [_kind(a) for a in actual]
    if exp_kinds == act_kinds or sorted(exp_kinds) != sorted(act_kinds):
        return None
    labels = list(names) if len(names) == len(expected) else [f"{k} tensor" for k in exp_kinds]
    got = [f"{k} tensor" if k in ("float", "integer", "bool") else k for k in act_kinds]
    return (f"{what} returned its items in the wrong order: expected ({', '.join(labels)}), your items are "
            f"({', '.join(got)}); swap them")


def compare(
    actual: Any,
    expected: Any,
    *,
    what: str,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    mistakes: Sequence[tuple[str, Any]] = (),
    context: str = "",
    names: Sequence[str] = (),
    loose: tuple[float, float] | None = None,
    int_inputs: bool = False,
) -> None:
    """Raise :class:`CheckFailed` with a diagnosis unless ``actual`` matches ``expected``.

    ``mistakes`` holds ``(diagnosis, mistaken_output)`` pairs computed on the same inputs; the first
    one the learner's output matches gives the message. ``names`` names the items of a tuple result
    (for order mistakes). ``loose`` = (atol, rtol) of float32: a float64 result that matches only at
    that tolerance was computed in float32. ``int_inputs``: every tensor input was an integer one.
    """
    where = f" (inputs: {context})" if context else ""
    mistake_tol = loose or (atol, rtol)
    if isinstance(expected, (tuple, list)):
        if not isinstance(actual, (tuple, list)):
            raise CheckFailed(f"{what} should return a {type(expected).__name__} of {len(expected)} items"
                              + (f" ({', '.join(names)})" if len(names) == len(expected) else "")
                              + f", got {_describe(actual)}{where}")
        if len(actual) != len(expected):
            raise CheckFailed(f"{what} should return {len(expected)} items, got {len(actual)}{where}")
        order = _order_diagnosis(actual, expected, what, names)
        if order:
            raise CheckFailed(order + where)
        for i, (a, e) in enumerate(zip(actual, expected)):
            sub_mistakes = [(m, o[i]) for m, o in mistakes if isinstance(o, (tuple, list)) and len(o) > i]
            label = f"{what}[{i}]" + (f" ({names[i]})" if len(names) == len(expected) else "")
            compare(a, e, what=label, atol=atol, rtol=rtol, mistakes=sub_mistakes, context=context,
                    loose=loose, int_inputs=int_inputs)
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
            elif actual.ndim == expected.ndim:
                msg += ": a size is hard-coded, or taken from the wrong input or axis"
            for m, out in mistakes:
                if isinstance(out, torch.Tensor) and out.shape == actual.shape and _close(actual, out, *mistake_tol):
                    msg += f". Likely mistake: {m}"
                    break
            raise CheckFailed(msg)
        if expected.is_floating_point() and actual.dtype != expected.dtype:
            if not actual.is_floating_point():
                raise CheckFailed(f"{what} has dtype {actual.dtype}, expected {expected.dtype}{where}: the result "
                                  "is not an integer quantity; convert to float before dividing or averaging")
            hint = ("with integer inputs, convert them with .float() (float32, the default dtype)" if int_inputs
                    else "keep the input's dtype (avoid hard-coded dtypes; use x.dtype, torch.zeros_like, ...)")
            raise CheckFailed(f"{what} has dtype {actual.dtype}, expected {expected.dtype}{where}: {hint}")
        if not expected.is_floating_point() and actual.dtype != expected.dtype:
            for m, out in mistakes:
                if isinstance(out, torch.Tensor) and out.shape == actual.shape and _close(actual, out, *mistake_tol):
                    raise CheckFailed(f"{what} is wrong{where}. Likely mistake: {m}")
            kind = "a boolean" if expected.dtype == torch.bool else "an integer"
            raise CheckFailed(f"{what} has dtype {actual.dtype}, expected {kind} tensor ({expected.dtype}){where}: "
                              + ("these are counts, codes or indices: keep them integers (.long())"
                                 if expected.dtype != torch.bool else "return the comparison's result"))
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
            if _close(actual, out, *mistake_tol):
                raise CheckFailed(f"{what} is wrong{where}. Likely mistake: {m}")
        if loose is not None and _close(actual, expected, *loose):
            raise CheckFailed(f"{what} matches only to float32 precision on a float64 case{where}: part of your "
                              "computation runs in float32 (a hard-coded dtype=torch.float32, .float(), or a new "
                              "tensor without dtype=x.dtype); keep the input's dtype throughout")
        raise CheckFailed(f"{what} is wrong{where}: " + _generic_value_diagnosis(actual, expected, atol, rtol))
    if isinstance(expected, float) and isinstance(actual, torch.Tensor) and actual.numel() == 1:
        actual_num: Any = actual.item()
    else:
        actual_num = actual
    if _close(actual_num, expected, atol, rtol):
        return
    for m, out in mistakes:
        if _close(actual_num, out, *mistake_tol):
            raise CheckFailed(f"{what} is wrong{where}. Likely mistake: {m}")
    if loose is not None and _close(actual_num, expected, *loose):
        raise CheckFailed(f"{what} = {actual_num!r} matches only to float32 precision on a float64 case{where}: "
                          "part of your computation runs in float32; keep the input's dtype")
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


def _is_float64_case(kwargs: Mapping[str, Any]) -> bool:
    return any(isinstance(v, torch.Tensor) and v.dtype == torch.float64 for v in kwargs.values())


def _int_inputs_only(kwargs: Mapping[str, Any]) -> bool:
    tensors = [v for v in kwargs.values() if isinstance(v, torch.Tensor)]
    return bool(tensors) and not any(v.is_floating_point() for v in tensors)


def check_gradients(
    name: str,
    learner_fn: Callable[..., Any],
    reference_fn: Callable[..., Any],
    kwargs: Mapping[str, Any],
    wrt: Sequence[str],
    atol: float,
    rtol: float,
    context: str = "",
) -> None:
    """Differentiability: the learner's output must carry gradients to every input in ``wrt``, equal
    to the reference's (for a fixed random weighting of the output's entries).

    Catches a forward pass or loss computed under ``torch.no_grad()``, ``.detach()``ed, or rebuilt from
    ``.item()`` / ``.tolist()``: its values pass and then the training cell's ``backward()`` breaks.
    """
    where = f" (inputs: {context})" if context else ""

    def run(fn: Callable[..., Any], learner: bool) -> tuple[Any, list[torch.Tensor]]:
        kw = _clone_kwargs(kwargs)
        leaves = [kw[k].requires_grad_(True) for k in wrt]
        return (call_learner(fn, kw, name) if learner else fn(**kw)), leaves

    expected, exp_leaves = run(reference_fn, learner=False)
    actual, act_leaves = run(learner_fn, learner=True)
    if not isinstance(actual, torch.Tensor) or not isinstance(expected, torch.Tensor):
        return
    if not actual.requires_grad:
        raise CheckFailed(f"{name}'s output does not carry gradients{where}: it was computed under "
                          "torch.no_grad(), .detach()ed, or rebuilt from .item()/.tolist()/numpy, so training "
                          "through it (loss.backward()) fails; compute it from the inputs with torch operations")
    weights = torch.randn(expected.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    weights = weights.to(expected.dtype).to(expected.device)
    g_exp = torch.autograd.grad((expected * weights).sum(), exp_leaves, allow_unused=True)
    try:
        g_act = torch.autograd.grad((actual * weights).sum(), act_leaves, allow_unused=True)
    except RuntimeError as err:
        raise CheckFailed(f"back-propagating through {name} failed{where}: {err}") from None
    for k, ge, ga in zip(wrt, g_exp, g_act):
        if ge is None:
            continue
        if ga is None or (bool(ga.abs().sum() == 0) and bool(ge.abs().sum() > 0)):
            raise CheckFailed(f"no gradient reaches {k!r} through {name}{where}: the part of your computation "
                              f"that uses {k} is detached (.detach(), .data, torch.no_grad(), or a new tensor "
                              "built from its values)")
        if not _close(ga, ge, atol, rtol):
            raise CheckFailed(f"the gradient of {name} with respect to {k!r} is wrong although the values are "
                              f"right{where}: part of the computation that uses {k} is detached or replaced by "
                              "a constant (.detach(), .data, or a tensor built from .item())")


def check_function(
    name: str,
    learner_fn: Callable[..., Any],
    reference_fn: Callable[..., Any],
    cases: Iterable[Case],
    mistakes: Sequence[Mistake] = (),
    atol: float = 1e-5,
    rtol: float = 1e-4,
    *,
    atol64: float = ATOL64,
    rtol64: float = RTOL64,
    grad: Sequence[str] = (),
    names: Sequence[str] = (),
    hints: Sequence[Callable[[Any, Mapping[str, Any]], str | None]] = (),
) -> int:
    """Check ``learner_fn`` against ``reference_fn`` on every case; return the number of cases run.

    Float64 cases (any float64 tensor input) use ``atol64``/``rtol64``. ``grad`` names the inputs the
    output is differentiated with respect to (see :func:`check_gradients`); ``names`` names the items
    of a tuple result. ``hints`` are ``hint(actual, kwargs) -> message | None`` for mistakes that are a
    property of the answer rather than one wrong output (e.g. rows that sum to the wrong total); they
    are consulted when no :class:`Mistake` matched. Raises :class:`CheckFailed` with a diagnosis on the
    first case that differs.
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
        f64 = _is_float64_case(kwargs)
        tol = (atol64, rtol64) if f64 else (atol, rtol)
        mistake_outputs: list[tuple[str, Any]] = []
        if not _close(actual, expected, *tol):
            for mistake in mistakes:
                try:
                    out = mistake.fn(**_clone_kwargs(pristine))
                except Exception:  # noqa: BLE001 - a mistake that cannot run on this case is skipped
                    continue
                if not _close(out, expected, *tol):  # a mistake that is right on this case says nothing
                    mistake_outputs.append((mistake.message, out))
        context = _describe_inputs(kwargs) + (f"; {case.label}" if case.label else "")
        try:
            compare(actual, expected, what=f"{name}(...)", atol=tol[0], rtol=tol[1], mistakes=mistake_outputs,
                    context=context, names=names, loose=(atol, rtol) if f64 else None,
                    int_inputs=_int_inputs_only(kwargs))
        except CheckFailed as err:
            if "Likely mistake" not in str(err):
                for hint in hints:
                    msg = hint(actual, pristine)
                    if msg:
                        raise CheckFailed(f"{name}(...) is wrong (inputs: {context}). Likely mistake: {msg}") from None
            raise
        wrt = [k for k in grad if isinstance(kwargs.get(k), torch.Tensor) and kwargs[k].is_floating_point()]
        if wrt:
            check_gradients(name, learner_fn, reference_fn, pristine, wrt, *tol, context=context)
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
