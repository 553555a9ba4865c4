// Package cloudinit writes cloud-init NoCloud seeds: the user-data, meta-data
// and network-config documents, packed as an ISO9660 volume labelled "cidata"
// that any cloud image (OpenAnolis, Rocky, Ubuntu...) reads on first boot.
//
// The documents carry what a cnstack test VM needs and nothing else: root's SSH
// key, a host key the driver generated (so it can pin it), the hostname, DHCP
// on the management NIC without IPv6 router advertisements, static addresses
// on private networks, and a default route that leads nowhere (a dummy
// interface), because QEMU's restricted user network gives none.
package cloudinit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strings"

	"github.com/kdomanski/iso9660"
	"sigs.k8s.io/yaml"
)

// VolumeLabel is the volume identifier NoCloud looks for.
const VolumeLabel = "cidata"

// Seed file names inside the volume.
const (
	UserDataFile      = "user-data"
	MetaDataFile      = "meta-data"
	NetworkConfigFile = "network-config"
)

// DummyAddress is the address of the dummy interface that holds the
// nowhere-leading default route (the same as the debian12 image's dummy0).
const DummyAddress = "10.10.0.1/32"

// Config is what goes into a seed.
type Config struct {
	// InstanceID identifies this boot to cloud-init; a new ID means "new
	// instance", so cloud-init applies the seed again. Use one per run.
	InstanceID string
	Hostname   string
	// User is the account that gets AuthorizedKeys; "root" by default.
	User           string
	AuthorizedKeys []string
	// HostKeyPrivate and HostKeyPublic, if set, are an ed25519 host key in
	// OpenSSH format that cloud-init installs, so the client can pin it.
	HostKeyPrivate string
	HostKeyPublic  string
	// ManagementMAC is the MAC address of the NIC on QEMU's user network
	// (DHCP, no IPv6 RA). Empty means match the interface named eth0.
	ManagementMAC string
	// Interfaces are static addresses on private networks, matched by MAC.
	Interfaces []Interface
}

// Interface is a NIC on a private network.
type Interface struct {
	MAC     string
	Address netip.Prefix
}

var hostnamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (c *Config) validate() error {
	var errs []error
	if c.InstanceID == "" || strings.ContainsAny(c.InstanceID, " \t\n:") {
		errs = append(errs, fmt.Errorf("instance id %q: want a non-empty word", c.InstanceID))
	}
	if !hostnamePattern.MatchString(c.Hostname) {
		errs = append(errs, fmt.Errorf("hostname %q is not a valid host name", c.Hostname))
	}
	if len(c.AuthorizedKeys) == 0 {
		errs = append(errs, errors.New("no authorized SSH key: the VM could not be reached"))
	}
	for _, k := range c.AuthorizedKeys {
		if strings.ContainsAny(k, "\n\r") {
			errs = append(errs, errors.New("an authorized key spans several lines"))
		}
	}
	if (c.HostKeyPrivate == "") != (c.HostKeyPublic == "") {
		errs = append(errs, errors.New("host key: give both the private and the public half, or neither"))
	}
	macs := []string{c.ManagementMAC}
	for _, i := range c.Interfaces {
		macs = append(macs, i.MAC)
		if !i.Address.IsValid() || !i.Address.Addr().Is4() {
			errs = append(errs, fmt.Errorf("interface %s: address %v is not an IPv4 prefix", i.MAC, i.Address))
		}
	}
	for n, m := range macs {
		if n == 0 && m == "" {
			continue
		}
		if hw, err := net.ParseMAC(m); err != nil || len(hw) != 6 {
			errs = append(errs, fmt.Errorf("MAC address %q is not valid", m))
		}
	}
	return errors.Join(errs...)
}

// MetaData renders the meta-data document.
func MetaData(c Config) ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("cloud-init seed: %w", err)
	}
	return yaml.Marshal(map[string]string{
		"instance-id":    c.InstanceID,
		"local-hostname": c.Hostname,
	})
}

// UserData renders the #cloud-config user-data document.
func UserData(c Config) ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("cloud-init seed: %w", err)
	}
	user := c.User
	if user == "" {
		user = "root"
	}
	doc := map[string]any{
		"hostname":          c.Hostname,
		"preserve_hostname": false,
		"manage_etc_hosts":  true,
		// root must be usable: cloud-init otherwise prefixes root's key with
		// a command that refuses the login.
		"disable_root": false,
		"ssh_pwauth":   false,
		"users": []map[string]any{{
			"name":                user,
			"ssh_authorized_keys": c.AuthorizedKeys,
		}},
		// Early, every boot: no IPv6 autoconfiguration, and a default route
		// into a dummy interface, so software that wants "a default route"
		// finds one and every packet sent along it dies inside the guest.
		"bootcmd": [][]string{
			{"sh", "-c", "sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 || true"},
			{"sh", "-c", "ip link show dummy0 >/dev/null 2>&1 || ip link add dummy0 type dummy; " +
				"ip addr replace " + DummyAddress + " dev dummy0; ip link set dummy0 up; " +
				"ip route replace default dev dummy0 scope link metric 4000"},
		},
	}
	if user != "root" {
		u := doc["users"].([]map[string]any)[0]
		u["sudo"] = "ALL=(ALL) NOPASSWD:ALL"
		u["lock_passwd"] = true
	}
	if c.HostKeyPrivate != "" {
		doc["ssh_deletekeys"] = true
		doc["ssh_genkeytypes"] = []string{}
		doc["ssh_keys"] = map[string]string{
			"ed25519_private": strings.TrimRight(c.HostKeyPrivate, "\n") + "\n",
			"ed25519_public":  strings.TrimSpace(c.HostKeyPublic),
		}
	}
	body, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return append([]byte("#cloud-config\n"), body...), nil
}

// NetworkConfig renders a version 2 network-config document.
func NetworkConfig(c Config) ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("cloud-init seed: %w", err)
	}
	mgmt := map[string]any{"dhcp4": true, "dhcp6": false, "accept-ra": false}
	if c.ManagementMAC != "" {
		mgmt["match"] = map[string]string{"macaddress": strings.ToLower(c.ManagementMAC)}
	} else {
		mgmt["match"] = map[string]string{"name": "eth0"}
	}
	eths := map[string]any{"mgmt": mgmt}
	for n, i := range c.Interfaces {
		eths[fmt.Sprintf("private%d", n)] = map[string]any{
			"match":     map[string]string{"macaddress": strings.ToLower(i.MAC)},
			"addresses": []string{i.Address.String()},
			"dhcp4":     false,
			"dhcp6":     false,
			"accept-ra": false,
		}
	}
	return yaml.Marshal(map[string]any{"version": 2, "ethernets": eths})
}

// WriteISO writes the seed as an ISO9660 volume labelled "cidata".
func WriteISO(w io.Writer, c Config) error {
	docs := []struct {
		name   string
		render func(Config) ([]byte, error)
	}{
		{MetaDataFile, MetaData},
		{UserDataFile, UserData},
		{NetworkConfigFile, NetworkConfig},
	}
	iw, err := iso9660.NewWriter()
	if err != nil {
		return fmt.Errorf("cloud-init seed: %w", err)
	}
	defer iw.Cleanup()
	for _, d := range docs {
		data, err := d.render(c)
		if err != nil {
			return err
		}
		if err := iw.AddFile(bytes.NewReader(data), d.name); err != nil {
			return fmt.Errorf("cloud-init seed: add %s: %w", d.name, err)
		}
	}
	if err := iw.WriteTo(w, VolumeLabel); err != nil {
		return fmt.Errorf("cloud-init seed: write ISO: %w", err)
	}
	return nil
}
