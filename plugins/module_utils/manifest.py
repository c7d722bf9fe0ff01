# -*- coding: utf-8 -*-
# Copyright (c) selfhost.platform maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Signed file manifests: walk a directory, record every file's SHA-256, size and mode,
sign the manifest with an Ed25519 key, and check a tree against a signed manifest.

The manifest is a JSON document; the signature is detached (base64 of the 64 raw Ed25519
signature bytes) and covers the exact bytes of the manifest file, so nothing has to be
re-serialised to verify it."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import fnmatch
import hashlib
import json
import os
import stat
import traceback

CRYPTOGRAPHY_IMPORT_ERROR = None
try:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
except ImportError:
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()

FORMAT = 'selfhost.platform/signed-manifest/v1'
CHUNK = 1024 * 1024


class ManifestError(Exception):
    """A manifest, key or tree cannot be used; the message says why."""


# ------------------------------------------------------------------------------ keys
def _as_bytes(data):
    if isinstance(data, bytes):
        return data
    return data.encode('utf-8')


def load_private_key(data, passphrase=None):
    """An Ed25519 private key from PEM (PKCS#8, what community.crypto.openssl_privatekey writes)
    or an OpenSSH private key."""
    data = _as_bytes(data)
    password = _as_bytes(passphrase) if passphrase else None
    try:
        if b'OPENSSH PRIVATE KEY' in data:
            key = serialization.load_ssh_private_key(data, password=password)
        else:
            key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise ManifestError('cannot load the private key: {0}'.format(err)) from err
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ManifestError('the private key is not an Ed25519 key ({0})'.format(type(key).__name__))
    return key


def load_public_key(data):
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo, what
    community.crypto.openssl_publickey writes) or an OpenSSH "ssh-ed25519 ..." line."""
    data = _as_bytes(data).strip()
    try:
        if data.startswith(b'ssh-'):
            key = serialization.load_ssh_public_key(data)
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise ManifestError('cannot load the public key: {0}'.format(err)) from err
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ManifestError('the public key is not an Ed25519 key ({0})'.format(type(key).__name__))
    return key


def fingerprint(public_key):
    """SHA256:<base64> of the raw 32 public key bytes (the style OpenSSH prints)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    digest = base64.b64encode(hashlib.sha256(raw).digest()).decode('ascii').rstrip('=')
    return 'SHA256:' + digest


# ------------------------------------------------------------------------------ tree
def excluded(relpath, patterns):
    """Whether relpath, or a directory above it, matches one of the shell-style patterns."""
    parts = relpath.split('/')
    prefixes = ['/'.join(parts[:index]) for index in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes for pattern in patterns)


def file_digest(path):
    sha = hashlib.sha256()
    with open(path, 'rb') as handle:
        while True:
            block = handle.read(CHUNK)
            if not block:
                break
            sha.update(block)
    return sha.hexdigest()


def scan(root, exclude=(), skip=()):
    """Describe every regular file and symlink under root as {relpath: entry}.

    relpath uses "/" separators; entries are {"sha256", "size", "mode"} for files and
    {"link", "mode"} for symlinks (never followed). Paths in skip (absolute) and relative
    paths matching an exclude glob are left out. Returns (entries, ignored) where ignored
    lists the relative paths of sockets, FIFOs and devices, which have no content to hash."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise ManifestError('{0} is not a directory'.format(root))
    skip = set(os.path.abspath(path) for path in skip)
    entries = {}
    ignored = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        reldir = os.path.relpath(dirpath, root)
        kept = []
        for name in dirnames:
            full = os.path.join(dirpath, name)
            rel = name if reldir == '.' else reldir + '/' + name
            if os.path.islink(full):
                filenames.append(name)  # a link to a directory is recorded as a link
            elif not excluded(rel, exclude) and full not in skip:
                kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = name if reldir == '.' else reldir + '/' + name
            if full in skip or excluded(rel, exclude):
                continue
            info = os.lstat(full)
            mode = '{0:04o}'.format(stat.S_IMODE(info.st_mode))
            if stat.S_ISLNK(info.st_mode):
                entries[rel] = {'link': os.readlink(full), 'mode': mode}
            elif stat.S_ISREG(info.st_mode):
                entries[rel] = {'sha256': file_digest(full), 'size': info.st_size, 'mode': mode}
            else:
                ignored.append(rel)
    return entries, sorted(ignored)


# ------------------------------------------------------------------------------ documents
def build(entries, public_key, metadata=None):
    """The manifest document for entries, naming the key that signs it."""
    return {
        'format': FORMAT,
        'hash': 'sha256',
        'key': fingerprint(public_key),
        'metadata': metadata or {},
        'files': entries,
    }


def serialize(document):
    return (json.dumps(document, indent=1, sort_keys=True, separators=(',', ': ')) + '\n').encode('utf-8')


def parse(data):
    try:
        document = json.loads(data.decode('utf-8'))
    except (ValueError, UnicodeDecodeError) as err:
        raise ManifestError('the manifest is not valid JSON: {0}'.format(err)) from err
    if not isinstance(document, dict) or document.get('format') != FORMAT:
        raise ManifestError('the manifest is not a {0} document'.format(FORMAT))
    if not isinstance(document.get('files'), dict):
        raise ManifestError('the manifest has no "files" mapping')
    return document


def sign(private_key, data):
    """Detached signature file content: base64 of the raw signature and a newline."""
    return base64.b64encode(private_key.sign(data)) + b'\n'


def check_signature(public_key, data, signature):
    """Raise ManifestError unless signature (the file content written by sign()) is a valid
    Ed25519 signature of data by public_key."""
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError) as err:
        raise ManifestError('the signature file is not base64') from err
    try:
        public_key.verify(raw, data)
    except InvalidSignature as err:
        raise ManifestError('the signature does not match the manifest for public key {0}: the manifest was '
                            'changed after signing, or it was signed with another key'.format(fingerprint(public_key))) from err


def compare(expected, actual):
    """Differences between two {relpath: entry} maps: (missing, changed, extra) where changed
    is a sorted list of (relpath, reasons)."""
    missing = sorted(path for path in expected if path not in actual)
    extra = sorted(path for path in actual if path not in expected)
    changed = []
    for path in sorted(set(expected) & set(actual)):
        want, have = expected[path], actual[path]
        reasons = []
        if 'link' in want or 'link' in have:
            if want.get('link') != have.get('link'):
                reasons.append('link target {0!r} != {1!r}'.format(have.get('link'), want.get('link')))
        else:
            if want.get('size') != have.get('size'):
                reasons.append('size {0} != {1}'.format(have.get('size'), want.get('size')))
            if want.get('sha256') != have.get('sha256'):
                reasons.append('sha256 differs')
            if want.get('mode') != have.get('mode'):
                reasons.append('mode {0} != {1}'.format(have.get('mode'), want.get('mode')))
        if reasons:
            changed.append((path, reasons))
    return missing, changed, extra


def describe(missing, changed, extra, limit=50):
    """One line naming every problem (the first `limit` of each kind)."""
    parts = []

    def names(items):
        text = ', '.join(items[:limit])
        if len(items) > limit:
            text += ' and {0} more'.format(len(items) - limit)
        return text

    if changed:
        parts.append('changed: ' + names(['{0} ({1})'.format(path, '; '.join(why)) for path, why in changed]))
    if missing:
        parts.append('missing: ' + names(missing))
    if extra:
        parts.append('not in the manifest: ' + names(extra))
    return '; '.join(parts)
