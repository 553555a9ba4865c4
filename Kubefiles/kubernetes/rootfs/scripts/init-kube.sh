#!/bin/bash
# sealer v0.11 runs `cd <rootfs>/scripts && export RegistryURL=... && bash init-kube.sh`
# on every host before kubeadm init/join: install kubeadm, kubelet, kubectl,
# seautil and helm (sealer runs `helm install` on master0 for every chart app
# an image launches), enable kubelet, and prepare the host as kubeadm's preflight expects.
# On master0 /etc/kubernetes/kubeadm.yaml already exists here; sealer v0.11 always
# adds a controller-manager flag Kubernetes 1.25 removed, so it is taken out again.
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

for b in kubeadm kubelet kubectl seautil helm; do
	[ -x "$rootfs/bin/$b" ] || die "$rootfs/bin/$b is missing: the image was built without its payload"
	install -D -m 0755 "$rootfs/bin/$b" "$R/usr/bin/$b"
done

# Host preparation (kubeadm preflight: swap, br_netfilter, ip_forward).
swapoff -a
[ -f "$R/etc/fstab" ] && sed -i -E '/^[^#].*[[:space:]]swap[[:space:]]/s/^/#cnstack# /' "$R/etc/fstab"
mkdir -p "$R/etc/modules-load.d" "$R/etc/sysctl.d"
cat >"$R/etc/modules-load.d/kubernetes.conf" <<'CONF'
overlay
br_netfilter
CONF
for m in overlay br_netfilter; do modprobe "$m" 2>/dev/null || log "modprobe $m failed (built into the kernel?)"; done
cat >"$R/etc/sysctl.d/99-kubernetes.conf" <<'CONF'
net.ipv4.ip_forward = 1
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
CONF
sysctl -q -p "$R/etc/sysctl.d/99-kubernetes.conf"
if [ "$(os_family)" = rhel ] && systemctl is-active -q firewalld 2>/dev/null; then
	# firewalld's default zone drops the pod and service traffic kube-proxy routes.
	log "stopping firewalld (Kubernetes manages the node's packet filter)"
	systemctl disable --now firewalld
fi
# sealer's kubeadm defaults mount /etc/localtime into the control plane (type File).
if [ ! -e "$R/etc/localtime" ]; then
	if [ -e "$R/usr/share/zoneinfo/UTC" ]; then ln -sf /usr/share/zoneinfo/UTC "$R/etc/localtime"; else printf 'TZif2' >"$R/etc/localtime"; fi
fi

# kubelet: the unit and drop-in kubeadm documents. /etc/sysconfig/kubelet (RHEL,
# and written by this image's kubelet-node-ip plugin) and /etc/default/kubelet
# (Debian) carry KUBELET_EXTRA_ARGS.
install_unit kubelet.service "[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target containerd.service
After=network-online.target containerd.service

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target"
mkdir -p "$R/etc/systemd/system/kubelet.service.d"
cat >"$R/etc/systemd/system/kubelet.service.d/10-kubeadm.conf" <<'CONF'
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/sysconfig/kubelet
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
CONF
systemctl daemon-reload
systemctl enable kubelet >/dev/null 2>&1

if [ -f "$R/etc/kubernetes/kubeadm.yaml" ]; then
	# Removed in Kubernetes 1.25 (kubernetes#108476, sealer#2245); etc/kubeadm.yml sets
	# cluster-signing-duration, its successor, instead.
	sed -i '/experimental-cluster-signing-duration/d' "$R/etc/kubernetes/kubeadm.yaml"
fi
log "kubeadm $("$R/usr/bin/kubeadm" version -o short), kubelet enabled"
