#!/bin/sh
kubectl apply -f nginx.yaml -f exporter.yaml
