package cloudinit

import (
	"bytes"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdomanski/iso9660"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sample() Config {
	return Config{
		InstanceID:     "cnstack-node1-5f2c",
		Hostname:       "node1",
		AuthorizedKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBnGq4Cn3nq3P2hGm3iCk4G4uYwR2u3j1N1bBf6kXvX1 cnstack"},
		HostKeyPrivate: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
		HostKeyPublic:  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyHostKeyHostKeyHostKeyHostKeyHostKey",
		ManagementMAC:  "52:54:00:12:34:56",
		Interfaces: []Interface{
			{MAC: "52:54:0a:4d:00:02", Address: netip.MustParsePrefix("10.77.0.2/24")},
		},
	}
}

func TestDocumentsGolden(t *testing.T) {
	for _, tc := range []struct {
		file   string
		render func(Config) ([]byte, error)
	}{
		{UserDataFile, UserData},
		{MetaDataFile, MetaData},
		{NetworkConfigFile, NetworkConfig},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := tc.render(sample())
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.file+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s (run with -update to accept):\n%s", tc.file, golden, got)
			}
			again, _ := tc.render(sample())
			if !bytes.Equal(got, again) {
				t.Errorf("%s is not deterministic", tc.file)
			}
		})
	}
}

func TestUserDataSemantics(t *testing.T) {
	data, err := UserData(sample())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("#cloud-config\n")) {
		t.Fatalf("user-data must start with #cloud-config, got %q", data[:20])
	}
	var doc struct {
		Hostname    string `json:"hostname"`
		DisableRoot *bool  `json:"disable_root"`
		Users       []struct {
			Name string   `json:"name"`
			Keys []string `json:"ssh_authorized_keys"`
		} `json:"users"`
		SSHKeys map[string]string `json:"ssh_keys"`
		Bootcmd [][]string        `json:"bootcmd"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Hostname != "node1" || doc.DisableRoot == nil || *doc.DisableRoot {
		t.Errorf("hostname/disable_root wrong: %+v", doc)
	}
	if len(doc.Users) != 1 || doc.Users[0].Name != "root" || len(doc.Users[0].Keys) != 1 {
		t.Errorf("users wrong: %+v", doc.Users)
	}
	if !strings.HasPrefix(doc.SSHKeys["ed25519_private"], "-----BEGIN OPENSSH PRIVATE KEY-----") {
		t.Errorf("host key not carried: %v", doc.SSHKeys)
	}
	joined := strings.Join(doc.Bootcmd[1], " ")
	if !strings.Contains(joined, "ip route replace default dev dummy0") {
		t.Errorf("bootcmd lacks the dummy default route: %q", joined)
	}
}

func TestNonRootUserGetsSudo(t *testing.T) {
	c := sample()
	c.User = "cnstack"
	data, err := UserData(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("sudo: ALL=(ALL) NOPASSWD:ALL")) {
		t.Errorf("non-root user has no sudo rule:\n%s", data)
	}
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no key", func(c *Config) { c.AuthorizedKeys = nil }, "no authorized SSH key"},
		{"multi-line key", func(c *Config) { c.AuthorizedKeys = []string{"a\nb"} }, "spans several lines"},
		{"bad hostname", func(c *Config) { c.Hostname = "Node_1" }, "not a valid host name"},
		{"no instance id", func(c *Config) { c.InstanceID = "" }, "instance id"},
		{"half host key", func(c *Config) { c.HostKeyPublic = "" }, "both the private and the public"},
		{"bad mac", func(c *Config) { c.Interfaces[0].MAC = "52:54:00" }, "MAC address"},
		{"ipv6 private address", func(c *Config) { c.Interfaces[0].Address = netip.MustParsePrefix("fd00::2/64") }, "not an IPv4 prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sample()
			tc.mutate(&c)
			err := WriteISO(io.Discard, c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestISORoundTrip writes the seed and reads it back with an ISO9660 reader:
// the volume label and the three documents must be what NoCloud expects.
func TestISORoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteISO(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%2048 != 0 {
		t.Errorf("ISO size %d is not a whole number of 2048-byte sectors", buf.Len())
	}
	img, err := iso9660.OpenImage(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	label, err := img.Label()
	if err != nil {
		t.Fatal(err)
	}
	if label != VolumeLabel {
		t.Errorf("volume label %q, want %q", label, VolumeLabel)
	}
	root, err := img.RootDir()
	if err != nil {
		t.Fatal(err)
	}
	children, err := root.GetChildren()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	for _, f := range children {
		data, err := io.ReadAll(f.Reader())
		if err != nil {
			t.Fatal(err)
		}
		// Linux isofs (map=normal) shows "user-data;1" as "user-data".
		got[strings.TrimSuffix(f.Name(), ";1")] = data
	}
	for name, render := range map[string]func(Config) ([]byte, error){
		UserDataFile: UserData, MetaDataFile: MetaData, NetworkConfigFile: NetworkConfig,
	} {
		want, _ := render(sample())
		if !bytes.Equal(got[name], want) {
			t.Errorf("%s in ISO = %q, want %q", name, got[name], want)
		}
	}
	if len(got) != 3 {
		t.Errorf("ISO holds %d files, want 3: %v", len(got), keys(got))
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
