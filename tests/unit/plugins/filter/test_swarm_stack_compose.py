"""Unit tests of the selfhost.platform.swarm_stack_compose filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.swarm_stack_compose import (
    FilterModule,
    swarm_stack_compose,
)

DEFAULTS = {
    "update_config": {"parallelism": 1, "order": "start-first", "failure_action": "rollback"},
    "restart_policy": {"condition": "any"},
}


def test_registered():
    assert FilterModule().filters()["swarm_stack_compose"] is swarm_stack_compose


def test_secrets_map_to_their_versions():
    definition = {"services": {"web": {"image": "web:1", "secrets": ["db_password", {"source": "api_key", "target": "key"}]}}}
    out = swarm_stack_compose(definition, secret_names={"db_password": "db_password_v3", "api_key": "api_key_v1"})
    assert out["secrets"] == {
        "db_password": {"external": True, "name": "db_password_v3"},
        "api_key": {"external": True, "name": "api_key_v1"},
    }
    # the service keeps the plain name: the file in the container is /run/secrets/db_password
    assert out["services"]["web"]["secrets"] == ["db_password", {"source": "api_key", "target": "key"}]
    assert out["version"] == "3.8"


def test_declared_external_and_stack_listed_secrets_are_mapped():
    definition = {"secrets": {"db_password": {"external": True}}, "services": {"web": {"image": "web:1"}}}
    out = swarm_stack_compose(definition, secret_names={"db_password": "db_password_v2", "tls": "tls_v1"},
                              stack_secrets=["tls"])
    assert out["secrets"] == {"db_password": {"external": True, "name": "db_password_v2"},
                              "tls": {"external": True, "name": "tls_v1"}}


def test_file_secrets_and_unknown_secrets_are_left_alone():
    definition = {"secrets": {"cert": {"file": "./cert.pem"}}, "services": {"web": {"image": "web:1", "secrets": ["cert"]}}}
    out = swarm_stack_compose(definition, secret_names={"cert": "cert_v1"})
    assert out["secrets"] == {"cert": {"file": "./cert.pem"}}
    assert "secrets" not in swarm_stack_compose({"services": {"web": {"image": "web:1"}}})


def test_deploy_defaults_merge_key_by_key():
    definition = {"services": {
        "web": {"image": "web:1", "deploy": {"replicas": 3, "update_config": {"parallelism": 2}}},
        "worker": {"image": "worker:1"},
    }}
    out = swarm_stack_compose(definition, deploy_defaults=DEFAULTS)
    assert out["services"]["web"]["deploy"] == {
        "replicas": 3,
        "update_config": {"parallelism": 2, "order": "start-first", "failure_action": "rollback"},
        "restart_policy": {"condition": "any"},
    }
    assert out["services"]["worker"]["deploy"] == DEFAULTS


def test_input_is_not_modified():
    definition = {"services": {"web": {"image": "web:1", "deploy": {"update_config": {"parallelism": 2}}}}}
    swarm_stack_compose(definition, secret_names={"x": "x_v1"}, deploy_defaults=DEFAULTS, encrypt_networks=True)
    assert definition == {"services": {"web": {"image": "web:1", "deploy": {"update_config": {"parallelism": 2}}}}}


def test_encrypted_networks():
    definition = {
        "services": {"web": {"image": "web:1"}},
        "networks": {
            "app": {"driver": "overlay"},
            "plain": {"driver_opts": {"encrypted": "false-but-set"}},
            "ext": {"external": True},
            "br": {"driver": "bridge"},
        },
    }
    out = swarm_stack_compose(definition, encrypt_networks=True)
    assert out["networks"] == {
        "default": {"driver_opts": {"encrypted": ""}},
        "app": {"driver": "overlay", "driver_opts": {"encrypted": ""}},
        "plain": {"driver_opts": {"encrypted": "false-but-set"}},
        "ext": {"external": True},
        "br": {"driver": "bridge"},
    }
    assert "networks" not in swarm_stack_compose({"services": {"web": {"image": "web:1"}}})


def test_stable_output():
    definition = {"services": {"web": {"image": "web:1", "secrets": ["a"]}}}
    first = swarm_stack_compose(definition, secret_names={"a": "a_v1"}, deploy_defaults=DEFAULTS)
    assert swarm_stack_compose(first, secret_names={"a": "a_v1"}, deploy_defaults=DEFAULTS) == first


@pytest.mark.parametrize("definition", [None, "services: {}", ["a"], {"services": ["web"]}])
def test_refuses_non_mappings(definition):
    with pytest.raises(AnsibleFilterError):
        swarm_stack_compose(definition)
