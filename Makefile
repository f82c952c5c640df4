# nestlab.cloudlab — every target sets up what it needs through tools/bootstrap.sh.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export NESTLAB_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/nestlab-cloudlab
MARKER_ISO := $(CURDIR)/.cache/marker.iso
INSTALLER_ISO := $(CURDIR)/.cache/fake-installer.iso
KERNEL_ISO := $(CURDIR)/.cache/kernel-installer.iso
# Scenarios outside `make test` (each says why in its molecule.yml); run them by name.
EXTRA_SCENARIOS := debian_installer
SCENARIOS ?= $(filter-out $(EXTRA_SCENARIOS),$(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))

.PHONY: help setup demo demo-destroy test unit lint sanity molecule bench build clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

setup:  ## Install host packages (if missing), .venv and dependency collections
	@tools/bootstrap.sh

demo: setup  ## Boot the test-bed hypervisor and run site.yml against it
	@tools/demo.sh

demo-destroy:  ## Stop the demo hypervisor
	@python3 tests/testbed/testbed.py down demo

test: setup  ## The whole suite (what CI runs), with a per-layer and per-scenario timing table
	@tools/test.sh

unit: setup  ## pytest unit tests
	pytest

lint: setup  ## ansible-lint (production profile), yamllint via ansible-lint, shellcheck
	ansible-lint --profile production
	shellcheck tools/*.sh bench/run.sh .ci/run

sanity: setup  ## ansible-test sanity on a temporary ansible_collections/ copy
	tools/sanity.sh

$(MARKER_ISO): tests/testbed/marker_iso.py
	@mkdir -p $(dir $@)
	python3 tests/testbed/marker_iso.py $@

$(INSTALLER_ISO): tests/testbed/fake_installer_iso.py tests/testbed/marker_iso.py
	@mkdir -p $(dir $@)
	python3 tests/testbed/fake_installer_iso.py $@

molecule: setup $(MARKER_ISO) $(INSTALLER_ISO)  ## Every molecule scenario (SCENARIOS="a b" to choose), each on its own test-bed VM (tools/molecule.sh)
	@python3 tests/testbed/testbed.py image >/dev/null
	@python3 tests/testbed/kernel_iso.py $(KERNEL_ISO)
	@tools/molecule.sh $(SCENARIOS)

bench: setup  ## Benchmarks (see bench/README.md)
	@bench/run.sh

build: setup  ## Build the collection tarball
	ansible-galaxy collection build --force --output-path .cache/dist .

clean:  ## Remove the venv, caches and stray beds (the image cache stays)
	python3 tests/testbed/testbed.py reap
	rm -rf .venv .cache .pytest_cache collections/ansible_collections/{ansible,community}
