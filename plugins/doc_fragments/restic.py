# -*- coding: utf-8 -*-
# Copyright (c) selfhost.platform maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # How the restic modules reach a repository (CONNECTION_ARGS in module_utils/restic.py).
    DOCUMENTATION = r'''
options:
  repository:
    description:
      - Repository location as restic takes it (C(/srv/restic/main), C(sftp:user@host:/srv/restic),
        C(s3:https://s3.example.com/bucket), C(rest:https://host:8000/path/)).
      - A location carrying credentials (a C(rest:) URL with user and password) is better kept
        in a root-only file given by O(repository_file).
    type: str
  repository_file:
    description: File holding the repository location (restic's C(RESTIC_REPOSITORY_FILE)).
    type: path
  password:
    description: Repository password. Prefer O(password_file).
    type: str
  password_file:
    description: File holding the repository password (restic's C(RESTIC_PASSWORD_FILE)).
    type: path
  env:
    description:
      - Extra environment for restic, for example C(AWS_ACCESS_KEY_ID) and C(AWS_SECRET_ACCESS_KEY)
        for an S3-compatible repository. Never logged.
    type: dict
    default: {}
  env_file:
    description:
      - File of C(KEY=VALUE) lines (the systemd C(EnvironmentFile=) format written by the
        C(selfhost.platform.restic) role, C(/etc/restic/repos/<name>.env)) read before O(env). It may
        set C(RESTIC_REPOSITORY_FILE), C(RESTIC_PASSWORD_FILE) and the backend credentials, so no
        secret passes through the module's arguments.
      - Explicit options win over O(env), which wins over the file.
    type: path
  options:
    description: Extended options passed as C(--option) (for example C(sftp.command=ssh backup@nas -s sftp)).
    type: list
    elements: str
    default: []
  cache_dir:
    description: restic's cache directory (C(--cache-dir)).
    type: path
  restic_path:
    description: Path of the restic binary; found on C(PATH) when not given.
    type: path
'''
