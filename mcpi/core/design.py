"""The model a job's chunks run: the model itself, or a design built around it.

A design turns what a job estimates into means of per-point terms, so that its chunks'
results stay exact sums like any model's: the Saltelli design of Sobol' indices
(:mod:`mcpi.core.sensitivity`), the control design of a control variate
(:mod:`mcpi.core.control`), antithetic pairs (:mod:`mcpi.core.antithetic`). The job's
model call names the design; each worker builds it around the model it has installed,
so no code travels.
"""

from __future__ import annotations

from mcpi.core.antithetic import antithetic_design
from mcpi.core.control import control_design
from mcpi.core.model import Model, ModelCall, ModelError
from mcpi.core.sensitivity import design_model


def runnable(model: Model, call: ModelCall) -> Model:
    """The model ``call``'s chunks run: ``model``, or the design the call names around it;
    ModelError unless it is the call's code (or the model has no such control)."""
    if call.sensitivity is not None:
        model = design_model(model, call.sensitivity, call.kwargs)
    elif call.control is not None:
        control = model.controls.get(call.control)
        if control is None:
            raise ModelError(f"model {model.name} has no control {call.control!r}")
        model = control_design(model, control, call.kwargs)
    elif call.antithetic:
        model = antithetic_design(model)
    call.check(model)
    return model
