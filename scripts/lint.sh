#!/usr/bin/env bash
# Lint: yamllint, ansible-lint (production profile), changelog fragments,
# actionlint on the workflows, shellcheck on the shell scripts, and the size of the Jinja
# in roles and playbooks (scripts/check-templates.py).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== yamllint"
yamllint -s .
echo "== ansible-lint (profile production)"
ansible-lint --profile production
echo "== templates: none over 300 characters, no loops or namespace() in YAML"
python3 scripts/check-templates.py
echo "== antsibull-changelog lint"
antsibull-changelog lint
echo "== actionlint"
actionlint -no-color .github/workflows/*.yml
echo "== shellcheck"
git ls-files -co --exclude-standard -z -- '*.sh' scripts/venv-exec scripts/mitogen-env .ci/run | xargs -0 -r shellcheck
echo "lint: ok"
