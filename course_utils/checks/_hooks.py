"""Side-effect checks for exercises that put hooks on a model (chapters 0 and 1 and later).

A hook helper must leave the model as it found it: no hook of its own left behind (also when the
forward pass raises), the caller's other hooks still registered, the train/eval mode of every module
unchanged, the parameters untouched, and autograd switched back on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from course_utils.checks._core import CheckFailed


class FailsAfter(nn.Module):
    """A model whose forward pass raises after ``layer`` has run: a hook that is not removed in a
    ``finally:`` block survives it."""

    def __init__(self, d_in: int = 3, d_out: int = 2) -> None:
        super().__init__()
        self.layer = nn.Linear(d_in, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.layer(x)
        raise RuntimeError("this model fails on purpose (testing that the hook is removed anyway)")


@dataclass(frozen=True)
class ModelState:
    """What a hook helper must not change: hooks per module, train/eval flags, parameters."""

    hooks: dict[str, tuple[int, ...]]
    training: dict[str, bool]
    params: dict[str, torch.Tensor]
    requires_grad: dict[str, bool]


def _hook_ids(module: nn.Module) -> tuple[int, ...]:
    return (*module._forward_hooks.keys(), *module._forward_pre_hooks.keys(), *module._backward_hooks.keys())


def snapshot(model: nn.Module) -> ModelState:
    """The state of ``model`` that :func:`assert_untouched` compares against."""
    return ModelState(
        hooks={n: _hook_ids(m) for n, m in model.named_modules()},
        training={n: m.training for n, m in model.named_modules()},
        params={n: p.detach().clone() for n, p in model.named_parameters()},
        requires_grad={n: p.requires_grad for n, p in model.named_parameters()},
    )


def _where(name: str) -> str:
    return f"model.{name}" if name else "the model"


def assert_untouched(fn_name: str, model: nn.Module, before: ModelState) -> None:
    """Side effects: raise :class:`CheckFailed` naming what ``fn_name`` changed on ``model``."""
    if not torch.is_grad_enabled():
        torch.set_grad_enabled(True)
        raise CheckFailed(f"{fn_name} left autograd switched off (torch.set_grad_enabled(False)?): use "
                          "`with torch.no_grad():` so that it is switched back on afterwards")
    for name, module in model.named_modules():
        now, was = _hook_ids(module), before.hooks.get(name, ())
        extra = [h for h in now if h not in was]
        if extra:
            for d in (module._forward_hooks, module._forward_pre_hooks, module._backward_hooks):
                for h in extra:
                    d.pop(h, None)
            raise CheckFailed(f"{fn_name} left its hook registered on {_where(name)}: every later forward pass "
                              "would keep recording. Keep the handle that register_forward_hook returns and call "
                              "handle.remove() (in a finally: block)")
        if any(h not in now for h in was):
            raise CheckFailed(f"{fn_name} removed a hook it did not register from {_where(name)} (the caller's "
                              "own hook): remove only your hook, with its handle, not with "
                              "module._forward_hooks.clear()")
        if module.training != before.training[name]:
            raise CheckFailed(f"{fn_name} switched {_where(name)} to {'train' if module.training else 'eval'} "
                              "mode and left it so: leave the model's train/eval mode as you found it (recording "
                              "activations needs no model.eval())")
    for name, p in model.named_parameters():
        if p.requires_grad != before.requires_grad[name]:
            raise CheckFailed(f"{fn_name} changed requires_grad of parameter {name!r}: use torch.no_grad() "
                              "instead of switching the parameters' gradients off")
        if p.dtype != before.params[name].dtype or p.device != before.params[name].device:
            raise CheckFailed(f"{fn_name} converted the model's parameter {name!r} to {p.dtype} on {p.device.type} "
                              f"(model.float(), model.to(...) work in place): leave the model as it was; "
                              "convert the input to the model's dtype instead if needed")
        if not torch.equal(p.detach(), before.params[name]):
            raise CheckFailed(f"{fn_name} changed the parameter {name!r} of the model: recording must not modify it")


def call_on_failing_model(fn: Callable[..., Any], kwargs: Mapping[str, Any], fn_name: str) -> None:
    """Side effects on error: call ``fn`` with a model whose forward pass raises; its hook must be gone."""
    model = kwargs["model"]
    before = snapshot(model)
    try:
        fn(**kwargs)
    except NotImplementedError:
        raise
    except Exception:  # noqa: BLE001 - the model is meant to fail; what matters is the hook afterwards
        pass
    torch.set_grad_enabled(True)  # a no_grad context exited by the exception has restored it already
    if any(_hook_ids(m) != before.hooks[n] for n, m in model.named_modules()):
        for m in model.modules():
            m._forward_hooks.clear()
        raise CheckFailed(f"{fn_name} leaves its hook registered when the forward pass raises an error: put "
                          "handle.remove() in a finally: block so that it always runs")


__all__ = ["FailsAfter", "ModelState", "assert_untouched", "call_on_failing_model", "snapshot"]
