# datastore.kubernetes — development entry points.
#
#   make demo      install what is needed, start the local environment, run playbooks/site.yml
#   make test      lint, type check, docs, sanity, unit (make static, beside the rest), integration,
#                  the oldest and newest ansible-core (compat-edge), reliability, molecule, lifecycle
#   make typecheck mypy on plugins/module_utils and plugins/plugin_utils (tests/mypy.ini)
#   make docs      HTML documentation of the modules and roles (antsibull-docs), in the cache directory
#   make reliability  fault injection, generated bad input, secret scan, load, orphaned leases,
#                  and the integration tests marked slow (make integration-slow runs those alone)
#   make bench     benchmarks against the alternatives (results in benchmarks/results/)
#   make bench-day2  day-2 on the real node: rolling restart of PostgreSQL, then of Cassandra (our overhead
#                  per pod) and Cassandra's scale-down against the data moved (bench-day2-cassandra alone)
#   make compat    every supported ansible-core line (tools/compat/versions.txt): docs, unit tests,
#                  every module in the worker and as a module process, site.yml; sanity on the edges
#   make compat-bench  worker vs module process overhead on the oldest and newest line
#   make localenv-up / localenv-down / localenv-status
#   make lifecycle the real node's crash recovery and teardown (stops the environment)
#
# Everything heavy (Go builds, virtual environments, binaries) is cached in
# $(CACHE), outside the repository, and reused by later runs.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CACHE ?= $(or $(DATASTORE_K8S_CACHE),$(HOME)/.cache/datastore-kubernetes)
STATE ?= $(or $(DATASTORE_K8S_STATE),/tmp/datastore-kubernetes-localenv)
export DATASTORE_K8S_CACHE := $(CACHE)
export DATASTORE_K8S_STATE := $(STATE)

PYTHON_BASE ?= python3
REQ_HASH := $(shell cat tests/requirements.txt requirements.txt | sha256sum | cut -c1-12)
VENV ?= $(CACHE)/venv-$(REQ_HASH)
PY := $(VENV)/bin/python
export PATH := $(VENV)/bin:$(CACHE)/bin:$(PATH)

# ansible_collections/datastore/kubernetes must be a real path for ansible-test,
# and an importable one for Ansible: a link for running, a copy for sanity.
REPO_ID := $(shell printf %s "$(CURDIR)" | sha256sum | cut -c1-12)
COLL_LINK_ROOT := /tmp/datastore-kubernetes-collections-$(shell id -u)/$(REPO_ID)
COLL_COPY_ROOT := $(CACHE)/sanity-$(REPO_ID)
export ANSIBLE_COLLECTIONS_PATH := $(COLL_LINK_ROOT)
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH := false

# What the tools would otherwise write into the work tree goes to the cache: Python's bytecode,
# pytest's cache, hypothesis's data. `make test` leaves `git status` as it found it.
export PYTHONPYCACHEPREFIX := $(CACHE)/pycache-$(REPO_ID)
export PYTEST_ADDOPTS := $(PYTEST_ADDOPTS) -o cache_dir=$(CACHE)/pytest-cache-$(REPO_ID)
export HYPOTHESIS_STORAGE_DIRECTORY := $(CACHE)/hypothesis-$(REPO_ID)

LOCALENV := tools/localenv/localenv.sh
LOCALENV_VERSIONS := tools/localenv/versions.env
# pytest results of the last run, summed up at the end of `make test`
JUNIT_DIR := $(CACHE)/junit-$(REPO_ID)
ENV_FILE := $(STATE)/env.sh
WITH_ENV := set -a && source $(ENV_FILE) && set +a &&
PYTEST_ARGS ?=

.PHONY: help
help:
	@grep -E '^#   make' Makefile | sed 's/^#   //'

# ----------------------------------------------------------------------------- setup

$(PY): tests/requirements.txt requirements.txt
	$(PYTHON_BASE) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $(PY)

.PHONY: venv
venv: $(PY)

