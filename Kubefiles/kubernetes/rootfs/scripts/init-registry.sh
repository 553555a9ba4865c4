#!/bin/bash
# sealer v0.11 runs `cd <rootfs>/scripts && bash init-registry.sh PORT DATA DOMAIN` on
# the registry hosts: serve the image's registry/ tree (copied to DATA) over TLS with
# the certificate sealer put in <rootfs>/certs/DOMAIN.{crt,key}. The registry is the
# image's own distribution binary run by systemd: no container engine, no image pull.
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

port=${1:-5000}
data=${2:-$rootfs/registry}
domain=${3:-sea.hub}
crt=$rootfs/certs/$domain.crt
key=$rootfs/certs/$domain.key

[ -x "$rootfs/bin/registry" ] || die "$rootfs/bin/registry is missing: the image was built without its payload"
[ -d "$data" ] || die "registry data $data does not exist"
install -D -m 0755 "$rootfs/bin/registry" "$R/usr/local/bin/sealer-registry"
install -d "$R/etc/sealer-registry"

tls=""
scheme=http
if [ -s "$crt" ] && [ -s "$key" ]; then
	tls="  tls:
    certificate: $crt
    key: $key"
	scheme=https
fi
auth=""
if [ -s "$rootfs/etc/registry_htpasswd" ]; then
	auth="auth:
  htpasswd:
    realm: sealer-registry
    path: $rootfs/etc/registry_htpasswd"
fi
cat >"$R/etc/sealer-registry/config.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $data
  delete:
    enabled: false
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: :$port
  relativeurls: true
$tls
$auth
YAML

install_unit sealer-registry.service "[Unit]
Description=sealer embedded registry (cnstack kubernetes base): $domain:$port serving $data
After=network.target

[Service]
ExecStart=/usr/local/bin/sealer-registry serve /etc/sealer-registry/config.yml
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target"

systemctl daemon-reload
systemctl enable sealer-registry >/dev/null 2>&1
systemctl restart sealer-registry
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
wait_for "the registry on port $port" 60 port_open
log "registry serving $data on $scheme://$domain:$port"
