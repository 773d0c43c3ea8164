"""The clustered broker's ACL (deploy/emqx/acl.conf) grants what the shipped Mosquitto ACL grants, no more, no less.

No EMQX runs here (docs/broker.md): this keeps the two rule files from drifting apart, rule by rule.
"""

from __future__ import annotations

import re
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
#: Mosquitto's access words as EMQX's actions
ACTIONS = {"read": "subscribe", "write": "publish", "readwrite": "all"}
_EMQX_RULE = re.compile(r'^\{allow, (all|\{username, "([^"]+)"\}), (\w+), \[(.*)\]\}\.$')
_EMQX_TOPIC = re.compile(r'\{eq, "([^"]+)"\}|"([^"]+)"')


def mosquitto_grants() -> set[tuple[str, str, str]]:
    """(user or ``*`` for every user, action, topic) for each rule; ``%u`` written as EMQX's ``${username}``."""
    grants, user = set(), "*"
    for line in (DEPLOY / "mosquitto" / "acl").read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "user":
            user = words[1]
        elif words[0] in ("topic", "pattern"):
            who = "*" if words[0] == "pattern" else user
            grants.add((who, ACTIONS[words[1]], words[2].replace("%u", "${username}")))
    return grants


def emqx_grants() -> set[tuple[str, str, str]]:
    grants = set()
    for line in (DEPLOY / "emqx" / "acl.conf").read_text().splitlines():
        rule = _EMQX_RULE.match(line)
        if rule:
            who = rule.group(2) or "*"
            for exact, topic in _EMQX_TOPIC.findall(rule.group(4)):
                grants.add((who, rule.group(3), exact or topic))
    return grants


def test_emqx_grants_exactly_what_mosquitto_grants():
    assert emqx_grants() == mosquitto_grants()


def test_emqx_refuses_what_no_rule_allows():
    rules = [line for line in (DEPLOY / "emqx" / "acl.conf").read_text().splitlines() if line.startswith("{")]
    assert rules[-1] == "{deny, all}."
    assert "no_match = deny" in (DEPLOY / "emqx" / "emqx.conf").read_text()
