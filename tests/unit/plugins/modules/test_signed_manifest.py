# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest


cryptography = pytest.importorskip('cryptography')

# pylint: disable=wrong-import-position
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519  # noqa: E402

from ansible_collections.selfhost.platform.plugins.module_utils import manifest as manifest_utils  # noqa: E402
from ansible_collections.selfhost.platform.plugins.modules import signed_manifest  # noqa: E402
from ansible_collections.selfhost.platform.tests.unit.plugins.modules.utils import run_module  # noqa: E402


def pem_pair(key):
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.fixture
def keys(tmp_path):
    """Two Ed25519 key pairs in the PEM formats community.crypto writes."""
    pairs = {}
    for name in ('good', 'other'):
        private, public = pem_pair(ed25519.Ed25519PrivateKey.generate())
        (tmp_path / (name + '.key')).write_text(private)
        (tmp_path / (name + '.pub')).write_text(public)
        pairs[name] = dict(private=private, public=public, private_path=str(tmp_path / (name + '.key')),
                           public_path=str(tmp_path / (name + '.pub')))
    return pairs


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / 'bundle'
    (root / 'data' / 'nested').mkdir(parents=True)
    (root / 'configs').mkdir()
    (root / 'data' / 'a.bin').write_bytes(bytes(range(256)) * 40)
    (root / 'data' / 'nested' / 'b.txt').write_text('hello\n')
    (root / 'configs' / 'etc.tar.gz').write_bytes(b'\x1f\x8b' + b'x' * 500)
    (root / 'empty').write_bytes(b'')
    os.chmod(str(root / 'configs' / 'etc.tar.gz'), 0o600)
    return root


def run(capsys, args, check=False):
    return run_module(signed_manifest.main, capsys, args, check=check)


def sign(capsys, tree, keys, check=False, **extra):
    args = dict(path=str(tree))
    if 'private_key_content' not in extra:
        args['private_key_path'] = keys['good']['private_path']
    args.update(extra)
    return run(capsys, args, check=check)


def verify(capsys, tree, keys, which='good', **extra):
    args = dict(path=str(tree), state='verified')
    if 'public_key_path' not in extra:
        args['public_key_content'] = keys[which]['public']
    args.update(extra)
    return run(capsys, args)


def flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_sign_then_verify_round_trip(capsys, tree, keys):
    result, failed = sign(capsys, tree, keys)
    assert not failed, result
    assert result['changed'] is True
    assert result['files'] == 4
    assert result['bytes'] == 256 * 40 + 6 + 502
    assert sorted(result['added']) == ['configs/etc.tar.gz', 'data/a.bin', 'data/nested/b.txt', 'empty']
    document = json.loads((tree / 'MANIFEST.json').read_text())
    assert document['files']['configs/etc.tar.gz']['mode'] == '0600'
    assert document['files']['data/nested/b.txt']['size'] == 6
    assert document['key'] == result['key'] and result['key'].startswith('SHA256:')
    # the manifest never lists itself or its signature
    assert 'MANIFEST.json' not in document['files'] and 'MANIFEST.json.sig' not in document['files']

    result, failed = verify(capsys, tree, keys)
    assert not failed, result
    assert result['signature_valid'] is True
    assert result['changed'] is False
    assert result['files'] == 4
    assert result['missing'] == [] and result['modified'] == [] and result['extra'] == []


def test_second_run_changes_nothing(capsys, tree, keys):
    first, failed = sign(capsys, tree, keys, metadata=dict(host='old1'))
    assert not failed and first['changed'] is True
    before = (tree / 'MANIFEST.json').read_bytes(), (tree / 'MANIFEST.json.sig').read_bytes()
    second, failed = sign(capsys, tree, keys, metadata=dict(host='old1'))
    assert not failed
    assert second['changed'] is False
    assert second['digest'] == first['digest']
    assert second['added'] == [] and second['removed'] == [] and second['modified'] == []
    assert ((tree / 'MANIFEST.json').read_bytes(), (tree / 'MANIFEST.json.sig').read_bytes()) == before


