#!/usr/bin/env bash
# Prints one closing line with the totals of every test runner `make test`
# ran (cargo's "test result" lines and node's "# pass"/"# fail" lines in the
# log), and fails when anything failed or nothing ran.
set -euo pipefail
log=${1:?usage: test-summary.sh LOG}
passed=0
failed=0
while read -r count; do passed=$((passed + count)); done < <(grep -oE 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
while read -r count; do failed=$((failed + count)); done < <(grep -oE 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$log" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
while read -r count; do passed=$((passed + count)); done < <(grep -E '^# pass [0-9]+$' "$log" | grep -oE '[0-9]+')
while read -r count; do failed=$((failed + count)); done < <(grep -E '^# fail [0-9]+$' "$log" | grep -oE '[0-9]+')
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
