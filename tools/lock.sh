#!/usr/bin/env bash
# Regenerate constraints.txt (the full transitive lock) from a fresh environment built from
# requirements.txt alone. Run after changing requirements.txt; commit both files.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet torch==2.13.0
"$tmp/venv/bin/pip" install --quiet -r requirements.txt
{ echo "# Full lock of the environment \`make\` builds (transitive pins); regenerate with tools/lock.sh"
  "$tmp/venv/bin/pip" freeze | grep -v '^-e' | sed 's/+cpu$//'; } > constraints.txt
rm -rf "$tmp"
echo "wrote constraints.txt"