def test_content_change_rewrites_the_manifest_and_names_the_file(capsys, tree, keys):
    sign(capsys, tree, keys)
    (tree / 'data' / 'nested' / 'b.txt').write_text('hello again\n')
    result, failed = sign(capsys, tree, keys)
    assert not failed
    assert result['changed'] is True
    assert result['modified'] == ['data/nested/b.txt']
    assert verify(capsys, tree, keys)[1] is False


def test_one_flipped_byte_fails_naming_the_file(capsys, tree, keys):
    sign(capsys, tree, keys)
    flip_byte(tree / 'configs' / 'etc.tar.gz', 250)
    result, failed = verify(capsys, tree, keys)
    assert failed
    assert result['signature_valid'] is True
    assert result['modified'] == ['configs/etc.tar.gz (sha256 differs)']
    assert 'configs/etc.tar.gz' in result['msg']
    assert 'data/a.bin' not in result['msg']


def test_mode_change_is_reported(capsys, tree, keys):
    sign(capsys, tree, keys)
    os.chmod(str(tree / 'data' / 'a.bin'), 0o666)
    result, failed = verify(capsys, tree, keys)
    assert failed
    assert len(result['modified']) == 1
    assert result['modified'][0].startswith('data/a.bin (mode 0666 != ')
    assert 'sha256' not in result['modified'][0]


def test_wrong_public_key_fails_before_any_file_is_checked(capsys, tree, keys):
    sign(capsys, tree, keys)
    flip_byte(tree / 'data' / 'a.bin', 3)
    result, failed = verify(capsys, tree, keys, which='other')
    assert failed
    assert result['signature_valid'] is False
    assert 'NOT trusted' in result['msg'] and 'signature does not match' in result['msg']
    assert result['modified'] == []  # nothing was hashed


def test_edited_manifest_breaks_the_signature(capsys, tree, keys):
    sign(capsys, tree, keys)
    (tree / 'data' / 'nested' / 'b.txt').write_text('forged\n')
    document = json.loads((tree / 'MANIFEST.json').read_text())
    entry = document['files']['data/nested/b.txt']
    entry['sha256'] = manifest_utils.file_digest(str(tree / 'data' / 'nested' / 'b.txt'))
    entry['size'] = 7
    (tree / 'MANIFEST.json').write_bytes(manifest_utils.serialize(document))
    result, failed = verify(capsys, tree, keys, public_key_path=keys['good']['public_path'])
    assert failed
    assert result['signature_valid'] is False


def test_missing_signature_fails(capsys, tree, keys):
    sign(capsys, tree, keys)
    (tree / 'MANIFEST.json.sig').unlink()
    result, failed = verify(capsys, tree, keys)
    assert failed
    assert 'signature' in result['msg'] and 'does not exist' in result['msg']


def test_missing_and_extra_files_are_named(capsys, tree, keys):
    sign(capsys, tree, keys)
    (tree / 'data' / 'nested' / 'b.txt').unlink()
    (tree / 'data' / 'intruder.sh').write_text('#!/bin/sh\n')
    result, failed = verify(capsys, tree, keys)
    assert failed
    assert result['missing'] == ['data/nested/b.txt']
    assert result['extra'] == ['data/intruder.sh']
    assert 'missing: data/nested/b.txt' in result['msg']
    assert 'not in the manifest: data/intruder.sh' in result['msg']


def test_allow_extra_tolerates_new_files_only(capsys, tree, keys):
    sign(capsys, tree, keys)
    (tree / 'data' / 'new.txt').write_text('new\n')
    result, failed = verify(capsys, tree, keys, allow_extra=True)
    assert not failed
    assert result['extra'] == ['data/new.txt']
    (tree / 'empty').unlink()
    result, failed = verify(capsys, tree, keys, allow_extra=True)
    assert failed and result['missing'] == ['empty']


def test_exclude_patterns(capsys, tree, keys):
    (tree / 'cache').mkdir()
    (tree / 'cache' / 'tmp.bin').write_bytes(b'1')
    result, failed = sign(capsys, tree, keys, exclude=['cache', '*.txt'])
    assert not failed
    assert result['files'] == 3
    (tree / 'cache' / 'more.bin').write_bytes(b'2')
    (tree / 'data' / 'nested' / 'b.txt').write_text('ignored change\n')
    result, failed = verify(capsys, tree, keys, exclude=['cache', '*.txt'])
    assert not failed, result['msg'] if failed else ''


