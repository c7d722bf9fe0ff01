#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.platform maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: signed_manifest
short_description: Write or verify an Ed25519-signed SHA-256 manifest of a directory
version_added: 0.1.0
description:
  - With O(state=present), walks O(path) and writes a JSON manifest that maps every file's path
    (relative to O(path)) to its SHA-256, size and mode (symlinks to their target, never followed),
    then signs the exact bytes of the manifest with an Ed25519 private key and writes the detached
    signature next to it.
  - Idempotent. When a manifest already exists, its signature verifies with the key's public half,
    and it describes exactly the files found now (and the same O(metadata)), nothing is written.
  - With O(state=verified), checks the signature of the manifest with an Ed25519 public key
    B(before) looking at any file, then hashes every file and fails naming each file that is
    missing, changed (content, size, mode or link target) or not in the manifest. It never changes
    anything.
  - Keys are the PEM files that M(community.crypto.openssl_privatekey) (O(community.crypto.openssl_privatekey#module:type=Ed25519))
    and M(community.crypto.openssl_publickey) write; OpenSSH Ed25519 keys are accepted too.
author:
  - selfhost.platform maintainers (@selfhost-platform)
requirements:
  - cryptography >= 3.0 on the managed host (C(python3-cryptography) on Debian and Ubuntu)
options:
  path:
    description: The directory to describe or check.
    type: path
    required: true
  state:
    description:
      - V(present) writes (or keeps) the signed manifest of O(path).
      - V(verified) checks the signature and every file against the manifest.
    type: str
    choices: [present, verified]
    default: present
  manifest:
    description:
      - The manifest file. Defaults to C(MANIFEST.json) inside O(path).
      - The manifest and the signature are never listed in the manifest itself.
    type: path
  signature:
    description: The detached signature file (base64 of the 64-byte Ed25519 signature). Defaults to O(manifest) with C(.sig) appended.
    type: path
  exclude:
    description:
      - Shell-style patterns matched against the relative path (for example V(cache/*), V(*.tmp)).
        Excluded files are neither written into the manifest nor reported as extra.
      - A pattern that matches a directory leaves out everything below it.
    type: list
    elements: str
    default: []
  metadata:
    description:
      - Free-form data stored (and signed) in the manifest, for example the host and the reason.
      - Part of the idempotence check, so do not put a timestamp here if re-runs should be no-ops.
    type: dict
    default: {}
  private_key_path:
    description: Ed25519 private key file on the managed host. Used with O(state=present).
    type: path
  private_key_content:
    description:
      - The Ed25519 private key itself (PEM), for example read on the controller with a C(file)
        lookup, so that the key is never stored on the managed host. Used with O(state=present).
    type: str
  private_key_passphrase:
    description: Passphrase of an encrypted private key.
    type: str
  public_key_path:
    description: Ed25519 public key file on the managed host. Used with O(state=verified).
    type: path
  public_key_content:
    description: The Ed25519 public key itself (PEM, or an OpenSSH C(ssh-ed25519) line). Used with O(state=verified).
    type: str
  allow_extra:
    description:
      - With O(state=verified), files that are not in the manifest are reported in RV(extra) but do
        not fail the check.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
    description: With O(state=present), reports whether the manifest would be (re)written and writes nothing.
  diff_mode:
    support: none
    description: RV(added), RV(removed) and RV(modified) name the files that differ from the previous manifest.
  platform:
    support: full
    platforms: posix
    description: Runs wherever Python's C(cryptography) is installed, including the controller when delegated to C(localhost).
notes:
  - Only regular files and symbolic links are recorded; sockets, FIFOs and devices are listed in RV(ignored).
    Empty directories and ownership are not recorded (an archive in the directory keeps them).
  - With O(private_key_content), the key travels inside the module's arguments; with pipelining
    (the collection's default) they are never written to the managed host's disk.
seealso:
  - module: community.crypto.openssl_privatekey
    description: Generates the Ed25519 signing key (O(community.crypto.openssl_privatekey#module:type=Ed25519)).
  - module: community.crypto.openssl_publickey
    description: Derives the public key that verifies the manifests.
'''

EXAMPLES = r'''
- name: Sign the bundle with the operator's key (read on the controller, never stored on the host)
  selfhost.platform.signed_manifest:
    path: /var/backups/selfhost-decommission/20250101T120000Z
    private_key_content: "{{ lookup('ansible.builtin.file', '~/.selfhost/decommission-ed25519.key') }}"
    metadata:
      host: "{{ inventory_hostname }}"
    mode: "0600"
  no_log: true

- name: Verify the copy on the new host before restoring anything
  selfhost.platform.signed_manifest:
    path: /var/tmp/selfhost-resurrect/20250101T120000Z
    state: verified
    public_key_content: "{{ lookup('ansible.builtin.file', '~/.selfhost/decommission-ed25519.pub') }}"

- name: Check a live tree against its manifest kept elsewhere, tolerating new files
  selfhost.platform.signed_manifest:
    path: /srv/media/ready
    state: verified
    manifest: /var/lib/media-manifests/ready.json
    public_key_path: /etc/selfhost/manifest.pub
    exclude:
      - "*.partial"
    allow_extra: true
'''

RETURN = r'''
manifest:
  description: Path of the manifest file.
  returned: always
  type: str
  sample: /var/backups/selfhost-decommission/20250101T120000Z/MANIFEST.json
signature:
  description: Path of the detached signature file.
  returned: always
  type: str
  sample: /var/backups/selfhost-decommission/20250101T120000Z/MANIFEST.json.sig
key:
  description: Fingerprint (C(SHA256:) and base64 of the SHA-256 of the raw public key) of the key that signs or verifies.
  returned: success
  type: str
  sample: SHA256:Vb0qU5dBTdmnYb3ivI2Tf0d7i1m4zO/L1wJ5zY1Gk0E
digest:
  description: SHA-256 of the manifest file as written (or as it would be written in check mode).
  returned: success
  type: str
  sample: 5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef
files:
  description: Number of files (and symlinks) the manifest lists.
  returned: success
  type: int
  sample: 12
bytes:
  description: Total size of the listed files.
  returned: success
  type: int
  sample: 1048576
metadata:
  description: The metadata stored in the manifest.
  returned: success
  type: dict
  sample: {host: old1}
added:
  description: With O(state=present), files that the previous manifest did not list (every file when there was none).
  returned: success and O(state=present)
  type: list
  elements: str
removed:
  description: With O(state=present), files the previous manifest listed that are gone now.
  returned: success and O(state=present)
  type: list
  elements: str
modified:
  description:
    - With O(state=present), files whose entry differs from the previous manifest.
    - With O(state=verified), one C(path (reasons)) string per file that differs from the manifest.
  returned: always
  type: list
  elements: str
  sample: ["data/app.tar.gz (size 1023 != 1024; sha256 differs)"]
missing:
  description: With O(state=verified), files the manifest lists that do not exist.
  returned: O(state=verified)
  type: list
  elements: str
extra:
  description: With O(state=verified), files that exist but are not in the manifest.
  returned: O(state=verified)
  type: list
  elements: str
signature_valid:
  description: With O(state=verified), whether the signature matched; V(false) means no file was checked.
  returned: O(state=verified)
  type: bool
ignored:
  description: Sockets, FIFOs and devices found under O(path), which have no content to record.
  returned: success
  type: list
  elements: str
'''

import hashlib
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.selfhost.platform.plugins.module_utils.manifest import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    ManifestError,
    build,
    check_signature,
    compare,
    describe,
    excluded,
    fingerprint,
    load_private_key,
    load_public_key,
    parse,
    scan,
    serialize,
    sign,
)


def _read(module, path, what, result):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError) as err:
        module.fail_json(msg='cannot read the {0} {1}: {2}'.format(what, path, to_native(err)), **result)
    return None


def _key_material(module, kind, result):
    content = module.params[kind + '_key_content']
    if content:
        return content
    return _read(module, module.params[kind + '_key_path'], kind + ' key', result)


def _write_atomic(module, path, data):
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        module.atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _totals(entries):
    return sum(entry.get('size', 0) for entry in entries.values())


def _previous(module, pub, manifest, signature):
    """The existing manifest's document if it is there and its signature verifies with pub."""
    if not (os.path.isfile(manifest) and os.path.isfile(signature)):
        return None
    try:
        with open(manifest, 'rb') as handle:
            data = handle.read()
        with open(signature, 'rb') as handle:
            sig = handle.read()
        check_signature(pub, data, sig)
        return parse(data)
    except (IOError, OSError, ManifestError) as err:
        module.warn('the existing manifest {0} is replaced: {1}'.format(manifest, to_native(err)))
        return None


def present(module, result):
    params = module.params
    try:
        key = load_private_key(_key_material(module, 'private', result), params['private_key_passphrase'])
        pub = key.public_key()
        entries, ignored = scan(params['path'], params['exclude'], skip=(result['manifest'], result['signature']))
    except ManifestError as err:
        module.fail_json(msg=to_native(err), **result)
    except (IOError, OSError) as err:
        module.fail_json(msg='cannot read {0}: {1}'.format(params['path'], to_native(err)), **result)

    document = build(entries, pub, params['metadata'])
    data = serialize(document)
    previous = _previous(module, pub, result['manifest'], result['signature'])
    old_entries = previous['files'] if previous else {}
    missing, modified, extra = compare(old_entries, entries)
    result.update(key=fingerprint(pub), files=len(entries), bytes=_totals(entries), metadata=params['metadata'],
                  added=extra, removed=missing, modified=[path for path, _why in modified], ignored=ignored)

    same = previous is not None and previous == document
    if same:
        with open(result['manifest'], 'rb') as handle:
            result['digest'] = hashlib.sha256(handle.read()).hexdigest()
    else:
        result['digest'] = hashlib.sha256(data).hexdigest()
        result['changed'] = True
        if not module.check_mode:
            try:
                _write_atomic(module, result['manifest'], data)
                _write_atomic(module, result['signature'], sign(key, data))
            except (IOError, OSError) as err:
                module.fail_json(msg='cannot write the manifest: {0}'.format(to_native(err)), **result)

    for path in (result['manifest'], result['signature']):
        if os.path.exists(path):
            file_args = module.load_file_common_arguments(params, path=path)
            result['changed'] = module.set_fs_attributes_if_different(file_args, result['changed'])
    module.exit_json(**result)


def verified(module, result):
    params = module.params
    result.update(signature_valid=False, missing=[], modified=[], extra=[])
    try:
        pub = load_public_key(_key_material(module, 'public', result))
    except ManifestError as err:
        module.fail_json(msg=to_native(err), **result)
    result['key'] = fingerprint(pub)

    for path, what in ((result['manifest'], 'manifest'), (result['signature'], 'signature')):
        if not os.path.isfile(path):
            module.fail_json(msg='the {0} {1} does not exist: nothing can be trusted in {2}'.format(
                what, path, params['path']), **result)
    data = _read(module, result['manifest'], 'manifest', result)
    try:
        check_signature(pub, data, _read(module, result['signature'], 'signature', result))
    except ManifestError as err:
        module.fail_json(msg='{0} is NOT trusted: {1}'.format(result['manifest'], to_native(err)), **result)
    result['signature_valid'] = True
    result['digest'] = hashlib.sha256(data).hexdigest()

    try:
        document = parse(data)
        expected = document['files']
        entries, ignored = scan(params['path'], params['exclude'], skip=(result['manifest'], result['signature']))
    except ManifestError as err:
        module.fail_json(msg=to_native(err), **result)
    except (IOError, OSError) as err:
        module.fail_json(msg='cannot read {0}: {1}'.format(params['path'], to_native(err)), **result)
    if params['exclude']:
        expected = dict((path, entry) for path, entry in expected.items()
                        if path in entries or not excluded(path, params['exclude']))

    missing, modified, extra = compare(expected, entries)
    result.update(files=len(expected), bytes=_totals(expected), metadata=document.get('metadata', {}),
                  missing=missing, extra=extra, ignored=ignored,
                  modified=['{0} ({1})'.format(path, '; '.join(why)) for path, why in modified])
    if document.get('key') != result['key']:
        module.warn('the manifest names signing key {0} but verified with {1}'.format(document.get('key'), result['key']))

    problems = describe(missing, modified, [] if params['allow_extra'] else extra)
    if problems:
        module.fail_json(msg='{0} does not match its signed manifest {1}: {2}'.format(
            params['path'], result['manifest'], problems), **result)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            state=dict(type='str', default='present', choices=['present', 'verified']),
            manifest=dict(type='path'),
            signature=dict(type='path'),
            exclude=dict(type='list', elements='str', default=[]),
            metadata=dict(type='dict', default={}),
            private_key_path=dict(type='path', no_log=False),
            private_key_content=dict(type='str', no_log=True),
            private_key_passphrase=dict(type='str', no_log=True),
            public_key_path=dict(type='path'),
            public_key_content=dict(type='str'),
            allow_extra=dict(type='bool', default=False),
        ),
        mutually_exclusive=[
            ('private_key_path', 'private_key_content'),
            ('public_key_path', 'public_key_content'),
        ],
        required_if=[
            ('state', 'present', ('private_key_path', 'private_key_content'), True),
            ('state', 'verified', ('public_key_path', 'public_key_content'), True),
        ],
        add_file_common_args=True,
        supports_check_mode=True,
    )
    params = module.params
    manifest = params['manifest'] or os.path.join(params['path'], 'MANIFEST.json')
    result = dict(changed=False, manifest=manifest, signature=params['signature'] or manifest + '.sig', modified=[])

    if CRYPTOGRAPHY_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib(
            'cryptography', reason='to sign and verify Ed25519 manifests (install python3-cryptography on Debian/Ubuntu)'),
            exception=CRYPTOGRAPHY_IMPORT_ERROR, **result)
    if not os.path.isdir(params['path']):
        module.fail_json(msg='{0} is not a directory'.format(params['path']), **result)

    if params['state'] == 'present':
        present(module, result)
    else:
        verified(module, result)


if __name__ == '__main__':
    main()
