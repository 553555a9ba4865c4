#!/bin/bash
kubectl apply -f calico.yaml
