#!/bin/bash
# sealer v0.11 runs this on `sealer delete`: stop and remove what containerd.sh and
# init-registry.sh installed. sealer itself only removes a docker/nerdctl container
# named sealer-registry, so the registry service goes here too.
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
set +e
for unit in sealer-registry containerd; do
	systemctl disable --now "$unit" >/dev/null 2>&1
	rm -f "$R/etc/systemd/system/$unit.service"
done
systemctl daemon-reload
# Containers left by kubelet: their shims died with containerd; unmount what remains.
grep -o " $R/run/containerd/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
rm -f "$R"/usr/local/bin/{containerd,containerd-shim-runc-v2,ctr,runc,crictl,sealer-registry}
rm -rf "$R/etc/containerd" "$R/etc/crictl.yaml" "$R/etc/sealerio/cri" "$R/etc/sealer-registry" "$R/etc/modules-load.d/containerd.conf"
rm -rf "$R/var/lib/containerd" "$R/run/containerd" "$R/opt/cni" "$R/etc/cni"
log "containerd and the registry service removed"
exit 0
