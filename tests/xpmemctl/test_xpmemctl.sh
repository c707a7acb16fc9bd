#!/bin/sh
# xpmemctl tests, run inside a test-lab guest by tests/guest/run-suite.sh (root, module
# loaded): the checks are in test_xpmemctl.py, which prints cmocka-style totals.
# Usage: test_xpmemctl.sh BUILD_DIR [XPMEMCTL]   (XPMEMCTL: the binary under test,
# default BUILD_DIR/tools/xpmemctl; the sanitizer build is BUILD_DIR/tools/xpmemctl-asan)
exec python3 "$(dirname "$0")/test_xpmemctl.py" "${1:-build}" ${2:+"$2"}
