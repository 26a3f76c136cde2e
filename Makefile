# SPDX-License-Identifier: Apache-2.0
#
# Front door for people: `make run` builds and starts jwtd on
# 127.0.0.1:8080 with SQLite; `make test` runs every test. Meson and ninja do
# the real building.

BUILD ?= build
ARGS ?=

.PHONY: all build run test unit e2e bench clean deps

all: build

deps:
	@scripts/deps.sh build

$(BUILD)/build.ninja:
	@scripts/deps.sh build
	meson setup $(BUILD)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: deps build
	./$(BUILD)/jwtd serve $(ARGS)

test:
	@scripts/test.sh

unit: build
	meson test -C $(BUILD) --print-errorlogs --suite unit

# The end-to-end suite on this build and SQLite (PostgreSQL tests skip
# without JWTD_TEST_PG_URL; scripts/test.sh runs both backends).
e2e: build
	JWTD_BIN=$(abspath $(BUILD))/jwtd /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e

bench: build
	bench/run.sh

clean:
	rm -rf $(BUILD) build-asan build-fuzz
