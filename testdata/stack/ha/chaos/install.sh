#!/bin/bash
set -euo pipefail
kubectl create namespace chaos --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -n chaos -f chaos-operator.yaml
