# SPDX-License-Identifier: GPL-2.0-or-later
# A thin wrapper over meson/ninja.
BUILD ?= build

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	meson setup $(BUILD)

check:
	bash scripts/run-tests.sh

demo:
	bash scripts/demo.sh

bench: all
	bash scripts/bench.sh

clean:
	rm -rf $(BUILD) build-san tests/qemu-iotests/scratch

.PHONY: all check demo bench clean
