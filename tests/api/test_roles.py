from __future__ import annotations

import pytest

from cloud.api.roles import Role, permits

HUMANS = [Role.VIEWER, Role.TECHNICIAN, Role.OPERATOR, Role.ADMIN]


@pytest.mark.parametrize("held", HUMANS)
@pytest.mark.parametrize("required", HUMANS)
def test_people_roles_include_the_ones_below(held: Role, required: Role) -> None:
    assert permits(held, required) == (HUMANS.index(held) >= HUMANS.index(required))


def test_gateway_keys_open_only_gateway_routes() -> None:
    assert permits(Role.GATEWAY, Role.GATEWAY)
    assert not any(permits(Role.GATEWAY, role) for role in HUMANS)


def test_only_operators_and_admins_share_gateway_routes() -> None:
    assert [role for role in HUMANS if permits(role, Role.GATEWAY)] == [Role.OPERATOR, Role.ADMIN]
