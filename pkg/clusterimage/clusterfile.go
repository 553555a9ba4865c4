package clusterimage

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Clusterfile is sealer v0.11's cluster description (apiVersion sealer.io/v2,
// kind Cluster), what `sealer run -f Clusterfile` installs: the image, the
// hosts with their roles, SSH access and environment. It is the subset
// cnstack writes (cnstack boot, the README's examples); sealer decodes more.
type Clusterfile struct {
	Name  string
	Image string
	SSH   SSH
	// Hosts are the machines; the first master is master0, where sealer runs
	// kubeadm init and from where it reaches every other host over SSH.
	Hosts []ClusterHost
	// Env is cluster-wide environment (KEY=VALUE), visible to the image's
	// scripts and templates; sealer's own keys (RegistryURL, ...) are added.
	Env []string
	// Apps, if set, replaces the image's LAUNCH list (sealer run --apps).
	Apps []string
}

// SSH is how sealer reaches the hosts.
type SSH struct {
	User       string // default root
	Port       int    // default 22
	Password   string
	PrivateKey string // a path on the host sealer runs on
}

// ClusterHost is one host (or several with the same roles).
type ClusterHost struct {
	IPs   []netip.Addr
	Roles []string // "master", "node"
	// Taints are kubectl-style taints; a trailing "-" removes one, e.g.
	// "node-role.kubernetes.io/control-plane:NoSchedule-" lets a master run pods.
	Taints []string
	Env    []string
}

// Role names sealer knows.
const (
	RoleMaster = "master"
	RoleNode   = "node"
)

// UntaintControlPlane is the taint removal that lets a master run workloads
// (single-node clusters).
const UntaintControlPlane = "node-role.kubernetes.io/control-plane:NoSchedule-"

// Validate checks what sealer would otherwise reject late, or accept and
// then fail on: a name, an image, at least one master, known roles, one IP
// family, no host listed twice.
func (c *Clusterfile) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("clusterfile: no cluster name"))
	}
	if c.Image == "" {
		errs = append(errs, errors.New("clusterfile: no image"))
	}
	masters, v4, v6 := 0, 0, 0
	seen := map[netip.Addr]bool{}
	for i, h := range c.Hosts {
		if len(h.IPs) == 0 {
			errs = append(errs, fmt.Errorf("clusterfile: hosts[%d] has no IPs", i))
		}
		for _, r := range h.Roles {
			switch r {
			case RoleMaster:
				masters += len(h.IPs)
			case RoleNode:
			default:
				errs = append(errs, fmt.Errorf("clusterfile: hosts[%d]: unknown role %q (want %s or %s)", i, r, RoleMaster, RoleNode))
			}
		}
		for _, ip := range h.IPs {
			if seen[ip] {
				errs = append(errs, fmt.Errorf("clusterfile: host %s listed twice", ip))
			}
			seen[ip] = true
			if ip.Is4() {
				v4++
			} else {
				v6++
			}
		}
	}
	if masters == 0 {
		errs = append(errs, errors.New("clusterfile: no host has the master role"))
	}
	if v4 > 0 && v6 > 0 {
		errs = append(errs, errors.New("clusterfile: hosts mix IPv4 and IPv6 addresses; sealer needs one family"))
	}
	for _, e := range c.Env {
		if !strings.Contains(e, "=") {
			errs = append(errs, fmt.Errorf("clusterfile: env %q is not KEY=VALUE", e))
		}
	}
	return errors.Join(errs...)
}

// Marshal writes the Clusterfile as sealer v0.11 reads it.
func (c *Clusterfile) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	type sshDoc struct {
		User   string `yaml:"user,omitempty"`
		Passwd string `yaml:"passwd,omitempty"`
		Pk     string `yaml:"pk,omitempty"`
		Port   string `yaml:"port,omitempty"`
	}
	type hostDoc struct {
		IPs    []string `yaml:"ips"`
		Roles  []string `yaml:"roles"`
		Taints []string `yaml:"taints,omitempty"`
		Env    []string `yaml:"env,omitempty"`
	}
	type doc struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Spec struct {
			Image string    `yaml:"image"`
			Env   []string  `yaml:"env,omitempty"`
			APPs  []string  `yaml:"appNames,omitempty"`
			SSH   sshDoc    `yaml:"ssh"`
			Hosts []hostDoc `yaml:"hosts"`
		} `yaml:"spec"`
	}
	var d doc
	d.APIVersion, d.Kind = "sealer.io/v2", "Cluster"
	d.Metadata.Name = c.Name
	d.Spec.Image = c.Image
	d.Spec.Env = append([]string(nil), c.Env...)
	sort.Strings(d.Spec.Env)
	d.Spec.APPs = c.Apps
	user, port := c.SSH.User, c.SSH.Port
	if user == "" {
		user = "root"
	}
	if port == 0 {
		port = 22
	}
	d.Spec.SSH = sshDoc{User: user, Passwd: c.SSH.Password, Pk: c.SSH.PrivateKey, Port: fmt.Sprint(port)}
	for _, h := range c.Hosts {
		hd := hostDoc{Roles: h.Roles, Taints: h.Taints, Env: h.Env}
		for _, ip := range h.IPs {
			hd.IPs = append(hd.IPs, ip.String())
		}
		d.Spec.Hosts = append(d.Spec.Hosts, hd)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// Masters lists the master IPs in order; the first is master0.
func (c *Clusterfile) Masters() []netip.Addr { return c.withRole(RoleMaster) }

// Workers lists the node-role IPs that are not masters.
func (c *Clusterfile) Workers() []netip.Addr {
	masters := map[netip.Addr]bool{}
	for _, m := range c.Masters() {
		masters[m] = true
	}
	var out []netip.Addr
	for _, ip := range c.withRole(RoleNode) {
		if !masters[ip] {
			out = append(out, ip)
		}
	}
	return out
}

func (c *Clusterfile) withRole(role string) []netip.Addr {
	var out []netip.Addr
	for _, h := range c.Hosts {
		for _, r := range h.Roles {
			if r == role {
				out = append(out, h.IPs...)
				break
			}
		}
	}
	return out
}
