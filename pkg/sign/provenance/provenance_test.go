package provenance_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/sign/provenance"
)

func image(arch string, ann map[string]string) provenance.Image {
	return provenance.Image{
		Digest:   digest.FromString("manifest " + arch),
		Manifest: ocispec.Manifest{Annotations: ann},
		Config: ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch},
			History: []ocispec.History{{CreatedBy: "COPY . ."}, {CreatedBy: ""}, {CreatedBy: "CMDS kubeadm init"}}},
		Images: []provenance.Dependency{{Name: "docker.io/library/nginx:1.25", URI: "oci://docker.io/library/nginx@" + digest.FromString("nginx").String(), Digest: digest.FromString("nginx")}},
	}
}

func TestPredicate(t *testing.T) {
	base := digest.FromString("base")
	kf := digest.FromString("kubefile")
	lock := digest.FromString("lock")
	full := map[string]string{
		ocispec.AnnotationBaseImageName:     "registry.example/base:v1",
		ocispec.AnnotationBaseImageDigest:   base.String(),
		provenance.AnnotationKubefileDigest: kf.String(),
		provenance.AnnotationKubefile:       "Kubefiles/app/Kubefile",
		provenance.AnnotationLockDigest:     lock.String(),
		provenance.AnnotationBuilderVersion: "v9.9.9",
		ocispec.AnnotationTitle:             "app",
	}
	tests := []struct {
		name        string
		subject     provenance.Subject
		images      []provenance.Image
		wantDeps    []string // name=sha256hex
		wantVersion string
		wantExt     []string
	}{
		{
			name:     "single platform with every build annotation",
			subject:  provenance.Subject{Name: "registry.example/app", Digest: digest.FromString("manifest amd64")},
			images:   []provenance.Image{image("amd64", full)},
			wantDeps: []string{"Kubefile=" + kf.Encoded(), "base image registry.example/base:v1=" + base.Encoded(), "docker.io/library/nginx:1.25=" + digest.FromString("nginx").Encoded(), "lock file=" + lock.Encoded()},
			// the build annotation wins over the signing cnstack's version
			wantVersion: "v9.9.9",
			wantExt:     []string{`"title":"app"`, `"platforms":["linux/amd64"]`, `"instructions":["COPY . .","CMDS kubeadm init"]`},
		},
		{
			name:    "index without build annotations",
			subject: provenance.Subject{Name: "registry.example/app", Digest: digest.FromString("index")},
			images:  []provenance.Image{image("arm64", nil), image("amd64", nil)},
			wantDeps: []string{"docker.io/library/nginx:1.25=" + digest.FromString("nginx").Encoded(),
				"image linux/amd64=" + digest.FromString("manifest amd64").Encoded(), "image linux/arm64=" + digest.FromString("manifest arm64").Encoded()},
			wantVersion: "v0.0.1-signer",
			wantExt:     []string{`"platforms":["linux/amd64","linux/arm64"]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := provenance.Predicate(tt.subject, tt.images, provenance.Builder{Version: "v0.0.1-signer"})
			if err != nil {
				t.Fatal(err)
			}
			var deps []string
			for _, d := range p.BuildDefinition.ResolvedDependencies {
				deps = append(deps, d.Name+"="+d.Digest["sha256"])
			}
			if got, want := strings.Join(deps, "\n"), strings.Join(tt.wantDeps, "\n"); got != want {
				t.Errorf("dependencies:\n%s\nwant:\n%s", got, want)
			}
			if p.RunDetails.Builder.ID != provenance.BuilderID || p.RunDetails.Builder.Version["cnstack"] != tt.wantVersion {
				t.Errorf("builder %+v, want %s version %s", p.RunDetails.Builder, provenance.BuilderID, tt.wantVersion)
			}
			if p.BuildDefinition.BuildType != provenance.BuildType {
				t.Errorf("buildType %s", p.BuildDefinition.BuildType)
			}
			b, err := provenance.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.wantExt {
				if !strings.Contains(string(b), w) {
					t.Errorf("predicate lacks %s:\n%s", w, b)
				}
			}
			if strings.Contains(string(b), "startedOn") || strings.Contains(string(b), "finishedOn") {
				t.Errorf("predicate has timestamps: %s", b)
			}
			// Deterministic: the same inputs give the same bytes.
			p2, _ := provenance.Predicate(tt.subject, tt.images, provenance.Builder{Version: "v0.0.1-signer"})
			b2, _ := provenance.Marshal(p2)
			if !bytes.Equal(b, b2) {
				t.Error("predicate bytes differ between runs")
			}
			var generic map[string]any
			if err := json.Unmarshal(b, &generic); err != nil || generic["buildDefinition"] == nil || generic["runDetails"] == nil {
				t.Errorf("predicate is not a SLSA v1 object: %v %s", err, b)
			}
		})
	}
	if _, err := provenance.Predicate(provenance.Subject{Name: "x"}, nil, provenance.Builder{}); err == nil {
		t.Error("a predicate without images was accepted")
	}
}
