#!/bin/sh
# The demo, run by `make demo` inside one instance:
#   flux start sh examples/demo.sh
# 1. examples/demo.py: the instance, the KVS, RPC throughput;
# 2. seed part (a): 1025 copies of a `sleep 0` jobspec through submit_async + wait;
# 3. seed part (b): `/bin/sleep 0` 200 times through FluxExecutor.
set -e
here=$(dirname "$0")
PYTHON=${PYTHON:-python3}
FLUX=${FLUX:-flux}

$PYTHON "$here/demo.py"

echo
echo "== seed part (a): bulksubmit.py (submit_async + wait) =="
jobs=$(mktemp -d)
trap 'rm -rf "$jobs"' EXIT
$FLUX mini run --dry-run -n1 sleep 0 > "$jobs/0.json"
for i in $(seq 1 1024); do cp "$jobs/0.json" "$jobs/$i.json"; done
$PYTHON "$here/bulksubmit.py" "$jobs"/*.json

echo
echo "== seed part (b): bulksubmit_executor.py (FluxExecutor) =="
$PYTHON "$here/bulksubmit_executor.py" -n200 /bin/sleep 0
