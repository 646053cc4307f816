"""A job's model, as the hub holds it: the model, its call, and where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcpi import models
from mcpi.core.exact import OutputEstimate, output_estimate, replicate_estimate
from mcpi.core.model import Model, ModelCall, ModelError
from mcpi.core.sampler import DEFAULT_REPLICATES, MC, RQMC, Sampler
from mcpi.errors import UsageError


@dataclass(frozen=True)
class BoundModel:
    """A model with its parameters bound: what a model job runs.

    ``source`` is how the user named it: an installed model's name, or a
    ``FILE.py:NAME`` / ``MODULE:NAME`` spec that only the local pool can run.
    ``output`` is the index of the output a precision target applies to.
    """

    model: Model
    call: ModelCall
    source: str
    output: int = 0

    @property
    def local_only(self) -> bool:
        return models.is_local_spec(self.source)

    @property
    def exact(self) -> dict[str, float]:
        return self.model.exact_values(self.call.kwargs)

    def binary(self, output: int) -> float | None:
        """The value c of output ``output`` if its samples are only 0 or c, else None."""
        return self.model.binary.get(self.call.outputs[output])

    def estimates(
        self, sums: tuple[int, ...], samples: int, sampler: Sampler = MC
    ) -> list[OutputEstimate]:
        """Each output's estimate from the job's exact sums: the report's numbers. Under
        randomized QMC, from the replicates' means (Student's t); else from all samples
        (Wilson's interval for a binary output)."""
        exact = self.exact
        outputs = self.call.outputs
        if isinstance(sampler, RQMC):
            points = sampler.points(samples)
            return [
                replicate_estimate(
                    name, points, sampler.pairs(sums, len(outputs), j), exact.get(name)
                )
                for j, name in enumerate(outputs)
            ]
        return [
            output_estimate(
                name, samples, sums[2 * j], sums[2 * j + 1], exact.get(name), binary=self.binary(j)
            )
            for j, name in enumerate(outputs)
        ]

    def sampler(self, kind: str, replicates: int | None = None) -> Sampler:
        """The sampler a job of this model runs under, asked for as ``kind`` (``auto``,
        ``mc`` or ``rqmc``): ``auto`` is randomized QMC for a model of uniforms, plain Monte
        Carlo for one that takes a generator. Refused in one line if it cannot be."""
        takes_uniforms = self.model.uniform is not None
        if kind == "auto":
            kind = RQMC.kind if takes_uniforms else MC.kind
        if kind == MC.kind:
            return MC
        if kind != RQMC.kind:
            raise UsageError(f"no sampler {kind!r} (auto, mc or rqmc)")
        if not takes_uniforms:
            raise UsageError(
                f"model {self.call.name} takes a generator (rng, n): it runs plain Monte Carlo "
                "only (declare dims=, and a function of u, for randomized QMC)"
            )
        try:
            return RQMC(replicates or DEFAULT_REPLICATES, self.model.dimension(self.call.kwargs))
        except (ModelError, ValueError) as exc:
            raise UsageError(str(exc)) from None

    def record(self) -> dict[str, Any]:
        """What the job record keeps of the model (to resume it with the same code)."""
        return self.call.to_json() | {"source": self.source}

    @property
    def rate_key(self) -> str:
        """What a rate measured for this model depends on: its code and parameters."""
        params = ",".join(f"{k}={v!r}" for k, v in self.call.params)
        return f"model {self.call.name}@{self.call.version}:{self.call.digest} {params}".rstrip()


def bind(
    source: str,
    params: dict[str, Any] | None = None,
    output: str | None = None,
    recorded: dict[str, Any] | None = None,
) -> BoundModel:
    """Find the model ``source`` names and bind ``params`` (or a recorded job's call).

    A resumed job (``recorded``) must find the very code it started with.
    """
    try:
        model = models.find(source)
        if recorded is not None:
            call = ModelCall.from_json({k: v for k, v in recorded.items() if k != "source"})
            try:
                call.check(model)
            except ModelError as exc:
                raise UsageError(f"cannot resume: {exc}") from None
        else:
            call = model.call(params or {})
    except ModelError as exc:
        raise UsageError(str(exc)) from None
    index = 0
    if output is not None:
        if output not in model.outputs:
            raise UsageError(
                f"model {model.name} has no output {output!r} (its outputs: "
                f"{', '.join(model.outputs)})"
            )
        index = model.outputs.index(output)
    return BoundModel(model, call, source, index)
