# selfhost.platform — entry points. Every target installs what it needs itself
# (Docker engine, lab image, pinned virtualenv), so a fresh machine needs only make.
SHELL := /bin/bash
RUN := scripts/venv-exec

.PHONY: help tools test lint sanity unit build-check molecule mitogen docker image lab lab-destroy bench vm-audit fresh-install-check build clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

test:  ## Everything CI runs: lint, sanity, unit tests, build check, every Molecule scenario, then a time table
	scripts/test.sh

lint: tools  ## ansible-lint (production profile), yamllint, antsibull-changelog, actionlint, shellcheck
	$(RUN) scripts/lint.sh

tools:  ## Host tools the checks use beyond the venv (shellcheck, also used by ansible-test sanity)
	@command -v shellcheck >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null; }

sanity:  ## ansible-test sanity on a staged copy of the collection
	$(RUN) scripts/sanity.sh

unit:  ## pytest unit tests of the plugins
	$(RUN) scripts/unit.sh

build-check:  ## The collection builds, installs, and its playbooks load from the installed copy
	$(RUN) scripts/build-check.sh

molecule: image  ## Every Molecule scenario (SCENARIOS="a b" for a subset), with a time table
	$(RUN) scripts/molecule-all.sh $(SCENARIOS)

mitogen: image  ## The hardening roles over SSH through Mitogen, converged twice (changed=0), with behaviour checks
	$(RUN) tests/mitogen/run.sh

docker:  ## Install and start a Docker engine if none answers
	scripts/ensure-docker.sh

image: docker  ## Build the lab host image when its recipe changed
	images/lab/build.sh

lab: image  ## Create lab hosts (LAB_LAYOUT=vps|fleet|baseline), write inventories/lab/hosts.yml, converge site.yml twice
	$(RUN) scripts/lab.sh up

lab-destroy:  ## Remove the lab hosts
	scripts/lab.sh down

bench: image  ## Converge-time benchmark (bench/converge.sh)
	$(RUN) bench/converge.sh

vm-audit:  ## Hardening on a real kernel: a Debian 12 qemu VM, Lynis, sysctls, auditd, reboots (bench/vm-audit.sh)
	$(RUN) bench/vm-audit.sh

fresh-install-check: image  ## A fresh virtualenv installs the built tarball and converges one lab host twice (scripts/fresh-install-check.sh)
	scripts/fresh-install-check.sh

build:  ## Build the collection tarball into build/
	$(RUN) ansible-galaxy collection build --force --output-path build/ .
