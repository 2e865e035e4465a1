#!/bin/sh
# Regenerates policies-configmap.yaml from policies/: exactly the files the
# gateway loads (schema.cedarschema, every *.cedar, entities.json), not
# policies/README.md or policies/tests/. Needs only kubectl (no cluster).
# Run from anywhere; `cargo test --test it deploy::` fails until it is rerun
# after a policy change.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
set -- --from-file=policies/schema.cedarschema
for f in policies/*.cedar; do
    set -- "$@" --from-file="$f"
done
if [ -f policies/entities.json ]; then
    set -- "$@" --from-file=policies/entities.json
fi
kubectl create configmap erasure-gateway-policies "$@" \
    --dry-run=client -o yaml >deploy/kubernetes/policies-configmap.yaml
echo "wrote deploy/kubernetes/policies-configmap.yaml"
