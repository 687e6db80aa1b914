# Two commands on a fresh machine: `make test` and `make demo`. Both build .venv from PyPI
# when it is missing and make this checkout importable as the selfmanaged.eks collection.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
COLLECTIONS := $(CURDIR)/$(VENV)/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/selfmanaged/eks
SANITY_ROOT := $(CURDIR)/build/sanity
SANITY_TREE := $(SANITY_ROOT)/ansible_collections/selfmanaged/eks
STAMP := $(VENV)/.installed
# The test suites' caches of work every Ansible run repeats identically (tests/tools/run_cache.py: the bytecode of
# AnsiballZ imports, the AnsiballZ payloads, collection routing metadata, botocore's parsed data files), and each
# process's skipped last garbage collection: installed into .venv, used by every Ansible run the tests and the demo start.
RUN_CACHE_HOOK := $(VENV)/.run_cache_hook
export SELFMANAGED_EKS_RUN_CACHE := $(CURDIR)/$(VENV)/run-cache
# The venv's site-packages, for a recipe's shell (the venv may not exist yet when make reads this file).
PURELIB := $(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
SITE_COLLECTIONS = $(shell $(BIN)/python -c 'import ansible, os; print(os.path.join(os.path.dirname(os.path.dirname(ansible.__file__)), "ansible_collections"))')

export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_LOCAL_TEMP := $(CURDIR)/$(VENV)/tmp
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# The sandbox and tests talk to loopback only.
export NO_PROXY := 127.0.0.1,localhost
export no_proxy := 127.0.0.1,localhost

.PHONY: help venv kubectl nodehost-tools nodehost-image test checks lint sanity unit integration sandbox-tests molecule demo sandbox bench build changelog clean

help:
	@echo "make test    lint, sanity, unit, integration and molecule tests (builds .venv first)"
	@echo "make demo    start the sandbox, run playbooks/site.yml twice against it, stop it"
	@echo "make bench   benchmarks under tests/benchmarks (tables, not assertions)"
	@echo "make build   ansible-galaxy collection build"

venv: $(STAMP) $(COLLECTION_LINK) $(RUN_CACHE_HOOK)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# (pip warns about every find-links location of the machine's pip.conf it cannot use: hide only those)
	# pip byte-compiles file after file on one core, every file of the ~100 collections bundled with ansible too,
	# most never imported here: compile on both cores instead, all but the bundle, and of it the collections used
	# (64 -> 56 s of a fresh clone's set-up, measured).
	$(BIN)/pip install --quiet --no-compile --upgrade-strategy only-if-needed -r requirements-dev.txt 2>&1 \
		| { grep -v "^WARNING: Location '.*' is ignored" || true; }
	site=$$($(PURELIB)); \
	$(BIN)/python -m compileall -q -j 0 -x '/ansible_collections/' $$site > /dev/null; \
	$(BIN)/python -m compileall -q -j 0 $$site/ansible_collections/amazon $$site/ansible_collections/community/aws \
		$$site/ansible_collections/kubernetes $$site/ansible_collections/ansible $$site/ansible_collections/containers > /dev/null
	touch $@

$(RUN_CACHE_HOOK): tests/tools/run_cache.py $(STAMP)
	site=$$($(PURELIB)); \
	rm -f $$site/_selfmanaged_eks_bytecode_cache.py $$site/_selfmanaged_eks_bytecode_cache.pth; \
	cp tests/tools/run_cache.py $$site/_selfmanaged_eks_run_cache.py && \
	echo "import _selfmanaged_eks_run_cache" > $$site/_selfmanaged_eks_run_cache.pth
	touch $@

# The checkout itself is the collection: a relative link, nothing copied.
$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

# Two streams side by side, each keeping its output together: the integration suite (the longest,
# started first) and, one after another, lint, sanity, unit, the sandbox's own tests and Molecule.
# The integration suite alone kept 2 cores 87% busy (measured with time -v): the checks fill the rest
# instead of running before it.
test: venv
	$(MAKE) -j2 --output-sync=target integration checks

checks: venv nodehost-image
	$(MAKE) lint
	$(MAKE) sanity
	$(MAKE) unit
	$(MAKE) sandbox-tests
	$(MAKE) molecule

lint: venv
	$(BIN)/ansible-lint --profile production --strict

# ansible-test needs the collection under ansible_collections/<ns>/<name> as a real path, so
# sanity runs on a copy (its own little git repository, as ansible-test lists files with
# git) of the tracked and unignored files of what we ship (the test
# infrastructure under tests/ and extensions/ is pytest/molecule code, not collection
# content, and is linted by pytest runs instead). Its pip bootstrap download is replaced by
# a local stand-in that runs pip from a PyPI wheel (tests/sanity/prepare_offline_bootstrap.py).
sanity: venv
	$(BIN)/python tests/sanity/prepare_offline_bootstrap.py
	rm -rf $(SANITY_ROOT) && mkdir -p $(SANITY_TREE)
	git ls-files -co --exclude-standard | grep -Ev '^(tests/(sandbox|nodehosts|unit|integration|benchmarks|tools)/|tests/[^/]*\.py$$|extensions/)' \
		| xargs -d '\n' cp --parents -t $(SANITY_TREE)/
	for ns in amazon community kubernetes; do ln -sfn $(SITE_COLLECTIONS)/$$ns $(SANITY_ROOT)/ansible_collections/$$ns; done
	cd $(SANITY_TREE) && git init -q && git add -A && $(BIN)/ansible-test sanity --python 3.11 --local --color no

unit: venv
	$(BIN)/python -m pytest -q tests/unit

# Workers (one sandbox each, files kept whole): these suites mostly wait on the sandbox's
# status delays and on ansible-playbook start-up, so more workers than cores still pay off.
PYTEST_WORKERS ?= 2
INTEGRATION_WORKERS ?= 5

# The sandbox's own tests drive its Kubernetes API with kubectl as users do.
kubectl:
	@command -v kubectl >/dev/null 2>&1 || { echo "kubectl is missing: installing Debian's kubectl package"; \
		apt-get update -qq && apt-get install -y -qq kubectl; }

# The node hosts of the patching tests (tests/nodehosts) are podman containers (runtime runc) of a
# Debian image that debootstrap builds on first use; dpkg-deb builds their test packages.
nodehost-tools:
	@missing=""; for tool in podman runc debootstrap dpkg-deb; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then echo "missing:$$missing: installing Debian's podman, runc and debootstrap packages"; \
		apt-get update -qq && apt-get install -y -qq podman runc debootstrap dpkg; fi

# Built once per machine and recipe (tagged by its hash), before the suites that start node hosts.
nodehost-image: venv nodehost-tools
	$(BIN)/python -m tests.nodehosts image

sandbox-tests: venv kubectl
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile tests/sandbox/tests

integration: venv nodehost-image
	$(BIN)/python -m pytest -q -n $(INTEGRATION_WORKERS) --dist loadfile --durations=15 tests/integration

# One fresh sandbox per scenario, its environment exported to molecule; its Nodes follow the node
# hosts a scenario starts with `python -m tests.nodehosts up` (removed when the scenario ends).
molecule: venv nodehost-image
	@scenarios=$$(find extensions/molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -r -n1 basename | sort); \
	if [ -z "$$scenarios" ]; then echo "molecule: no scenarios yet"; exit 0; fi; \
	for s in $$scenarios; do \
		echo "== molecule scenario $$s"; \
		$(BIN)/python -m tests.sandbox.with_sandbox --node-hosts -- $(BIN)/molecule test -s $$s; \
	done

demo: venv
	$(BIN)/python -m tests.sandbox.demo

sandbox: venv
	$(BIN)/python -m tests.sandbox

bench: venv
	@for b in tests/benchmarks/bench_*.py; do $(BIN)/python $$b; done

build: venv
	$(BIN)/ansible-galaxy collection build --force --output-path build/

changelog: venv
	$(BIN)/antsibull-changelog lint

clean:
	rm -rf $(VENV) build tests/output .pytest_cache
