#!/usr/bin/env bash
# Lint: yamllint, ansible-lint (production profile), actionlint on the workflows.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== yamllint"
yamllint -s .
echo "== ansible-lint (profile production)"
ansible-lint --profile production
echo "== antsibull-changelog lint"
antsibull-changelog lint
echo "== actionlint"
actionlint -no-color .github/workflows/*.yml
echo "lint: ok"
