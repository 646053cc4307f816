"""User-defined Monte Carlo models: their declaration, their streams, and one chunk's sums.

A model is a plain function that returns ``n`` samples of one or more named float
outputs: an array of shape ``(n,)`` for one output, ``(n, k)`` for ``k``, or a mapping of
output names to ``(n,)`` arrays. It takes its randomness in one of two forms:

* **generator form**: ``f(rng, n, **params)`` draws from a numpy
  :class:`~numpy.random.Generator`, as many numbers as it likes; plain Monte Carlo only;
* **uniform form**: ``f(u, **params)`` with ``u`` an ``(n, d)`` array of uniforms in the
  open interval (0, 1), ``d`` the model's declared ``dims`` (a number, or a function of
  the parameters): each sample a fixed function of its ``d`` uniforms (transform them
  by inverse CDFs). The same function runs under either sampler: plain Monte Carlo
  feeds it uniforms from the block's PCG64 stream, randomized QMC scrambled Sobol'
  points (:mod:`mcpi.core.sampler`).

:func:`model` declares either::

    @model("call", outputs=("price",), params={"S": 100.0, "K": 100.0}, exact=...)
    def call(rng, n, S, K): ...

    @model("call", outputs=("price",), dims=1, params={"S": 100.0, "K": 100.0}, exact=...)
    def call(u, S, K): ...

Streams. A sample may use any number of random draws (rejection sampling, walks), so a
job's stream cannot be addressed by draw position the way the π kernel is. Instead the
samples [0, N) are cut into fixed **blocks** of ``block`` samples (part of the job's
identity), and block ``k`` gets its own generator, PCG64 seeded by
``SeedSequence(seed, spawn_key=(k,))``, numpy's recommended way to make independent
streams (never ``seed + k``). A chunk is a whole number of blocks, so a chunk's result
is a pure function of (model, params, seed, block, its blocks), whoever computes it.
A generator costs tens of µs to build, which blocks of thousands of samples amortise.

Sums. Each output's Σx and Σx² are kept as exact integers (:mod:`mcpi.core.exact`), so
the job's statistics are bit-identical however the blocks were grouped into chunks.
Only sums leave a worker, never samples: memory is bounded by one batch of blocks.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mcpi.core import sobol
from mcpi.core.exact import MAX_MAGNITUDE, ExactMoments, NotFinite, exact_sum
from mcpi.core.sampler import batch_points
from mcpi.core.tallies import NO_TALLIES, Histogram, Tallies

#: Samples per block unless a model declares its own: enough to amortise a
#: generator's construction (~40 µs) over cheap samples, few enough that a slow model's
#: block (1 ms a sample: 4 s) still leaves room to split a job.
DEFAULT_BLOCK = 4096
#: The largest block: a block's samples are held in memory at once.
MAX_BLOCK = 1 << 20

_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

ParamValue = int | float
Samples = np.ndarray | Mapping[str, np.ndarray]
ChunkSums = Callable[[int, int, int, Mapping[str, ParamValue]], tuple[int, ...]]
#: A uniform-form model's dimension: a number, or a function of its parameters.
Dims = int | Callable[..., int]


class ModelError(ValueError):
    """A model that cannot be run as declared: bad declaration, parameters or output."""


class UnknownModel(ModelError):
    """No model of that name is installed (or loadable)."""


@dataclass(frozen=True, slots=True)
class Param:
    """A model parameter: its type (int or float) and default (None: required)."""

    name: str
    kind: type
    default: ParamValue | None = None

    def convert(self, value: Any) -> ParamValue:
        """``value`` (a number, or text from the command line) as this parameter's type."""
        if isinstance(value, str):
            text = value.strip()
            try:
                value = int(text, 0) if self.kind is int else float(text)
            except ValueError:
                raise ModelError(
                    f"parameter {self.name} must be {_kind_name(self.kind)}, not {value!r}"
                ) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ModelError(
                f"parameter {self.name} must be {_kind_name(self.kind)}, not {value!r}"
            )
        if not math.isfinite(value):
            raise ModelError(f"parameter {self.name} must be finite, not {value!r}")
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ModelError(f"parameter {self.name} must be an integer, not {value!r}")
            return int(value)
        return float(value)