.PHONY: collection-link
collection-link:
	@mkdir -p $(COLL_LINK_ROOT)/ansible_collections/datastore
	@ln -sfn $(CURDIR) $(COLL_LINK_ROOT)/ansible_collections/datastore/kubernetes

.PHONY: localenv-install
localenv-install: venv
	PYTHON=$(PY) $(LOCALENV) install

.PHONY: localenv-up
localenv-up: localenv-install
	PYTHON=$(PY) $(LOCALENV) up

.PHONY: localenv-down
localenv-down:
	$(LOCALENV) down

.PHONY: localenv-status
localenv-status:
	$(LOCALENV) status

# ----------------------------------------------------------------------------- demo

# The demo stands up PostgreSQL, Cassandra and Elasticsearch, then measures them (tools/demo_summary.py).
DEMO_ARGS ?= -e site_cassandra=true -e site_elasticsearch=true

.PHONY: demo
demo: localenv-up collection-link
	$(WITH_ENV) ansible-playbook -i playbooks/inventory/dev playbooks/site.yml $(DEMO_ARGS)
	$(WITH_ENV) $(PY) tools/demo_summary.py datastore-dev

# ----------------------------------------------------------------------------- tests

.PHONY: lint
lint: venv collection-link
	ansible-lint --profile production --offline
	shellcheck --external-sources --source-path=SCRIPTDIR $(SHELL_SCRIPTS)

# Every tracked shell script (by its first line; templates are not shell until rendered): the roles'
# start-up and backup scripts run in the pods' POSIX shells, the local environment's in bash.
SHELL_SCRIPTS = $(filter-out %.j2,$(shell git ls-files -z | xargs -0 awk 'FNR == 1 && /^\#!.*[\/ ](ba)?sh$$/ {print FILENAME} {nextfile}'))

# The type hints of module_utils and plugin_utils, checked against Python 3.8, the oldest the modules
# run on (tests/mypy.ini). mypy resolves the collection's imports through the link, and keeps its cache
# outside the repository.
.PHONY: typecheck
typecheck: venv collection-link
	cd $(COLL_LINK_ROOT) && MYPYPATH=$(COLL_LINK_ROOT) mypy --config-file $(CURDIR)/tests/mypy.ini \
	  --cache-dir $(CACHE)/mypy-$(REPO_ID) \
	  -p ansible_collections.datastore.kubernetes.plugins.module_utils \
	  -p ansible_collections.datastore.kubernetes.plugins.plugin_utils

# HTML documentation of the modules and roles, made by antsibull-docs from their own docs and built
# by Sphinx with docs/site (no network: nothing is fetched). antsibull-docs checks the docs first
# (lint-collection-docs) and fails on a parse error; any Sphinx warning fails the build.
DOCS_DIR := $(CACHE)/docs-$(REPO_ID)

.PHONY: docs
docs: venv collection-link
	cd $(COLL_LINK_ROOT)/ansible_collections/datastore/kubernetes && \
	  antsibull-docs lint-collection-docs --plugin-docs --skip-rstcheck .
	@rm -rf $(DOCS_DIR) && mkdir -p $(DOCS_DIR)/rst && chmod 700 $(DOCS_DIR) $(DOCS_DIR)/rst
	antsibull-docs --config-file docs/site/antsibull-docs.cfg collection --use-current --fail-on-error \
	  --cleanup everything --dest-dir $(DOCS_DIR)/rst datastore.kubernetes
	cp docs/site/index.rst docs/site/ansible.rst $(DOCS_DIR)/rst/
	sphinx-build -q -W --keep-going -c docs/site -b html $(DOCS_DIR)/rst $(DOCS_DIR)/html
	@echo "HTML documentation: $(DOCS_DIR)/html/index.html"

