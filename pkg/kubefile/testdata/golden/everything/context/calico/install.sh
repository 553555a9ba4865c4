kubectl apply -f calico.yaml