@dataclass(frozen=True)
class Control:
    """A control variate of a model of uniforms: a function of the same uniforms (and
    the parameters) whose mean, a function of the parameters, is known exactly
    (:mod:`mcpi.core.control`)."""

    name: str
    function: Callable[..., Any]
    mean: Callable[..., float] | float

    def known_mean(self, params: Mapping[str, ParamValue]) -> float:
        value = float(self.mean(**params) if callable(self.mean) else self.mean)
        if not math.isfinite(value):
            raise ModelError(f"control {self.name}: its mean must be finite, not {value!r}")
        return value


@dataclass(frozen=True, eq=False)
class Model:
    """A declared model: a generator-form ``function``, a uniform-form ``uniform`` (with
    its ``dims``), or both (a built-in keeps its generator form for plain Monte Carlo,
    so that its answers for a seed stay what they were). Call it like a generator-form
    function: ``model(rng, n, **params)``."""

    name: str
    function: Callable[..., Samples] | None
    outputs: tuple[str, ...]
    params: Mapping[str, Param] = field(default_factory=dict)
    #: Exact expected values per output, where known: a mapping, or a function of the
    #: parameters returning one.
    exact: Mapping[str, float] | Callable[..., Mapping[str, float]] | None = None
    block: int = DEFAULT_BLOCK
    version: str = "0"
    description: str = ""
    #: A fast path computing a chunk's sums directly from (seed, start, stop, params)
    #: instead of per-block samples: the π model's positional dart kernel.
    chunk_sums: ChunkSums | None = None
    #: Checks a parameter set (raising ValueError with the reason) when a job is
    #: made, so that bad values are refused before any chunk runs.
    check: Callable[..., None] | None = None
    #: Outputs whose samples are only ever 0 or a value c (``pi``: 4·1{hit}), by name, with
    #: c: their mean is c times a binomial proportion, reported with Wilson's interval.
    binary: Mapping[str, float] = field(default_factory=dict)
    #: What names the model's code where its source file does not (see :attr:`digest`).
    code: str | None = None
    #: The uniform form ``uniform(u, **params)``, and its dimension.
    uniform: Callable[..., Samples] | None = None
    dims: Dims | None = None
    #: Histograms every job of the model counts, by output: (low, high, bins) or
    #: (low, high, bins, "log") (:mod:`mcpi.core.tallies`).
    bins: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    #: The names of a model of uniforms' inputs, one per uniform (for its Sobol'
    #: indices: :mod:`mcpi.core.sensitivity`); empty: x1 … xd.
    inputs: tuple[str, ...] = ()
    #: Control variates a job may ask for (``run --control NAME``), by name.
    controls: Mapping[str, Control] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.function is None and self.uniform is None:
            raise ModelError(f"model {self.name}: give a function of rng and n, or of u")
        if (self.uniform is None) != (self.dims is None):
            raise ModelError(f"model {self.name}: a model of uniforms declares its dims")
        if isinstance(self.dims, bool) or (isinstance(self.dims, int) and self.dims < 1):
            raise ModelError(f"model {self.name}: dims is a positive number of uniforms")
        if not _NAME.fullmatch(self.name):
            raise ModelError(
                f"model name {self.name!r} must be lower case letters, digits, '_', '.' or '-'"
            )
        if not self.outputs or len(set(self.outputs)) != len(self.outputs):
            raise ModelError(f"model {self.name}: outputs must be distinct names")
        for output in self.outputs:
            if not _PARAM.fullmatch(output):
                raise ModelError(f"model {self.name}: output name {output!r} is not a name")
        if not 1 <= self.block <= MAX_BLOCK:
            raise ModelError(f"model {self.name}: block must be 1 to {MAX_BLOCK} samples")
        for output, value in self.binary.items():
            if output not in self.outputs or not (math.isfinite(value) and value > 0):
                raise ModelError(f"model {self.name}: binary outputs are outputs with a value > 0")
        object.__setattr__(self, "bins", {k: self._bins(k, v) for k, v in self.bins.items()})
        if self.inputs and (
            self.uniform is None
            or len(set(self.inputs)) != len(self.inputs)
            or not all(isinstance(i, str) and _PARAM.fullmatch(i) for i in self.inputs)
            or (isinstance(self.dims, int) and len(self.inputs) != self.dims)
        ):
            raise ModelError(
                f"model {self.name}: inputs are distinct names, one per uniform of a model "
                "of uniforms"
            )
        for name in self.controls:
            if self.uniform is None or not _PARAM.fullmatch(name) or name in self.outputs:
                raise ModelError(
                    f"model {self.name}: control {name!r} must be a name, not an output's, "
                    "of a model of uniforms"
                )

    def _bins(self, output: str, declared: Any) -> tuple[float, float, int, bool]:
        """A declared histogram as (low, high, bins, log), checked."""
        where = f"model {self.name}: bins of {output!r}"
        if output not in self.outputs:
            raise ModelError(f"{where}: no such output")
        if not isinstance(declared, tuple | list) or len(declared) not in (3, 4):
            raise ModelError(f"{where}: give (low, high, bins) or (low, high, bins, 'log')")
        log = len(declared) == 4
        if log and declared[3] != "log":
            raise ModelError(f"{where}: the fourth item is 'log', for log-spaced bins")
        try:
            spec = (float(declared[0]), float(declared[1]), int(declared[2]), log)
            Histogram(0, *spec)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{where}: {exc}") from None
        return spec

    def __call__(self, rng: np.random.Generator, n: int, **params: ParamValue) -> Samples:
        return self.generate(rng, n, params)

    def generate(
        self, rng: np.random.Generator, n: int, params: Mapping[str, ParamValue]
    ) -> Samples:
        """``n`` plain Monte Carlo samples from ``rng``: the generator form, or the uniform
        form fed the generator's uniforms (:func:`generator_uniforms`)."""
        if self.function is not None:
            return self.function(rng, n, **params)
        assert self.uniform is not None
        return self.uniform(generator_uniforms(rng, n, self.dimension(params)), **params)

    def with_uniform(self, uniform: Callable[..., Samples], dims: Dims) -> Model:
        """This model with a uniform form too (its generator form staying for plain Monte
        Carlo): what a built-in does, so that its plain Monte Carlo answers stay the same."""
        return replace(self, uniform=uniform, dims=dims)

    def dimension(self, params: Mapping[str, ParamValue]) -> int:
        """How many uniforms a sample takes with ``params`` (a uniform-form model only)."""
        dims = self.dims
        if dims is None:
            raise ModelError(f"model {self.name} takes a generator, not uniforms")
        value = dims(**params) if callable(dims) else dims
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelError(f"model {self.name}: dims must be a positive integer, not {value!r}")
        return value

    def bind(self, given: Mapping[str, Any]) -> dict[str, ParamValue]:
        """The full parameter set: ``given`` checked and converted, defaults filled in."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            known = ", ".join(self.params) or "none"
            raise ModelError(
                f"model {self.name} has no parameter {unknown[0]} (its parameters: {known})"
            )
        bound: dict[str, ParamValue] = {}
        for name, param in self.params.items():
            if name in given:
                bound[name] = param.convert(given[name])
            elif param.default is None:
                raise ModelError(f"model {self.name} needs --param {name}=VALUE")
            else:
                bound[name] = param.default
        if self.check is not None:
            try:
                self.check(**bound)
            except ValueError as exc:
                raise ModelError(f"model {self.name}: {exc}") from None
        return bound

    def exact_values(self, params: Mapping[str, ParamValue]) -> dict[str, float]:
        """The declared exact value of each output that has one."""
        exact = self.exact
        if exact is None:
            return {}
        values = exact(**params) if callable(exact) else exact
        return {k: float(v) for k, v in values.items() if k in self.outputs}

    @property
    def digest(self) -> str:
        """What names the model's code, which workers must run too: the SHA-256 of the
        file that defines it, or its declared :attr:`code` (the built-in ``pi``'s is the
        dart kernel's stream, whose answers the tests pin, so that hubs and workers of
        other mcpi releases still agree on it)."""
        function = self.uniform if self.uniform is not None else self.function
        assert function is not None
        return self.code or source_digest(function)

    def call(self, given: Mapping[str, Any]) -> ModelCall:
        """What a job of this model with parameters ``given`` sends to the workers."""
        return ModelCall(
            name=self.name,
            params=tuple(sorted(self.bind(given).items())),
            block=self.block,
            version=self.version,
            digest=self.digest,
            outputs=self.outputs,
        )

    def with_inputs(self, *names: str) -> Model:
        """This model with its uniforms named (see :attr:`inputs`)."""
        return replace(self, inputs=tuple(names))

    def with_control(
        self, name: str, function: Callable[..., Any], mean: Callable[..., float] | float
    ) -> Model:
        """This model with a control variate ``name``: ``function(u, **params)`` of known
        ``mean`` (a number, or a function of the parameters)."""
        if self.uniform is None:
            raise ModelError(
                f"model {self.name} takes a generator (rng, n): a control is a function of "
                "its uniforms u (declare dims=, and a function of u)"
            )
        return replace(self, controls={**self.controls, name: Control(name, function, mean)})

    def as_design(
        self, uniform: Callable[..., Any], outputs: tuple[str, ...], **more: Any
    ) -> Model:
        """A design built around this model (:mod:`mcpi.core.design`): ``uniform(u,
        **params)`` giving ``outputs``, with none of the model's exact answers, binary
        outputs, histograms, counting kernel or controls (they are of the model's own
        outputs), and the model's digest as its code, which a worker's design must match.
        ``more``: further fields (a Saltelli design's ``dims`` and ``inputs``)."""
        return replace(
            self,
            function=None,
            uniform=uniform,
            outputs=outputs,
            exact=None,
            binary={},
            bins={},
            chunk_sums=None,
            controls={},
            code=self.digest,
            **more,
        )


def model(
    name: str | None = None,
    *,
    outputs: tuple[str, ...] | list[str] = ("value",),
    params: Mapping[str, ParamValue | type] | None = None,
    exact: Mapping[str, float] | Callable[..., Mapping[str, float]] | None = None,
    block: int = DEFAULT_BLOCK,
    version: str = "0",
    description: str | None = None,
    check: Callable[..., None] | None = None,
    binary: Mapping[str, float] | None = None,
    dims: Dims | None = None,
    bins: Mapping[str, tuple[Any, ...]] | None = None,
    inputs: tuple[str, ...] | list[str] | None = None,
) -> Callable[[Callable[..., Samples]], Model]:
    """Declare a model: a decorator over ``function(rng, n, **params)``, or with ``dims``
    over ``function(u, **params)``, ``u`` an ``(n, dims)`` array of uniforms in (0, 1)
    (a uniform-form model: it runs under randomized QMC too).

    ``params`` maps each parameter to its default (its type is the default's) or to a
    type (``int`` or ``float``: a required parameter). ``check(**params)`` raises
    ValueError for values the model cannot take: they are refused with its message
    before a job (or any job of a sweep) runs. ``binary`` names outputs whose samples
    are only ever 0 or a value c (an indicator times c), with c: their mean is c times a
    proportion, reported with Wilson's interval, which stays honest for rare events
    (a job whose sums say otherwise fails). ``bins`` declares histograms every job
    counts, by output: ``{"loss": (0, 1e6, 100)}``, or ``(1, 1e6, 60, "log")``.
    ``inputs`` names a model of uniforms' inputs, one per column of ``u``, for its
    Sobol' indices (``mcpi-hub sensitivity``): ``inputs=("x1", "x2", "x3")``.

    >>> @model("coin", outputs=("heads",), exact={"heads": 0.5})
    ... def coin(rng, n):
    ...     return rng.random(n) < 0.5
    >>> coin.name, coin.outputs, coin.exact_values({})
    ('coin', ('heads',), {'heads': 0.5})
    """

    def declare(function: Callable[..., Samples]) -> Model:
        uniform = dims is not None
        return Model(
            name=name or function.__name__.replace("_", "-"),
            function=None if uniform else function,
            uniform=function if uniform else None,
            dims=dims,
            outputs=tuple(outputs),
            params=_params(params or {}),
            exact=exact,
            block=block,
            version=version,
            check=check,
            binary=dict(binary or {}),
            bins=dict(bins or {}),
            inputs=tuple(inputs or ()),
            description=description
            if description is not None
            else (inspect.getdoc(function) or "").split("\n", 1)[0],
        )

    return declare


def _params(declared: Mapping[str, ParamValue | type]) -> dict[str, Param]:
    params = {}
    for name, spec in declared.items():
        if not _PARAM.fullmatch(name):
            raise ModelError(f"parameter name {name!r} is not a name")
        if spec is int or spec is float:
            params[name] = Param(name, spec)
        elif isinstance(spec, (int, float)) and not isinstance(spec, bool):
            params[name] = Param(name, type(spec), spec)
        else:
            raise ModelError(f"parameter {name}: give a default number, or int or float")
    return params


def _kind_name(kind: type) -> str:
    return "an integer" if kind is int else "a number"


_DIGESTS: dict[str, str] = {}


def source_digest(function: Callable[..., Any]) -> str:
    """SHA-256 (first 16 hex digits) of the file that defines ``function``."""
    try:
        path = inspect.getsourcefile(function)
    except TypeError:
        path = None
    if path is None:
        return "unknown"
    if path not in _DIGESTS:
        try:
            _DIGESTS[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
        except OSError:
            return "unknown"
    return _DIGESTS[path]


@dataclass(frozen=True, slots=True)
class ModelCall:
    """A model job's identity as the workers see it: name, parameters, block, code.

    ``version`` and ``digest`` name the code the hub has; a worker with other code
    refuses the chunk rather than compute something else.
    """

    name: str
    params: tuple[tuple[str, ParamValue], ...]
    block: int
    version: str
    digest: str
    outputs: tuple[str, ...] = ("value",)
    #: The output whose Sobol' indices the job estimates: its chunks then run the
    #: model's Saltelli design, whose outputs ``outputs`` are (:mod:`mcpi.core.sensitivity`).
    #: In JSON, a design: ``{"kind": "sobol", "output": NAME}`` (a worker that does not
    #: know a design's kind refuses the chunk).
    sensitivity: str | None = None
    #: The control variate the job's chunks add (:mod:`mcpi.core.control`): its value
    #: and each output's product with it are then outputs too. In JSON, a design:
    #: ``{"kind": "control", "control": NAME}``.
    control: str | None = None
    #: Whether each sample is an antithetic pair (:mod:`mcpi.core.antithetic`): its
    #: outputs are then the pairs' means, then each output's value at u alone. In JSON,
    #: a design: ``{"kind": "antithetic"}``.
    antithetic: bool = False

    @property
    def width(self) -> int:
        """Sums per chunk result: Σx and Σx² of each output."""
        return 2 * len(self.outputs)

    @property
    def kwargs(self) -> dict[str, ParamValue]:
        return dict(self.params)

    def to_json(self) -> dict[str, Any]:
        message = {
            "name": self.name,
            "params": dict(self.params),
            "block": self.block,
            "version": self.version,
            "digest": self.digest,
            "outputs": list(self.outputs),
        }
        if self.sensitivity is not None:
            message["design"] = {"kind": SOBOL_DESIGN, "output": self.sensitivity}
        if self.control is not None:
            message["design"] = {"kind": CONTROL_DESIGN, "control": self.control}
        if self.antithetic:
            message["design"] = {"kind": ANTITHETIC_DESIGN}
        return message

    @classmethod
    def from_json(cls, message: Any) -> ModelCall:
        if not isinstance(message, dict):
            raise ModelError("a model call is an object")
        name, params, block = message.get("name"), message.get("params"), message.get("block")
        version, digest = message.get("version"), message.get("digest")
        outputs = message.get("outputs")
        kind, named = _design(message.get("design"))
        if not (
            isinstance(outputs, list)
            and outputs
            and all(isinstance(o, str) and _PARAM.fullmatch(o) for o in outputs)
        ):
            raise ModelError("a model call needs its output names")
        if not (isinstance(name, str) and _NAME.fullmatch(name)):
            raise ModelError("a model call needs a model name")
        if not isinstance(params, dict) or not all(
            isinstance(k, str)
            and isinstance(v, (int, float))
            and not isinstance(v, bool)
            and math.isfinite(v)
            for k, v in params.items()
        ):
            raise ModelError("model parameters must be finite numbers")
        if isinstance(block, bool) or not isinstance(block, int) or not 1 <= block <= MAX_BLOCK:
            raise ModelError("invalid model block size")
        if not (isinstance(version, str) and isinstance(digest, str)):
            raise ModelError("a model call needs the model's version and digest")
        return cls(
            name,
            tuple(sorted(params.items())),
            block,
            version,
            digest,
            tuple(outputs),
            named if kind == SOBOL_DESIGN else None,
            named if kind == CONTROL_DESIGN else None,
            kind == ANTITHETIC_DESIGN,
        )

    def check(self, model: Model) -> None:
        """Refuse to run ``model`` for this call unless it is the same code."""
        if model.outputs != self.outputs:
            raise ModelError(
                f"model {self.name}: this worker's outputs are {list(model.outputs)}, "
                f"the job's {list(self.outputs)}"
            )
        if (model.version, model.digest) != (self.version, self.digest):
            raise ModelError(
                f"model {self.name}: this worker has version {model.version} "
                f"(code {model.digest}), the job needs {self.version} (code {self.digest})"
            )


#: The kinds of design a model call may carry, and what each names: Sobol' indices
#: (:attr:`ModelCall.sensitivity`, an output), a control variate (:attr:`ModelCall.control`,
#: a control) and antithetic pairs (:attr:`ModelCall.antithetic`, nothing).
SOBOL_DESIGN = "sobol"
CONTROL_DESIGN = "control"
ANTITHETIC_DESIGN = "antithetic"
_DESIGN_NAMES = {SOBOL_DESIGN: "output", CONTROL_DESIGN: "control", ANTITHETIC_DESIGN: None}


def _design(design: Any) -> tuple[str | None, str | None]:
    """(kind, what it names) of a model call's design (both None: no design)."""
    if design is None:
        return None, None
    kind = design.get("kind") if isinstance(design, dict) else design
    if not isinstance(design, dict) or kind not in _DESIGN_NAMES:
        raise ModelError(f"a model call's design is of a kind this mcpi does not know: {kind!r}")
    field_name = _DESIGN_NAMES[kind]
    if field_name is None:
        return kind, None
    name = design.get(field_name)
    if not (isinstance(name, str) and _PARAM.fullmatch(name)):
        raise ModelError(f"a model call's {kind} design names its {field_name}")
    return kind, name


def block_generator(seed: int, block: int) -> np.random.Generator:
    """The generator of block ``block`` of job seed ``seed``: an independent spawned stream."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(block,))))


def chunk_sums(
    model: Model,
    call: ModelCall,
    seed: int,
    start: int,
    stop: int,
    tallies: Tallies = NO_TALLIES,
) -> tuple[int, ...]:
    """Exact (Σx, Σx²) of each output over samples [start, stop), whole blocks of ``call``,
    then the counts of ``tallies`` (:mod:`mcpi.core.tallies`).

    >>> normal = model("normal", block=100)(lambda rng, n: rng.standard_normal(n))
    >>> call = normal.call({})
    >>> whole = chunk_sums(normal, call, 7, 0, 800)
    >>> halves = [chunk_sums(normal, call, 7, a, a + 400) for a in (0, 400)]
    >>> whole == tuple(map(sum, zip(*halves)))
    True
    """
    block = call.block
    if start % block or stop % block or not 0 <= start <= stop:
        raise ModelError(f"samples [{start}, {stop}) are not whole blocks of {block}")
    params = call.kwargs
    if model.chunk_sums is not None:
        if tallies.items:
            raise ModelError(f"model {model.name} counts its samples, it does not draw them")
        return model.chunk_sums(seed, start, stop, params)
    blocks = range(start // call.block, stop // call.block)
    if not tallies.items:
        plain = _plain_moments(model, params, seed, blocks, call.block)
        if plain is not None:
            return plain
    return _exact_moments(
        model,
        # The sums find a non-finite sample (or square) on their way: only a bad block
        # pays for a second look, to say which output it was.
        (
            (block_samples(model, params, seed, b, call.block, check=False), f"block {b}")
            for b in blocks
        ),
        tallies,
    )


def _plain_moments(
    model: Model, params: Mapping[str, ParamValue], seed: int, blocks: range, n: int
) -> tuple[int, int] | None:
    """(Σx, Σx²) of the common case, one output of one array per block from the
    generator form, as :func:`_exact_moments` sums it; None where that one must look
    (another model, a block that is not a finite float64 array of ``n``, a model that
    raised): it computes the chunk again, and names the block and the fault.

    Its loop is the per-sample work of a model job whose samples are cheap (the call: 20 ns
    a sample), so it does without what a general one checks for every block: some 3 ns
    a sample, the difference to a plain numpy sum's cost.
    """
    function = model.function
    if function is None or len(model.outputs) != 1 or model.binary:
        return None
    total = ExactMoments()
    try:
        for b in blocks:
            values = function(block_generator(seed, b), n, **params)
            if type(values) is not np.ndarray or values.dtype != np.float64 or values.shape != (n,):
                return None
            total.add(values)
    except Exception:  # noqa: BLE001 - a model may raise anything; the general path names it
        return None
    return total.sums()


def _exact_moments(
    model: Model, parts: Iterable[tuple[np.ndarray, str]], tallies: Tallies = NO_TALLIES
) -> tuple[int, ...]:
    """Each output's exact (Σx, Σx²) over ``parts``, each (outputs × n samples, its name),
    then the counts of ``tallies``; a part with a non-finite sample fails, naming the
    output and the part."""
    totals = [ExactMoments() for _ in model.outputs]
    counts = np.zeros(tallies.slots, dtype=np.int64)
    # A binary output's samples are 0 or c: counting the cs gives its sums exactly
    # (k·c and k·c², the same integers), at a fraction of the cost. A part with any other
    # value takes the general pass, so that the hub's check sees it.
    binary = [model.binary.get(output) for output in model.outputs]
    counted = [0] * len(totals)
    for values, part in parts:
        try:
            for j, total in enumerate(totals):
                row, value = values[j], binary[j]
                if value is not None:
                    hits = int(np.count_nonzero(row == value))
                    if hits + int(np.count_nonzero(row == 0.0)) == row.size:
                        counted[j] += hits
                        continue
                total.add(row)
        except NotFinite:
            check_samples(model, values, part)
            raise
        if tallies.items:  # after the sums: a non-finite sample has failed the part
            counts += tallies.count(values)
    sums: list[int] = []
    for total, value, hits in zip(totals, binary, counted, strict=True):
        s1, s2 = total.sums()
        if hits:
            assert value is not None
            s1 += hits * exact_sum(np.array([value]))
            s2 += hits * exact_sum(np.array([value * value]))
        sums += (s1, s2)
    return (*sums, *(int(c) for c in counts))


def rqmc_chunk_sums(
    model: Model,
    call: ModelCall,
    seed: int,
    replicates: int,
    replicate: int,
    first: int,
    stop: int,
    tallies: Tallies = NO_TALLIES,
) -> tuple[int, ...]:
    """Exact sums of points [first, stop) of replicate ``replicate``'s scrambled Sobol'
    sequence, fed to the model's uniform form: that replicate's (Σx, Σx²) per output and
    its counts of ``tallies``, in its slots of a vector of ``replicates`` such groups
    (zero elsewhere).

    >>> square = model("square", dims=1, block=8)(lambda u: u[:, 0] ** 2)
    >>> call = square.call({})
    >>> whole = rqmc_chunk_sums(square, call, 7, 8, 3, 0, 64)
    >>> halves = [rqmc_chunk_sums(square, call, 7, 8, 3, a, a + 32) for a in (0, 32)]
    >>> whole == tuple(map(sum, zip(*halves))) and whole[:6] == (0,) * 6 and whole[6] > 0
    True
    """
    params = call.kwargs
    dims = model.dimension(params)
    if model.uniform is None:
        raise ModelError(f"model {model.name} takes a generator, not uniforms")
    uniform = model.uniform
    # The same arrays, whatever the split: chunks hold whole, aligned batches.
    batch = batch_points(dims)

    def batches() -> Iterator[tuple[np.ndarray, str]]:
        for a in range(first, stop, batch):
            b = min(a + batch, stop)
            part = f"points [{a}, {b}) of replicate {replicate}"
            u = sobol.uniforms(seed, replicate, dims, a, b)
            try:
                produced = uniform(u, **params)
            except Exception as exc:  # noqa: BLE001  (a model may raise anything: name it)
                raise ModelError(
                    f"model {model.name} raised in {part}: {type(exc).__name__}: {exc}"
                ) from None
            yield as_samples(model, produced, b - a, part), part

    sums = _exact_moments(model, batches(), tallies)
    group = len(sums)
    placed = [0] * (group * replicates)
    placed[group * replicate : group * (replicate + 1)] = sums
    return tuple(placed)


def generator_uniforms(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    """``n`` points of ``dims`` uniforms in (0, 1) from ``rng``'s raw 64-bit draws, each
    the centre of its cell of width 2⁻⁵², as Sobol' coordinates are
    (:func:`mcpi.core.sobol.to_unit`): plain Monte Carlo for a uniform-form model.

    >>> u = generator_uniforms(np.random.default_rng(1), 1000, 3)
    >>> u.shape, bool((u > 0).all() and (u < 1).all())
    ((1000, 3), True)
    """
    return sobol.to_unit(rng.bit_generator.random_raw(n * dims)).reshape(n, dims)


def block_samples(
    model: Model,
    params: Mapping[str, ParamValue],
    seed: int,
    block: int,
    n: int,
    check: bool = True,
) -> np.ndarray:
    """Block ``block``'s samples as an (outputs, n) float64 array, checked (with ``check``
    also each sample's magnitude, see :func:`check_samples`)."""
    try:
        produced = model.generate(block_generator(seed, block), n, params)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001  (a model may raise anything: name it, one line)
        raise ModelError(
            f"model {model.name} raised in block {block}: {type(exc).__name__}: {exc}"
        ) from None
    values = as_samples(model, produced, n, f"block {block}")
    if check:
        check_samples(model, values, f"block {block}")
    return values


def as_samples(model: Model, produced: Any, n: int, part: str) -> np.ndarray:
    """A model's return value for ``part`` of a job (``"block 5"``) as an (outputs, n)
    float64 array of the declared shape."""
    width = len(model.outputs)
    if (  # the common case, taken before the general checks below: they cost ~1 µs a block
        width == 1
        and type(produced) is np.ndarray
        and produced.dtype == np.float64
        and produced.shape == (n,)
    ):
        return produced.reshape(1, n)
    where = f"model {model.name}, {part}"
    if isinstance(produced, Mapping):
        missing = [o for o in model.outputs if o not in produced]
        extra = [k for k in produced if k not in model.outputs]
        if missing or extra:
            raise ModelError(
                f"{where}: returned outputs {sorted(map(str, produced))}, declared "
                f"{list(model.outputs)}"
            )
        columns = [_array(where, produced[o]) for o in model.outputs]
        if any(c.shape != (n,) for c in columns):
            shapes = [c.shape for c in columns]
            raise ModelError(f"{where}: each output must have shape ({n},), not {shapes}")
        values = np.stack(columns)
    else:
        array = _array(where, produced)
        expected = (n,) if width == 1 else (n, width)
        if array.shape == (n, 1) and width == 1:
            array = array.reshape(n)
        if array.shape != expected:
            raise ModelError(f"{where}: returned shape {array.shape}, expected {expected}")
        values = array.reshape(1, n) if width == 1 else np.ascontiguousarray(array.T)
    return values


def check_samples(model: Model, values: np.ndarray, part: str) -> None:
    """Raise ModelError, naming the output and ``part`` of the job, if a sample is NaN,
    infinite, or too large to square (``|x| >= MAX_MAGNITUDE``)."""
    where = f"model {model.name}, {part}"
    # Two reductions, no temporary, catch all three (NaN propagates through min and max);
    # only a bad block pays for finding out which.
    if (
        values.size
        and not -MAX_MAGNITUDE < float(values.min()) <= float(values.max()) < MAX_MAGNITUDE
    ):
        finite = np.isfinite(values)
        if not finite.all():
            output = model.outputs[int(np.flatnonzero(~finite.all(axis=1))[0])]
            raise ModelError(f"{where}: output {output} has NaN or infinite samples")
        raise ModelError(f"{where}: samples above {MAX_MAGNITUDE:.3g} cannot be squared")


def _array(where: str, produced: Any) -> np.ndarray:
    try:
        array = np.asarray(produced)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{where}: returned {type(produced).__name__}, not an array") from exc
    if array.dtype.kind not in "biuf":
        raise ModelError(f"{where}: returned dtype {array.dtype}, not numbers")
    return array.astype(np.float64, copy=False)