# The files of the work tree as git sees them (tracked and untracked, not ignored), copied to $(1); a
# tracked file deleted in the work tree is not there to copy. Any other failure to copy fails the target.
copy_tree = git ls-files -co --exclude-standard -z | \
	  while IFS= read -r -d '' f; do if [ -e "$$f" ]; then printf '%s\0' "$$f"; fi; done | \
	  xargs -0 --no-run-if-empty cp --parents -t $(1)

# ansible-test bootstraps pip into its test environments with a script it would download; the
# stand-in in tools/sanity is put where ansible-test looks for the pip version it asks for
# (tools/compat/ansible_test_pip.py reads that version from ansible-test itself).
.PHONY: sanity
sanity: venv
	@pip=$$($(PY) tools/compat/ansible_test_pip.py); \
	  echo "ansible-test $$($(PY) -c 'import ansible; print(ansible.__version__)') bootstraps pip $$pip"; \
	  mkdir -p $(HOME)/.ansible/test/cache; \
	  cp tools/sanity/get_pip.py $(HOME)/.ansible/test/cache/get_pip_$${pip//./_}.py
	@rm -rf $(COLL_COPY_ROOT)
	@mkdir -p $(COLL_COPY_ROOT)/ansible_collections/datastore/kubernetes
	@$(call copy_tree,$(COLL_COPY_ROOT)/ansible_collections/datastore/kubernetes/)
	cd $(COLL_COPY_ROOT)/ansible_collections/datastore/kubernetes && \
	  ansible-test sanity --python $$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
	    --local --color no $(SANITY_ARGS)

.PHONY: unit
unit: venv collection-link
	pytest -q tests/unit --junitxml=$(JUNIT_DIR)/unit.xml $(PYTEST_ARGS)

# Integration tests marked slow (several minutes each, such as the day-2 Elasticsearch test on three
# real nodes) run in `make reliability`, not in `make test`; `make integration-slow` runs them alone.
.PHONY: integration
integration: venv collection-link
	$(WITH_ENV) pytest -q tests/integration -m "not slow" --junitxml=$(JUNIT_DIR)/integration.xml $(PYTEST_ARGS)

.PHONY: integration-slow
integration-slow: venv collection-link
	$(WITH_ENV) pytest -q tests/integration -m slow --junitxml=$(JUNIT_DIR)/integration-slow.xml $(PYTEST_ARGS)

# The reliability suite (tests/reliability, figures in benchmarks/results/reliability.json).
# Bad input and load use the local environment; tests/reliability/private stops and starts
# servers, so it starts an environment of its own (ports moved by 200) in a pytest run of its
# own. `make test` runs all but the tests marked slow (the node failure, which waits out the
# node monitor grace period, the secret scan, which runs the integration suite again, and the
# three-node Cassandra ring killed under QUORUM writes).
RELIABILITY_PRIVATE := tests/reliability/private
RELIABILITY_MARKS ?=

.PHONY: reliability-shared
reliability-shared: venv collection-link
	$(WITH_ENV) pytest -q tests/reliability --ignore=$(RELIABILITY_PRIVATE) $(if $(RELIABILITY_MARKS),-m "$(RELIABILITY_MARKS)") --junitxml=$(JUNIT_DIR)/reliability-shared.xml $(PYTEST_ARGS)

.PHONY: reliability-private
reliability-private: venv collection-link localenv-install
	pytest -q $(RELIABILITY_PRIVATE) $(if $(RELIABILITY_MARKS),-m "$(RELIABILITY_MARKS)") --junitxml=$(JUNIT_DIR)/reliability-private.xml $(PYTEST_ARGS)

.PHONY: reliability
reliability: localenv-up
	status=0; \
	  RELIABILITY_RANDOM=1 $(MAKE) reliability-shared || status=$$?; \
	  $(MAKE) integration-slow || status=$$?; \
	  $(MAKE) reliability-private || status=$$?; \
	  exit $$status

# The real node's crash recovery and teardown, checked on the host itself. It stops the
# environment it runs against, so `make test` runs it last.
.PHONY: lifecycle
lifecycle: venv collection-link
	$(WITH_ENV) pytest -q tests/lifecycle --junitxml=$(JUNIT_DIR)/lifecycle.xml $(PYTEST_ARGS)

.PHONY: molecule
molecule: venv collection-link
	$(WITH_ENV) molecule test -s default

# One scenario per datastore role; they share .config/molecule/config.yml and
# molecule/_shared/converge.yml.
ROLE_SCENARIOS := $(filter-out _shared default kind,$(notdir $(wildcard molecule/*)))

.PHONY: molecule-roles
molecule-roles: venv collection-link
	$(WITH_ENV) for s in $(ROLE_SCENARIOS); do molecule test -s $$s || exit 1; done

# The checks that need no cluster, one after the other.
.PHONY: static
static: venv collection-link
	$(MAKE) lint
	$(MAKE) typecheck
	$(MAKE) docs
	$(MAKE) sanity
	$(MAKE) unit

# The whole suite. The checks that need no cluster (`static`) run beside the environment's start and
# the cluster suites, which mostly wait on pods and servers; their output is kept in the cache and
# shown when they end. The local environment is started for the suite and stopped after it, whatever
# the outcome.
STATIC_LOG := $(JUNIT_DIR)/static.log

.PHONY: test
test: venv collection-link localenv-install
	@rm -rf $(JUNIT_DIR) && mkdir -p $(JUNIT_DIR)
	@echo "ansible-core $$($(PY) -c 'import ansible; print(ansible.__version__)'), Python $$($(PY) -c 'import platform; print(platform.python_version())'), Kubernetes $$(. $(LOCALENV_VERSIONS) && echo $$K8S_VERSION)"
	$(LOCALENV) down
	export RELIABILITY_RESULTS=$(JUNIT_DIR)/reliability.json; status=0; \
	  $(MAKE) static >$(STATIC_LOG) 2>&1 & static_pid=$$!; \
	  PYTHON=$(PY) $(LOCALENV) up || status=$$?; \
	  if [ $$status -eq 0 ]; then $(MAKE) integration || status=$$?; fi; \
	  if [ $$status -eq 0 ]; then $(MAKE) compat-edge || status=$$?; fi; \
	  if [ $$status -eq 0 ]; then $(MAKE) reliability-shared RELIABILITY_MARKS="not slow" || status=$$?; fi; \
	  if [ $$status -eq 0 ]; then $(MAKE) reliability-private RELIABILITY_MARKS="not slow" || status=$$?; fi; \
	  if [ $$status -eq 0 ]; then $(MAKE) molecule || status=$$?; fi; \
	  if [ $$status -eq 0 ]; then $(MAKE) molecule-roles || status=$$?; fi; \
	  if [ $$status -eq 0 ]; then $(MAKE) lifecycle || status=$$?; fi; \
	  $(LOCALENV) down; \
	  static_status=0; wait $$static_pid || static_status=$$?; \
	  echo "---- lint, typecheck, docs, sanity, unit (make static): exit $$static_status ----"; \
	  cat $(STATIC_LOG); \
	  if [ $$status -eq 0 ]; then status=$$static_status; fi; \
	  $(PY) tools/test_summary.py $(JUNIT_DIR) || true; \
	  exit $$status

# ----------------------------------------------------------------------------- ansible-core lines
# A venv per supported ansible-core line (tools/compat/venv.sh, cached in $(CACHE)). For each
# line: ansible-doc of every module, the unit tests, and tests/compat against the local
# environment (every module in the worker and as a module process, site.yml converge, no-op and
# check). `make test` runs the oldest and the newest line (compat-edge); `make compat` runs all of
# them and ansible-test sanity with the oldest's and the newest's ansible-test.
COMPAT_LINES := $(shell awk '!/^\#/ && NF {print $$1}' tools/compat/versions.txt)
COMPAT_EDGES := $(firstword $(COMPAT_LINES)) $(lastword $(COMPAT_LINES))
LINE ?= $(lastword $(COMPAT_LINES))

.PHONY: compat-venvs
compat-venvs:
	for line in $(COMPAT_LINES); do tools/compat/venv.sh $$line >/dev/null; done

# One line: LINE=2.16 make compat-line (the local environment must be up).
.PHONY: compat-line
compat-line: venv collection-link
	venv=$$(tools/compat/venv.sh $(LINE)); \
	  echo "== ansible-core $(LINE): $$venv"; \
	  $$venv/bin/python -m pytest -q -p no:cacheprovider tests/unit --junitxml=$(JUNIT_DIR)/compat-$(LINE)-unit.xml; \
	  $(WITH_ENV) COMPAT_VENV=$$venv COMPAT_LINE=$(LINE) pytest -q tests/compat \
	    --junitxml=$(JUNIT_DIR)/compat-$(LINE)-smoke.xml $(PYTEST_ARGS)

# ansible-test sanity of one line with that line's ansible-test (it makes its own test venvs; the
# pip bootstrap it would download is the ensurepip stand-in in tools/sanity, as for `make sanity`).
.PHONY: compat-sanity
compat-sanity:
	venv=$$(tools/compat/venv.sh $(LINE)); \
	  pyver=$$($$venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  pip=$$($$venv/bin/python tools/compat/ansible_test_pip.py); \
	  mkdir -p $(HOME)/.ansible/test/cache; \
	  cp tools/sanity/get_pip.py $(HOME)/.ansible/test/cache/get_pip_$${pip//./_}.py; \
	  root=$(CACHE)/sanity-$(REPO_ID)-$(LINE); rm -rf $$root; \
	  mkdir -p $$root/ansible_collections/datastore/kubernetes; \
	  $(call copy_tree,$$root/ansible_collections/datastore/kubernetes/); \
	  cd $$root/ansible_collections/datastore/kubernetes && \
	  PATH="$$venv/bin:$$PATH" ansible-test sanity --python $$pyver --local --color no $(SANITY_ARGS)

.PHONY: compat-edge
compat-edge: venv collection-link
	for line in $(COMPAT_EDGES); do $(MAKE) compat-line LINE=$$line || exit 1; done

.PHONY: compat
compat: localenv-up collection-link
	status=0; \
	  for line in $(COMPAT_LINES); do $(MAKE) compat-line LINE=$$line || status=1; done; \
	  for line in $(COMPAT_EDGES); do $(MAKE) compat-sanity LINE=$$line || status=1; done; \
	  exit $$status

# ----------------------------------------------------------------------------- benchmarks

.PHONY: bench
bench: localenv-up collection-link
	$(WITH_ENV) $(PY) benchmarks/run.py

# Health-gated rolling restart of PostgreSQL against its own restart time, on the real node of the
# running environment (it does not start one); results in benchmarks/results/day2.json and day2.md.
# Then Cassandra (bench-day2-cassandra, alone too): restart overhead per pod and scale-down time against
# the data moved, in benchmarks/results/day2-cassandra-bench.json and day2-cassandra.md.
DAY2_CASSANDRA_ARGS ?=
.PHONY: bench-day2 bench-day2-cassandra
bench-day2: venv collection-link
	$(WITH_ENV) $(PY) benchmarks/day2.py
	$(WITH_ENV) $(PY) benchmarks/day2_cassandra.py $(DAY2_CASSANDRA_ARGS)

bench-day2-cassandra: venv collection-link
	$(WITH_ENV) $(PY) benchmarks/day2_cassandra.py $(DAY2_CASSANDRA_ARGS)

# Worker against module process on the oldest and the newest ansible-core line (or LINES=2.16,2.19);
# results in benchmarks/results/compat.json and compat.md.
LINES ?=
.PHONY: compat-bench
compat-bench: localenv-up collection-link
	$(WITH_ENV) $(PY) benchmarks/compat.py $(if $(LINES),--lines $(LINES))

.PHONY: build
build: venv
	ansible-galaxy collection build --force --output-path $(CACHE)/dist .
