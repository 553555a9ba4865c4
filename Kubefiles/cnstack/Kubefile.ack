# The image operators run (ack edition): sealer run registry.cnstack.io/cnstack/cnstack:v0.1.0-ack
# ACK Distro installs its CNI (hybridnet) and CSI with its own plugins, so there is no CNI app to
# launch; otherwise the same apps as Kubefile, in the same order.
FROM multicluster
ARG EDITION
LABEL org.cnstack.edition=${EDITION}
LABEL org.cnstack.layer=cnstack
COPY checks checks
LAUNCH ["kruise", "istio-base", "istiod", "istio-ingress", "dapr", "otel-collector", "prometheus", "elasticsearch", "fluentd", "skywalking", "chaosblade", "nacos", "sentinel", "seata", "rocketmq", "shardingsphere-proxy"]
