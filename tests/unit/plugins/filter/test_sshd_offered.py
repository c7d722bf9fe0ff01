"""Unit tests of the selfhost.platform.sshd_offered filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.sshd_offered import FilterModule, sshd_offered

# ssh -Q output of Debian 12's OpenSSH 9.2 (abridged): no mlkem768x25519, both sntrup761 names.
OPENSSH_92 = {
    "kex": ["diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512",
            "diffie-hellman-group-exchange-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org",
            "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com"],
    "cipher": ["aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
               "chacha20-poly1305@openssh.com"],
    "mac": ["hmac-sha2-256", "hmac-sha2-512", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com",
            "umac-128-etm@openssh.com"],
    "key_sig": ["ssh-ed25519", "sk-ssh-ed25519@openssh.com", "ssh-ed25519-cert-v01@openssh.com",
                "rsa-sha2-256", "rsa-sha2-512"],
}


def test_registered():
    assert FilterModule().filters()["sshd_offered"] is sshd_offered


def test_keeps_offered_algorithms_in_profile_order():
    profile = {
        "kexalgorithms": ["mlkem768x25519-sha256", "sntrup761x25519-sha512", "curve25519-sha256"],
        "ciphers": ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"],
        "macs": ["umac-128-etm@openssh.com", "hmac-sha2-256-etm@openssh.com"],
    }
    assert sshd_offered(profile, OPENSSH_92) == {
        "kexalgorithms": ["sntrup761x25519-sha512", "curve25519-sha256"],
        "ciphers": ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"],
        "macs": ["umac-128-etm@openssh.com", "hmac-sha2-256-etm@openssh.com"],
    }


def test_signature_lists_use_key_sig():
    wanted = {
        "hostkeyalgorithms": ["ssh-ed25519-cert-v01@openssh.com", "ssh-ed25519", "rsa-sha2-512-cert-v01@openssh.com",
                              "rsa-sha2-512"],
        "pubkeyacceptedalgorithms": ["sk-ssh-ed25519-cert-v01@openssh.com", "sk-ssh-ed25519@openssh.com"],
        "casignaturealgorithms": ["ssh-ed25519", "rsa-sha2-256"],
    }
    assert sshd_offered(wanted, OPENSSH_92) == {
        "hostkeyalgorithms": ["ssh-ed25519-cert-v01@openssh.com", "ssh-ed25519", "rsa-sha2-512"],
        "pubkeyacceptedalgorithms": ["sk-ssh-ed25519@openssh.com"],
        "casignaturealgorithms": ["ssh-ed25519", "rsa-sha2-256"],
    }


def test_nothing_offered_gives_an_empty_list():
    assert sshd_offered({"kexalgorithms": ["mlkem768x25519-sha256"]}, OPENSSH_92) == {"kexalgorithms": []}


def test_other_keywords_and_missing_queries_are_unchanged():
    wanted = {"ciphers": ["aes256-ctr"], "requiredrsasize": ["3072"]}
    assert sshd_offered(wanted, {"kex": OPENSSH_92["kex"]}) == wanted


def test_input_is_not_modified():
    wanted = {"kexalgorithms": ["mlkem768x25519-sha256", "curve25519-sha256"]}
    sshd_offered(wanted, OPENSSH_92)
    assert wanted == {"kexalgorithms": ["mlkem768x25519-sha256", "curve25519-sha256"]}


@pytest.mark.parametrize("wanted, offered", [
    (["curve25519-sha256"], OPENSSH_92),
    ({"kexalgorithms": "curve25519-sha256"}, OPENSSH_92),
    ({"kexalgorithms": ["curve25519-sha256"]}, ["curve25519-sha256"]),
])
def test_bad_input_is_refused(wanted, offered):
    with pytest.raises(AnsibleFilterError):
        sshd_offered(wanted, offered)
