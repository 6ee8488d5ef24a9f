"""Concrete requests for declared routes: plausible values for every parameter kind."""

from __future__ import annotations

from dvidpy.http.spec import RouteSpec

EXAMPLES = {"label": "1", "coord": "0_0_0", "size": "1_1_1", "size3": "1_1_1", "dims": "0_1_2",
            "count": "1",
            "int": "1", "int32": "1", "uint64": "1", "float": "1", "point": "0_0_0",
            "bool": "true"}


def fill(spec: RouteSpec, values: dict[str, str]) -> str:
    """A concrete path for ``spec`` (relative, no leading ``/``) with ``values`` for named
    parameters and plausible ones for the rest; optional and rest segments are left out."""
    parts = []
    for sg in spec.segments:
        if sg.param is None:
            parts.append(sg.literal or "")
        elif sg.rest or sg.optional:
            continue
        else:
            p = sg.param
            parts.append(values.get(p.name) or (p.enum[0] if p.enum else None)
                         or EXAMPLES.get(p.kind) or "x")
    return "/".join(parts)
