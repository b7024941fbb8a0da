r"""Stochastic variational inference: fit a guide's parameters by stochastic gradient descent on a loss.

``SVI(model, guide, optim, loss)`` is a thin driver. Each :meth:`SVI.step` evaluates
``loss.differentiable_loss(model, guide, *args, **kwargs)`` (an ELBO from :mod:`probdl.infer.elbo`),
collects the parameters that the model and guide declared (their unconstrained leaves in the param
store, seen through the ``param`` messages), hands the new ones to the optimizer, back-propagates,
steps the optimizer and clears the gradients::

    svi = SVI(model, guide, probdl.optim.Adam(lr=0.01), Trace_ELBO())
    result = svi.run(2000, data)          # SVIRunResult(params, losses)

Parameters are created lazily, the first time a ``param`` statement runs, so the optimizer is built
without parameters and receives each one (in a new parameter group) on the step where it first
appears. Randomness comes from the global generator (``probdl.set_rng_seed``) unless ``rng_seed`` is
given, in which case every draw of model and guide (and plate subsamples) comes from a generator
that SVI owns, so that runs are reproducible whatever else uses the global one.

Compiled steps (``jit_compile=True``): after the first step has created the parameters, the next one traces
the loss as a function of the parameters' unconstrained leaves (:func:`probdl.tensor.compile.trace_compile`);
later steps replay the recorded ops on arrays, redrawing the reparameterization noise from the same
generator, so they draw and compute exactly what eager steps would. A step is compiled only when the trace
saw no Python read of a parameter-dependent value and no random draw it cannot repeat (discrete sites,
subsampling plates), and when the replay agrees with the eager loss and gradients at compilation; it is
checked again every ``CHECK_EVERY`` steps. Data passed to ``step`` as arguments is compared with a copy at
every step and a change recompiles (after three changes the steps stay eager); data a model reads from
anywhere else (a global, a closure) must not change while compiled steps run.

References: Hoffman, Blei, Wang & Paisley, "Stochastic Variational Inference", JMLR 14, 2013;
Ranganath, Gerrish & Blei, "Black Box Variational Inference", AISTATS 2014.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ..backend import as_generator, get_array_module, get_rng
from ..handlers import seed
from ..optim import Optimizer
from ..primitives import Message, Messenger, get_param_store
from ..tensor import Tensor, no_grad
from ..tensor.compile import CompiledFunction, NotCompilable, replay_tolerance, results_agree, trace_compile

__all__ = ["SVI", "SVIRunResult"]


class SVIRunResult(NamedTuple):
    """What :meth:`SVI.run` returns.

    params: the constrained value of every parameter the model and guide declared, by name, as NumPy
        arrays (copies, detached from the param store).
    losses: the loss of each step, a NumPy array of shape (num_steps,).
    """

    params: dict[str, np.ndarray]
    losses: np.ndarray


class _CollectParams(Messenger):
    """Record the param store names of the ``param`` statements that run inside."""

    def __enter__(self) -> _CollectParams:
        self.names: dict[str, None] = {}  # ordered set
        return super().__enter__()  # type: ignore[return-value]

    def postprocess_message(self, msg: Message) -> None:
        if msg["type"] == "param":
            self.names[msg["args"][0] if msg["args"] else msg["name"]] = None


class _Compiled(NamedTuple):
    """A compiled step: the replay, the params it differentiates (name, leaf) and the arguments it was traced
    with (:func:`_snapshot`)."""

    fn: CompiledFunction
    named: list[tuple[str, Tensor]]
    arguments: tuple


def _snapshot(args: tuple, kwargs: dict) -> tuple:
    """A copy of the step's arguments, to tell whether a later step gets the same ones."""
    def copy(v: Any) -> Any:
        if isinstance(v, Tensor):
            return ("tensor", id(v), np.array(v.data, copy=True))
        if isinstance(v, np.ndarray):
            return ("array", id(v), v.copy())
        return ("value", id(v), v)

    return tuple(copy(a) for a in args), {k: copy(v) for k, v in kwargs.items()}


