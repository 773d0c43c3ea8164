"""Who may do what: the roles of docs/architecture.md ("Trust model") and the one rule that compares them."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    TECHNICIAN = "technician"
    OPERATOR = "operator"
    ADMIN = "admin"
    #: one credential per gateway; outside the human hierarchy, it only downloads TUF artifacts
    GATEWAY = "gateway"


#: People's roles, each including everything below it.
_HIERARCHY = [Role.VIEWER, Role.TECHNICIAN, Role.OPERATOR, Role.ADMIN]


def permits(held: Role, required: Role) -> bool:
    """Whether a key with role ``held`` may use a route that requires ``required``.

    Gateway routes (TUF downloads) are also open to operators and admins, who publish and inspect
    the repository; a gateway key opens nothing else, so a stolen gateway credential reads no fleet data.
    """
    if held == required:
        return True
    if Role.GATEWAY in (held, required):
        return required == Role.GATEWAY and held in _HIERARCHY[_HIERARCHY.index(Role.OPERATOR) :]
    return _HIERARCHY.index(held) >= _HIERARCHY.index(required)