def test_symlinks_are_recorded_not_followed(capsys, tree, keys):
    os.symlink('nested/b.txt', str(tree / 'data' / 'link'))
    result, failed = sign(capsys, tree, keys)
    assert not failed
    document = json.loads((tree / 'MANIFEST.json').read_text())
    assert document['files']['data/link']['link'] == 'nested/b.txt'
    os.unlink(str(tree / 'data' / 'link'))
    os.symlink('a.bin', str(tree / 'data' / 'link'))
    result, failed = verify(capsys, tree, keys)
    assert failed and result['modified'][0].startswith('data/link (link target')


def test_check_mode_writes_nothing(capsys, tree, keys):
    result, failed = sign(capsys, tree, keys, check=True)
    assert not failed
    assert result['changed'] is True and result['files'] == 4
    assert not (tree / 'MANIFEST.json').exists() and not (tree / 'MANIFEST.json.sig').exists()

    sign(capsys, tree, keys)
    result, failed = sign(capsys, tree, keys, check=True)
    assert not failed and result['changed'] is False

    (tree / 'empty').write_text('not empty\n')
    before = (tree / 'MANIFEST.json').read_bytes()
    result, failed = sign(capsys, tree, keys, check=True)
    assert not failed and result['changed'] is True and result['modified'] == ['empty']
    assert (tree / 'MANIFEST.json').read_bytes() == before


def test_manifest_outside_the_tree_and_file_mode(capsys, tree, keys, tmp_path):
    outside = tmp_path / 'manifests' / 'bundle.json'
    outside.parent.mkdir()
    result, failed = sign(capsys, tree, keys, manifest=str(outside), mode='0640',
                          private_key_content=keys['good']['private'])
    assert not failed and result['signature'] == str(outside) + '.sig'
    assert oct(os.stat(str(outside)).st_mode & 0o777) == '0o640'
    assert oct(os.stat(str(outside) + '.sig').st_mode & 0o777) == '0o640'
    result, failed = verify(capsys, tree, keys, manifest=str(outside))
    assert not failed
    result, failed = sign(capsys, tree, keys, manifest=str(outside), mode='0640')
    assert result['changed'] is False


def test_signing_with_another_key_rewrites(capsys, tree, keys):
    sign(capsys, tree, keys)
    result, failed = run(capsys, dict(path=str(tree), private_key_path=keys['other']['private_path']))
    assert not failed and result['changed'] is True
    assert verify(capsys, tree, keys, which='other')[1] is False
    assert verify(capsys, tree, keys, which='good')[1] is True


def test_non_ed25519_key_is_rejected(capsys, tree, tmp_path):
    private, public = pem_pair(ec.generate_private_key(ec.SECP256R1()))
    result, failed = run(capsys, dict(path=str(tree), private_key_content=private))
    assert failed and 'not an Ed25519 key' in result['msg']
    result, failed = run(capsys, dict(path=str(tree), state='verified', public_key_content=public))
    assert failed and 'not an Ed25519 key' in result['msg']


def test_openssh_public_key_is_accepted(capsys, tree, keys):
    sign(capsys, tree, keys)
    line = serialization.load_pem_public_key(keys['good']['public'].encode()).public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    result, failed = run(capsys, dict(path=str(tree), state='verified', public_key_content=line))
    assert not failed, result


def test_missing_cryptography_says_what_to_install(capsys, tree, keys, monkeypatch):
    monkeypatch.setattr(signed_manifest, 'CRYPTOGRAPHY_IMPORT_ERROR', 'ImportError: cryptography')
    result, failed = sign(capsys, tree, keys)
    assert failed
    assert 'cryptography' in result['msg'] and 'python3-cryptography' in result['msg']


def test_keys_are_required_by_state(capsys, tree):
    result, failed = run(capsys, dict(path=str(tree)))
    assert failed and 'private_key_path' in result['msg']
    result, failed = run(capsys, dict(path=str(tree), state='verified'))
    assert failed and 'public_key_path' in result['msg']


def test_not_a_directory(capsys, tree, keys):
    result, failed = sign(capsys, tree / 'empty', keys)
    assert failed and 'is not a directory' in result['msg']
