"""Unit tests of the selfhost.platform.swarm_stack_problems filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.swarm_stack_problems import (
    FilterModule,
    image_problem,
    swarm_stack_problems,
)

HEALTH = {"test": ["CMD", "true"]}
SECRETS = [{"name": "db_password", "value": "s3cret"}]


def stack(name="app", **service):
    base = {"image": "registry.example.org/web:1.2", "healthcheck": HEALTH}
    base.update(service)
    return {"name": name, "definition": {"services": {"web": base}}}


def test_registered():
    assert FilterModule().filters()["swarm_stack_problems"] is swarm_stack_problems


def test_valid():
    good = stack(secrets=["db_password"])
    good["secrets"] = ["db_password"]
    assert swarm_stack_problems([good, stack("other", healthcheck={"disable": True})], SECRETS) == []
    assert swarm_stack_problems([], []) == []


@pytest.mark.parametrize("image", ["web:1", "registry.example.org:5000/team/web:1.2.3",
                                   "web@sha256:" + "a" * 64, "localhost:5000/web:2"])
def test_images_accepted(image):
    assert image_problem(image) is None


@pytest.mark.parametrize("image,why", [
    ("web", "has no tag or digest"),
    ("registry.example.org:5000/web", "has no tag or digest"),
    ("web:latest", "is tagged latest"),
    ("", "has no image"),
    (None, "has no image"),
])
def test_images_refused(image, why):
    assert image_problem(image).startswith(why)
    problems = swarm_stack_problems([stack(image=image)])
    assert len(problems) == 1 and why in problems[0] and 'stack "app" service "web"' in problems[0]


@pytest.mark.parametrize("health", [None, {}, {"interval": "5s"}, {"disable": False}, "CMD true"])
def test_healthcheck_required(health):
    problems = swarm_stack_problems([stack(healthcheck=health)])
    assert len(problems) == 1 and "has no healthcheck test" in problems[0]


@pytest.mark.parametrize("action,bad", [("rollback", False), ("pause", False), ("continue", True)])
def test_failure_action(action, bad):
    problems = swarm_stack_problems([stack(deploy={"update_config": {"failure_action": action}})])
    assert bool(problems) is bad
    if bad:
        assert "failure_action=\"continue\"" in problems[0]


def test_unknown_secrets():
    listed = stack("b")
    listed["secrets"] = ["tls"]
    problems = swarm_stack_problems([stack(secrets=[{"source": "api_key"}]), listed],
                                    [{"name": "api_key", "value": "x", "state": "absent"}])
    assert problems == [
        'swarm_stacks: stack "app" uses the secret "api_key", which is not a present item of swarm_stacks_secrets.',
        'swarm_stacks: stack "b" uses the secret "tls", which is not a present item of swarm_stacks_secrets.',
    ]


def test_file_secrets_allowed():
    definition = stack(secrets=["cert"])["definition"]
    definition["secrets"] = {"cert": {"file": "/etc/ssl/cert.pem"}}
    assert swarm_stack_problems([{"name": "app", "definition": definition}]) == []


def test_stack_names_and_sources():
    problems = swarm_stack_problems([
        stack("App"), stack("dup"), stack("dup"),
        {"name": "both", "definition": {}, "template": "x.yml"},
        {"name": "none"},
        {"name": "gone", "state": "absent"},
        {"name": "empty", "definition": {"services": {}}},
    ])
    assert problems == [
        'swarm_stacks: name "App" must be lowercase letters, digits, - and _, starting with a letter or digit.',
        'swarm_stacks: the name "dup" appears 2 times; names must be unique.',
        'swarm_stacks: the name "dup" appears 2 times; names must be unique.',
        'swarm_stacks: stack "both" needs exactly one of definition (a mapping) and template (a file on the controller).',
        'swarm_stacks: stack "none" needs exactly one of definition (a mapping) and template (a file on the controller).',
        'swarm_stacks: stack "empty" has no services (its definition must be a compose mapping with services).',
    ]


def test_rendered_templates_are_checked():
    stacks = [{"name": "tpl", "template": "tpl.yml.j2"}]
    assert "has no services (its template" in swarm_stack_problems(stacks)[0]
    rendered = {"tpl": {"services": {"web": {"image": "web:latest", "healthcheck": HEALTH}}}}
    assert "is tagged latest" in swarm_stack_problems(stacks, rendered=rendered)[0]


def test_secret_problems():
    problems = swarm_stack_problems([], [
        {"name": "db", "value": "a"}, {"name": "db", "value": "b"},
        {"name": "db_vault", "value": "c"}, {"name": "bad name", "value": "d"},
        {"name": "empty", "value": ""}, {"name": "gone", "state": "absent"}, {"value": "x"},
    ])
    assert problems == [
        "swarm_stacks_secrets: name \"bad name\" must be letters, digits, '.', '_' and '-'.",
        "swarm_stacks_secrets: empty needs a non-empty string value (from ansible-vault).",
        "swarm_stacks_secrets: an item without a name (items are {name, value[, state]}).",
        "swarm_stacks_secrets: the name db appears 2 times; names must be unique.",
        "swarm_stacks_secrets: db_vault starts with db_v, which the versions of db are named (db_v1, _v2...); rename one.",
    ]
    assert not any("s3cret" in p for p in swarm_stack_problems([], [{"name": "x", "value": 5}]))


@pytest.mark.parametrize("stacks,secrets", [({}, []), ("app", []), ([], {"a": 1})])
def test_refuses_non_lists(stacks, secrets):
    with pytest.raises(AnsibleFilterError):
        swarm_stack_problems(stacks, secrets)