def _same_arguments(snapshot: tuple, args: tuple, kwargs: dict) -> bool:
    def same(saved: tuple, v: Any) -> bool:
        kind, ident, value = saved
        if kind == "value":
            try:
                return bool(v is value or v == value)
            except Exception:  # noqa: BLE001  (an object without a plain equality: not the same)
                return False
        data = v.data if isinstance(v, Tensor) else v
        return id(v) == ident and isinstance(data, np.ndarray) and data.shape == value.shape \
            and np.array_equal(data, value)

    saved_args, saved_kwargs = snapshot
    return (len(saved_args) == len(args) and all(same(s, a) for s, a in zip(saved_args, args))
            and saved_kwargs.keys() == kwargs.keys() and all(same(saved_kwargs[k], kwargs[k]) for k in kwargs))


class SVI:
    """Stochastic variational inference: minimize ``loss`` over the parameters of ``model`` and ``guide``.

    Args:
        model: a function with ``sample`` statements (and optionally ``param`` statements).
        guide: a function that samples every latent site of the model, with learnable ``param``\\ s.
        optim: a probdl optimizer built *without* parameters, e.g. ``probdl.optim.Adam(lr=0.01)``,
            ``ClippedAdam(lr=0.01, lrd=0.999)``, ``SGD(lr=1e-3, momentum=0.9)``; SVI adds the parameters
            as they appear. Learning-rate schedulers may wrap it (call their ``step()`` yourself).
        loss: an ELBO (``Trace_ELBO()``, ``TraceMeanField_ELBO()``, ``RenyiELBO()``) or any object with
            ``differentiable_loss(model, guide, *args, **kwargs) -> Tensor``, or such a callable.
        rng_seed: None to draw from the global generator; an int or a ``numpy.random.Generator`` to draw
            every step from a generator owned by this SVI.
        jit_compile: from the second step on, compile the loss and its gradients by trace and replay
            (:mod:`probdl.tensor.compile`), so a step replays the recorded ops on arrays instead of running the
            model, guide and ELBO code (see "Compiled steps" in the module docstring).
    """

    CHECK_EVERY = 500  # compiled steps between checks against the uncompiled loss

    def __init__(self, model: Callable, guide: Callable, optim: Optimizer, loss: Any, rng_seed: Any = None,
                 jit_compile: bool = False) -> None:
        for fn, what in ((model, "model"), (guide, "guide")):
            if not callable(fn):
                raise TypeError(f"SVI: the {what} must be callable, got {type(fn).__name__}")
        if isinstance(optim, type) and issubclass(optim, Optimizer):
            raise TypeError(f"SVI: optim must be an optimizer instance, got the class {optim.__name__}; build it "
                            f"without params, e.g. {optim.__name__}(lr=0.01)")
        if not isinstance(optim, Optimizer):
            raise TypeError(f"SVI: optim must be a probdl.optim Optimizer built without params (e.g. "
                            f"probdl.optim.Adam(lr=0.01)), got {type(optim).__name__}")
        held = sum(len(g["params"]) for g in optim.param_groups)
        if held:
            raise ValueError(f"SVI: the optimizer already holds {held} parameter(s); build it without params "
                             f"(e.g. {type(optim).__name__}(lr=...)): SVI adds the model's and guide's parameters "
                             "itself as they appear")
        if hasattr(loss, "differentiable_loss"):
            self._loss_fn = loss.differentiable_loss
        elif callable(loss):
            self._loss_fn = loss
        else:
            raise TypeError(f"SVI: loss must be an ELBO (e.g. Trace_ELBO()) or a callable (model, guide, *args, "
                            f"**kwargs) -> Tensor, got {type(loss).__name__}")
        self.model, self.guide, self.optim, self.loss = model, guide, optim, loss
        self.rng: np.random.Generator | None = None if rng_seed is None else as_generator(rng_seed)
        self.num_steps = 0  # steps taken so far, over all calls
        self._optimized: dict[int, Tensor] = {}  # the leaves handed to the optimizer, by id (held, so ids stay unique)
        self._param_names: dict[str, None] = {}
        self.jit_compile = bool(jit_compile)
        self._last_named: list[tuple[str, Tensor]] = []  # the params of the last eager step
        self._compiled: _Compiled | None = None
        self._compiled_steps = 0
        self._recompiles = 0
        #: why the steps are not compiled (None while they may be)
        self.why_not_compiled: str | None = None if jit_compile else "jit_compile=False"

    def _randomness(self) -> contextlib.AbstractContextManager:
        return seed(rng_seed=self.rng) if self.rng is not None else contextlib.nullcontext()

    def step(self, *args: Any, **kwargs: Any) -> float:
        """One gradient step on the loss; returns the loss before the step, as a float."""
        if self.why_not_compiled is None and self.num_steps >= 1:
            result = self._compiled_step(args, kwargs)
            if result is not None:
                return result
        value, named, grads = self._run_eagerly(args, kwargs)
        self._last_named = named
        return self._apply(value, grads, named)

    def _run_eagerly(self, args: tuple, kwargs: dict) -> tuple[float, list[tuple[str, Tensor]], list[Any]]:
        """Run model, guide and loss: the loss, the params that ran (new ones join the optimizer) and the
        gradients of their unconstrained leaves (None for a leaf the loss does not reach); no update."""
        with self._randomness(), _CollectParams() as collected:
            loss = self._loss_fn(self.model, self.guide, *args, **kwargs)
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise TypeError(f"SVI: the loss must return a scalar Tensor, got {type(loss).__name__} "
                            f"{getattr(loss, 'shape', '')}")
        value = float(loss.item())
        named = self._collect(collected.names)
        params = [p for _, p in named]
        for p in params:
            p.grad = None
        if loss.requires_grad and math.isfinite(value):
            loss.backward()
        grads = [None if p.grad is None else p.grad.data for p in params]
        for p in params:
            p.grad = None
        return value, named, grads

    def _apply(self, value: float, grads: Any, named: list[tuple[str, Tensor]]) -> float:
        """Check the loss and gradients of a step and update the parameters (compiled or eager)."""
        if not math.isfinite(value):
            raise FloatingPointError(f"SVI step {self.num_steps}: the loss is {value}; the parameters were left as "
                                     "they were before this step (try a smaller learning rate, other initial values, "
                                     "or look for a model density that is -inf or NaN at the guide's draws)")
        for (name, _), g in zip(named, grads):
            if g is not None and not bool(get_array_module(g).isfinite(g).all()):
                raise FloatingPointError(f"SVI step {self.num_steps}: the gradient of parameter {name!r} is not "
                                         "finite; the parameters were left as they were before this step")
        for (_, p), g in zip(named, grads):
            p.grad = None if g is None else Tensor._wrap(g)
        self.optim.step()
        for _, p in named:
            p.grad = None
        self.num_steps += 1
        return value

    # ------------------------------------------------------------------ compiled steps
    def _generator(self) -> np.random.Generator:
        return self.rng if self.rng is not None else get_rng()

    def _replay_agrees(self, compiled: _Compiled, args: tuple, kwargs: dict) -> tuple[bool, float, tuple]:
        """Run the step eagerly and by replay from the same generator state and compare; when they agree the
        generator ends one step further and the replay's loss and gradients are returned for that step, else it is
        back where it was (the caller runs the step eagerly)."""
        gen = self._generator()
        state = gen.bit_generator.state
        value_e, named_e, grads_e = self._run_eagerly(args, kwargs)
        gen.bit_generator.state = state
        value, grads = compiled.fn(*[p.data for _, p in compiled.named])
        grads_e = [np.zeros_like(g_c) if g_e is None else g_e for g_c, g_e in zip(grads, grads_e)]
        ok = ([n for n, _ in named_e] == [n for n, _ in compiled.named]
              and results_agree(value, grads, value_e, grads_e, replay_tolerance(np.result_type(value))))
        if not ok:  # the step runs eagerly instead, drawing what a step without compiling would
            gen.bit_generator.state = state
        return ok, float(value), grads

    def _compiled_step(self, args: tuple, kwargs: dict) -> float | None:
        """One step by replay, compiling first when needed; None when this step must run eagerly."""
        compiled = self._compiled
        if compiled is None or not _same_arguments(compiled.arguments, args, kwargs):
            if compiled is not None:
                self._recompiles += 1
                if self._recompiles > 3:
                    self.why_not_compiled = "the step's arguments change from step to step (pass mini-batches " \
                                            "through a subsampling plate instead)"
                    self._compiled = None
                    return None
            compiled = self._compile(args, kwargs)
            if compiled is None:
                return None
            ok, value, grads = self._replay_agrees(compiled, args, kwargs)
            if not ok:
                self.why_not_compiled = "the replayed loss disagreed with the ELBO at compilation"
                return None
            self._compiled = compiled
        else:
            self._compiled_steps += 1
            if self._compiled_steps % self.CHECK_EVERY == 0:
                ok, value, grads = self._replay_agrees(compiled, args, kwargs)
                if not ok:
                    warnings.warn("SVI: the compiled step disagreed with the ELBO (the model or guide depends on "
                                  "something the replay froze); continuing uncompiled. Steps since the previous "
                                  f"check (at most {self.CHECK_EVERY}) may be affected: use jit_compile=False.",
                                  RuntimeWarning, stacklevel=3)
                    self.why_not_compiled = "disagreed with the ELBO during fitting"
                    self._compiled = None
                    return None
            else:
                value, grads = compiled.fn(*[p.data for _, p in compiled.named])
        return self._apply(float(value), grads, compiled.named)

    def _compile(self, args: tuple, kwargs: dict) -> _Compiled | None:
        """Trace the loss in the params of the last eager step; None (with the reason noted) when it cannot be."""
        named = self._last_named
        gen = self._generator()
        state = gen.bit_generator.state  # the trace's draws are not the step's: the step draws what eager would
        # ... nor the agreement check's: a value the trace froze (a subsample's labels read as an index, noise read
        # as raw data) then differs between the replay and the model at that check
        gen.random()
        try:
            with self._randomness():
                fn = trace_compile(lambda: self._loss_fn(self.model, self.guide, *args, **kwargs),
                                   [p for _, p in named])
        except NotCompilable as e:
            self.why_not_compiled = str(e)
            return None
        finally:
            gen.bit_generator.state = state
        return _Compiled(fn, named, _snapshot(args, kwargs))

    def _collect(self, names: dict[str, None]) -> list[tuple[str, Tensor]]:
        """The unconstrained leaves of the params that ran; new ones join the optimizer in one new group."""
        if not names:
            raise ValueError("SVI: neither the model nor the guide declared a param, so there is nothing to optimize; "
                             "give the guide learnable parameters with probdl.param(...)")
        store = get_param_store()
        named, new = [], []
        for name in names:
            if name not in store or not store.unconstrained(name).requires_grad:
                continue  # a substituted or frozen parameter
            leaf = store.unconstrained(name)
            named.append((name, leaf))
            self._param_names[name] = None
            if id(leaf) not in self._optimized:
                new.append(leaf)
        if new:
            self.optim.add_param_group({"params": new})
            self._optimized.update((id(p), p) for p in new)
        return named

    def evaluate_loss(self, *args: Any, **kwargs: Any) -> float:
        """The loss at the current parameters, as a float; no gradients, no update."""
        with no_grad(), self._randomness():
            if hasattr(self.loss, "loss"):
                return float(self.loss.loss(self.model, self.guide, *args, **kwargs))
            return float(self._loss_fn(self.model, self.guide, *args, **kwargs).item())

    def get_params(self) -> dict[str, np.ndarray]:
        """The constrained values of the parameters SVI has optimized so far, as NumPy arrays (copies)."""
        store = get_param_store()
        with no_grad():
            return {name: np.array(store[name].numpy(), copy=True) for name in self._param_names if name in store}

    def run(self, num_steps: int, *args: Any, progress_bar: bool = True, rng_seed: Any = None,
            **kwargs: Any) -> SVIRunResult:
        """Take ``num_steps`` steps on ``(*args, **kwargs)``.

        Args:
            num_steps: how many steps, >= 1.
            progress_bar: show a tqdm bar with the running mean loss.
            rng_seed: if given (an int or a Generator), this run and later steps draw from a generator made
                from it, independent of the global one; otherwise the SVI's generator as it is.

        Returns:
            ``SVIRunResult(params, losses)``: constrained parameter values (NumPy arrays) after the last step,
            and the loss of every step.
        """
        if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
            raise ValueError(f"SVI.run: num_steps must be a positive int, got {num_steps!r}")
        if rng_seed is not None:
            self.rng = as_generator(rng_seed)
        losses = np.empty(int(num_steps))
        bar = None
        if progress_bar:
            from tqdm.auto import tqdm  # noqa: PLC0415  (a runtime dependency, loaded only when shown)

            bar = tqdm(total=int(num_steps), desc="SVI", unit="step")
        every = max(1, int(num_steps) // 50)
        try:
            for i in range(int(num_steps)):
                losses[i] = self.step(*args, **kwargs)
                if bar is not None and ((i + 1) % every == 0 or i + 1 == num_steps):
                    window = losses[max(0, i + 1 - every * 5):i + 1]
                    bar.set_postfix_str(f"init loss: {losses[0]:.4g}, avg. loss: {window.mean():.4g}", refresh=False)
                    bar.update(i + 1 - bar.n)
        finally:
            if bar is not None:
                bar.close()
        return SVIRunResult(self.get_params(), losses)
