#!/bin/bash
# The policy matrix in the mode kernels before 5.14 run in: no
# SO_NETNS_COOKIE, so connect() cannot tell the client and tc at the
# destination enforces every denial (clients time out). The agent is told
# to behave as on such a kernel; tests/e2e/lib.sh adapts the expectations.
export SLUICE_TEST_NO_NETNS_COOKIE=1
exec "$(dirname "$0")/test_policy.sh"
