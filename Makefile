# The two commands of the README's Quick start are `make demo` and `make test`;
# both set everything up on a fresh Debian machine first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   ?= topologies/two-hosts-vxlan.yaml
# what the demo traces: vm1's first packet to vm3 on hv1, through br-int and br-tun
TRACE  ?= --host hv1 --bridge br-int --generate \
          in_port=tapvm1-eth0,ip,dl_src=fa:16:3e:00:01:01,dl_dst=fa:16:3e:00:01:02,nw_src=10.0.1.11,nw_dst=10.0.1.12,nw_ttl=64
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-deps venv demo test lint bench clean

setup: system-deps venv

# Debian's Open vSwitch gives the real ovsdb-server (the `real` backend) and
# the ovs-vsctl/ovsdb-client/ovs-ofctl the differential tests compare against.
system-deps:
	@if ! command -v ovs-vsctl >/dev/null || [ ! -x /usr/sbin/ovsdb-server ]; then \
	  echo "installing Debian's openvswitch-switch"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq openvswitch-switch >/dev/null; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

venv: $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'

# The main job needs nothing outside pip: each host's OVSDB is ovsnet's
# embedded server.
demo: venv
	$(BIN)/ovsnet validate topologies/*.yaml
	$(BIN)/ovsnet up $(DEMO)
	$(BIN)/ovsnet trace $(DEMO) $(TRACE)

lint:
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/pytest

bench: setup
	mkdir -p bench-results
	$(BIN)/ovsnet bench ovsdb --out bench-results/ovsdb.json

clean:
	rm -rf $(VENV) build *.egg-info ovsnet/*.so native/*.c bench-results
