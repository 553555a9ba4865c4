package clusterimage

import (
	"errors"
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	const (
		oci    = `"mediaType":"application/vnd.oci.image.manifest.v1+json"`
		docker = `"mediaType":"application/vnd.docker.distribution.manifest.v2+json"`
		ext    = `"annotations":{"sealer.image.extension":"{\"type\":\"kube-installer\"}"}`
	)
	tests := []struct {
		name, manifest, config string
		want                   Format
		msg                    []string
	}{
		{"cluster image", "{" + oci + "," + ext + "}", `{"config":{"Labels":{"io.sealer.version":"v0.11.0"}}}`, FormatClusterImage, nil},
		{"cluster image, manifest without mediaType", "{" + ext + "}", `{}`, FormatClusterImage, nil},
		{"legacy sealer", "{" + docker + "}",
			`{"kind":"Image","apiVersion":"sealer.aliyun.com/v1alpha1","metadata":{"name":"ackdistro"},"spec":{"sealer_version":"v0.8.5","layers":[{"type":"COPY","value":"rootfs ."}],"platform":{"os":"linux","architecture":"amd64"}},"os":"linux","architecture":"amd64"}`,
			FormatLegacySealer, []string{"legacy sealer image (sealer v0.8 or earlier)", "sealer.aliyun.com/v1alpha1 Image spec written by sealer v0.8.5", "v1-22-15-ack-4"}},
		{"legacy sealer with an annotation is still legacy", "{" + oci + "," + ext + "}", `{"kind":"Image","apiVersion":"sealer.cloud/v1"}`, FormatLegacySealer, []string{"sealer.cloud/v1 Image spec"}},
		{"annotations lost", "{" + docker + "," + ext + "}", `{"config":{"Labels":{"io.sealer.version":"v0.11.0"}}}`, FormatAnnotationsLost,
			[]string{"lost its annotations", "io.sealer.version=v0.11.0", "application/vnd.docker.distribution.manifest.v2+json has no sealer.image.extension", "crane copy"}},
		{"docker container image", "{" + docker + "}", `{"config":{"Labels":{"maintainer":"x"}}}`, FormatContainerImage, []string{"is a container image, not a cluster image", "manifests/imageList"}},
		{"oci container image", "{" + oci + "}", `{"architecture":"amd64"}`, FormatContainerImage, []string{"application/vnd.oci.image.manifest.v1+json has no sealer.image.extension"}},
		{"kubernetes object config is no legacy image", "{" + oci + "}", `{"kind":"Image","apiVersion":"v1"}`, FormatContainerImage, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Detect([]byte(tt.manifest), []byte(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			if d.Format != tt.want {
				t.Fatalf("format = %v (%s), want %v", d.Format, d.Evidence, tt.want)
			}
			err = d.Check("reg.example.com/base:1")
			if tt.want == FormatClusterImage {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrNotClusterImage) || !strings.Contains(err.Error(), "FROM reg.example.com/base:1 is a ") {
				t.Fatalf("Check = %v", err)
			}
			for _, m := range tt.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("Check = %v\nwant it to say %q", err, m)
				}
			}
		})
	}
	if _, err := Detect([]byte("not json"), []byte("{}")); err == nil {
		t.Error("Detect of a non-JSON manifest succeeded")
	}
}
