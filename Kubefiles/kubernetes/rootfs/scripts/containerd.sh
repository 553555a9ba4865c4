#!/bin/bash
# sealer v0.11 runs `bash <rootfs>/scripts/containerd.sh` on every host before the
# registry and Kubernetes: install containerd v2, runc, crictl and the CNI plugins
# from <rootfs>/cri, trust the embedded registry, start containerd.
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

reg=$(registry_url)
pause="$reg/${PauseImage:-pause:3.10.1}"
cri=$rootfs/cri

[ -x "$cri/bin/containerd" ] || die "$cri/bin/containerd is missing: the image was built without its payload"

if [ "$(os_family)" = rhel ] && command -v getenforce >/dev/null && [ "$(getenforce)" = Enforcing ]; then
	# kubeadm's documented requirement on SELinux hosts (containers read host paths).
	log "SELinux: enforcing -> permissive"
	setenforce 0
	sed -i 's/^SELINUX=enforcing/SELINUX=permissive/' "$R/etc/selinux/config" 2>/dev/null || true
fi

log "installing containerd, runc, crictl into /usr/local/bin and CNI plugins into /opt/cni/bin"
install -d "$R/usr/local/bin" "$R/opt/cni/bin" "$R/etc/containerd" "$R/etc/cni/net.d" "$R/etc/sealerio/cri"
for f in "$cri"/bin/*; do install -m 0755 "$f" "$R/usr/local/bin/"; done
for f in "$cri"/cni/*; do install -m 0755 "$f" "$R/opt/cni/bin/"; done

# With workers, sealer v0.11 puts the registry behind a VIP on each worker
# (`seautil ipvs --vs 10.103.97.2:5000 …`) right after this script and before
# init-kube.sh: seautil must be on PATH now, and the IPVS modules loaded.
[ -x "$rootfs/bin/seautil" ] || die "$rootfs/bin/seautil is missing: the image was built without its payload"
install -D -m 0755 "$rootfs/bin/seautil" "$R/usr/bin/seautil"
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh nf_conntrack; do modprobe "$m" 2>/dev/null || log "modprobe $m failed (built into the kernel?)"; done

# containerd 2.x config (version 3). Every image comes from the embedded registry:
# kubeadm's under $reg directly, others (docker.io/..., registry.cnstack.local/...)
# through the _default mirror, which has no fallback to the internet.
cat >"$R/etc/containerd/config.toml" <<TOML
version = 3
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$pause"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "/etc/containerd/certs.d"

[plugins.'io.containerd.cri.v1.runtime']
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/opt/cni/bin"]
    conf_dir = "/etc/cni/net.d"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      SystemdCgroup = true
      BinaryName = "/usr/local/bin/runc"
TOML

# sealer puts the registry's CA at certs.d/<registry>/<domain>.crt once the
# registry is up; containerd reads hosts.toml at every pull, so this can come first.
install -d "$R/etc/containerd/certs.d/$reg" "$R/etc/containerd/certs.d/_default"
cat >"$R/etc/containerd/certs.d/_default/hosts.toml" <<TOML
# Every registry not named under certs.d/ is served by the cluster's registry:
# docker.io/library/x resolves to https://$reg/v2/library/x. No fallback.
server = "https://$reg"

[host."https://$reg"]
  capabilities = ["pull", "resolve"]
  ca = "/etc/containerd/certs.d/$reg/$(registry_domain).crt"
TOML

cat >"$R/etc/crictl.yaml" <<'YAML'
runtime-endpoint: unix:///run/containerd/containerd.sock
image-endpoint: unix:///run/containerd/containerd.sock
timeout: 30
YAML

# sealer v0.11 reads the CRI socket for kubeadm from here (and removes it on delete).
echo "unix:///run/containerd/containerd.sock" >"$R/etc/sealerio/cri/socket-path"

mkdir -p "$R/etc/modules-load.d"
cat >"$R/etc/modules-load.d/containerd.conf" <<'CONF'
overlay
br_netfilter
CONF
modprobe overlay || log "modprobe overlay failed (built into the kernel?)"
modprobe br_netfilter || log "modprobe br_netfilter failed (built into the kernel?)"

install_unit containerd.service "[Unit]
Description=containerd container runtime (cnstack kubernetes base)
Documentation=https://containerd.io
After=network.target local-fs.target

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
LimitNPROC=infinity
LimitCORE=infinity
LimitNOFILE=infinity
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target"

systemctl daemon-reload
systemctl enable containerd >/dev/null 2>&1
systemctl restart containerd
wait_for "containerd" 60 "$R/usr/local/bin/ctr" --address /run/containerd/containerd.sock version
log "containerd $("$R/usr/local/bin/containerd" --version | awk '{print $3}') is running; sandbox image $pause"
