#!/usr/bin/env bash
# lint.shellcheck: shellcheck on every shell script of hack/ and tests/, following what they source. A finding fails
# the test; a deliberate exception is a `# shellcheck disable=SCxxxx  # reason` next to the line it is about.
# Without shellcheck the test is skipped (exit 77, the test's SKIP_RETURN_CODE), not failed: hack/deps.sh installs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v shellcheck >/dev/null 2>&1; then
  echo "lint.shellcheck: skipped: shellcheck is not installed (hack/deps.sh installs it)"
  exit 77
fi
mapfile -t scripts < <(find hack tests -type f -name '*.sh' | sort)
[ "${#scripts[@]}" -gt 0 ] || { echo "lint.shellcheck: no scripts found under hack/ and tests/" >&2; exit 1; }
echo "lint.shellcheck: $(shellcheck --version | sed -n 's/^version: /shellcheck /p') on ${#scripts[@]} scripts"
# --source-path=SCRIPTDIR: a `# shellcheck source=lib.sh` directive is relative to the script that carries it.
shellcheck --external-sources --source-path=SCRIPTDIR "${scripts[@]}"
echo "lint.shellcheck: no findings"
